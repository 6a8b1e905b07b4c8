"""Prototype banks: EMA of L2-normalised features per emotion class and per corpus (docs/method.md §5).

The banks are not trained by gradients; they live in the train state and are updated after every
step, from that step's forward pass under stop-gradient. Everything here is pure: the train step
computes per-class sums and counts on each device, sums them across devices (`lax.psum`), and only
then calls `update_bank`, so every replica holds the same banks.
"""

import flax.struct
import jax
import jax.numpy as jnp

from emodna_jax.method.losses import l2_normalize


class PrototypeBanks(flax.struct.PyTreeNode):
    """emotion: P_e [K, h]; corpus: P_c [D, h]. A row that was never updated is all zeros."""

    emotion: jax.Array
    corpus: jax.Array


def init_prototypes(*, num_classes: int, num_corpora: int, dim: int) -> PrototypeBanks:
    """All-zero banks: the first update of a row sets it to that batch's mean direction."""
    return PrototypeBanks(
        emotion=jnp.zeros((num_classes, dim), jnp.float32),
        corpus=jnp.zeros((num_corpora, dim), jnp.float32),
    )


def class_sums(
    *, features: jax.Array, labels: jax.Array, mask: jax.Array, num_rows: int
) -> tuple[jax.Array, jax.Array]:
    """Per-row sums of normalised features and counts, for one device's examples.

    Args:
      features: [B, h] raw features (normalised here, n(z)).
      labels: [B] int row index of each example (class or corpus id).
      mask: [B] 1 for examples that contribute, 0 otherwise.
      num_rows: K or D.
    Returns:
      sums [num_rows, h] and counts [num_rows] (float32), to be summed across devices.
    """
    weights = jax.nn.one_hot(labels, num_rows, dtype=jnp.float32) * mask[:, None]  # [B, rows]
    sums = weights.T @ l2_normalize(jax.lax.stop_gradient(features))
    return sums, weights.sum(axis=0)


def update_bank(bank: jax.Array, *, sums: jax.Array, counts: jax.Array, momentum: float) -> jax.Array:
    """P[k] <- n(m * P[k] + (1 - m) * sums[k] / counts[k]) for rows with counts[k] > 0.

    Args:
      bank: [R, h] current (normalised or zero) prototypes.
      sums, counts: [R, h] and [R], already summed over the global batch.
      momentum: m in [0, 1).
    Returns:
      [R, h] updated bank; rows with no example keep their value.
    """
    mean = sums / jnp.maximum(counts, 1.0)[:, None]
    updated = l2_normalize(momentum * bank + (1.0 - momentum) * mean)
    return jnp.where((counts > 0)[:, None], updated, bank)


def max_cosine(bank: jax.Array) -> jax.Array:
    """Largest cosine between two distinct non-zero rows of a bank [R, h] (-1 if fewer than two).

    A monitor of prototype separation: near 1 means the emotion prototypes have collapsed together.
    """
    unit = l2_normalize(bank)
    valid = jnp.sum(bank * bank, axis=-1) > 0
    cosine = unit @ unit.T
    pair = valid[:, None] & valid[None, :] & ~jnp.eye(bank.shape[0], dtype=bool)
    return jnp.max(jnp.where(pair, cosine, -1.0))
