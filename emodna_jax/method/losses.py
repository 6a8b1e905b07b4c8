"""Every loss of Emo-DNA and its baselines as a pure function (docs/method.md §7).

Conventions: arguments are keyword-only; shapes are in each docstring (B examples, h features,
K classes, D corpora); per-example losses return one value per example together with the mask of the
examples that count, and the caller reduces (over the global batch, see `train_step.py`); batch-level
losses (MMD, CORAL, LMMD, diversity) take masks and return a scalar. Nothing here holds state.
"""

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp

_NORM_EPS = 1e-6
_MASKED_LOGIT = -1e9  # finite, so that a fully masked row gives a finite (then masked-out) loss


def l2_normalize(v: jax.Array, *, eps: float = _NORM_EPS) -> jax.Array:
    """n(v) = v * rsqrt(max(sum(v*v), eps^2)) over the last axis.

    This form, not v / max(|v|, eps): the latter's gradient is NaN at v = 0 in JAX (the norm's
    derivative divides by zero), although its value is fine. Here a zero vector maps to zero with a
    finite gradient. [..., h] -> [..., h].
    """
    return v * jax.lax.rsqrt(jnp.maximum(jnp.sum(v * v, axis=-1, keepdims=True), eps * eps))


def softmax_cross_entropy(*, logits: jax.Array, labels: jax.Array, label_smoothing: float = 0.0) -> jax.Array:
    """Per-example cross-entropy with label smoothing.

    Args:
      logits: [B, K]. labels: [B] int in 0..K-1.
      label_smoothing: eps; the target is (1 - eps) * one_hot + eps / K.
    Returns:
      [B] losses.
    """
    num_classes = logits.shape[-1]
    targets = jax.nn.one_hot(labels, num_classes, dtype=logits.dtype)
    targets = (1.0 - label_smoothing) * targets + label_smoothing / num_classes
    return -jnp.sum(targets * jax.nn.log_softmax(logits, axis=-1), axis=-1)


def _valid_rows(bank: jax.Array) -> jax.Array:
    """[R, h] -> [R] bool: rows that were ever updated (a prototype never set is all zeros)."""
    return jnp.sum(bank * bank, axis=-1) > 0


def prototype_nll(
    *, features: jax.Array, labels: jax.Array, positives: jax.Array, negatives: Sequence[jax.Array],
    temperature: float, mask: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """-log( exp(u.P[y]/tau) / (sum_k exp(u.P[k]/tau) + sum_{N in negatives} sum_j exp(u.N[j]/tau)) ).

    The shared form of both sides of the decoupling loss and of the class-level alignment. Rows of a
    bank that are still zero are left out of the sums, and an example whose own prototype P[y] is
    still zero does not count.

    Args:
      features: [B, h] raw features (normalised here: u = n(z)).
      labels: [B] int row of `positives` each example is pulled to.
      positives: [R, h] the bank holding each example's own prototype (normalised or zero rows).
      negatives: further banks [R_i, h] every example is pushed from.
      temperature: tau > 0.
      mask: [B] 1 for examples that may count.
    Returns:
      (loss [B], mask [B]): per-example loss (0 where not counted) and the mask of examples counted.
    """
    u = l2_normalize(features)
    banks = [positives, *negatives]
    logits = jnp.concatenate([u @ b.T for b in banks], axis=-1) / temperature  # [B, sum R]
    valid = jnp.concatenate([_valid_rows(b) for b in banks])
    logits = jnp.where(valid[None, :], logits, _MASKED_LOGIT)
    own = jnp.take_along_axis(logits, labels[:, None].astype(jnp.int32), axis=-1)[:, 0]
    loss = jax.nn.logsumexp(logits, axis=-1) - own
    counted = mask * _valid_rows(positives)[labels].astype(mask.dtype)
    return jnp.where(counted > 0, loss, 0.0), counted


class DecouplingLoss(NamedTuple):
    """Per-example parts of L_dec: emotion side [B] with its mask [B], corpus side [B] with its mask."""

    emotion: jax.Array
    emotion_mask: jax.Array
    corpus: jax.Array
    corpus_mask: jax.Array


def decoupling_loss(
    *, emotion_features: jax.Array, corpus_features: jax.Array, emotion_labels: jax.Array,
    corpus_labels: jax.Array, emotion_prototypes: jax.Array, corpus_prototypes: jax.Array,
    temperature: float, emotion_mask: jax.Array, corpus_mask: jax.Array,
) -> DecouplingLoss:
    """Contrastive emotion decoupling (docs/method.md §7.3), per example.

    emotion side: u = n(z_e) pulled to P_e[y], pushed from the other emotion prototypes AND every
    corpus prototype; corpus side: v = n(z_c) pulled to P_c[d], pushed from the other corpus
    prototypes and every emotion prototype. L_dec = (mean emotion side + mean corpus side) / 2, each
    mean over its own counted examples (the caller reduces).

    Args:
      emotion_features, corpus_features: z_e, z_c [B, h].
      emotion_labels: [B] source label or (after warm-up) pseudo-label; corpus_labels: [B] corpus id d.
      emotion_prototypes: P_e [K, h]; corpus_prototypes: P_c [D, h] (from before this step's update).
      temperature: tau.
      emotion_mask: [B] 1 for source examples and confident targets; corpus_mask: [B] 1 for all real ones.
    """
    emotion, e_mask = prototype_nll(
        features=emotion_features, labels=emotion_labels, positives=emotion_prototypes,
        negatives=(corpus_prototypes,), temperature=temperature, mask=emotion_mask)
    corpus, c_mask = prototype_nll(
        features=corpus_features, labels=corpus_labels, positives=corpus_prototypes,
        negatives=(emotion_prototypes,), temperature=temperature, mask=corpus_mask)
    return DecouplingLoss(emotion, e_mask, corpus, c_mask)


def class_alignment_loss(
    *, features: jax.Array, pseudo_labels: jax.Array, prototypes: jax.Array, temperature: float,
    mask: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """Class-level prototype alignment: -log softmax_k(n(z_t).P_e[k] / tau)[y^] (docs/method.md §7.5).

    features: z_e of target examples [B, h]; pseudo_labels: y^ [B]; prototypes: P_e [K, h];
    mask: [B] confident examples. Returns (loss [B], mask [B]) as `prototype_nll`.
    """
    return prototype_nll(features=features, labels=pseudo_labels, positives=prototypes, negatives=(),
                         temperature=temperature, mask=mask)


def _pooled_kernel(
    source: jax.Array, target: jax.Array, pooled_mask: jax.Array, multipliers: Sequence[float]
) -> jax.Array:
    """Sum of Gaussian kernels on the pooled batch [Ns + Nt, Ns + Nt].

    Bandwidths are `multipliers` x the mean off-diagonal squared distance between valid examples,
    with the gradient flowing through that mean: with a stop-gradient there, shrinking every feature
    always lowers the MMD (measured: |z_e| fell from 8 to 0.05 in 20 steps); with it, the kernel
    matrix is invariant to the scale of the features.
    """
    x = jnp.concatenate([source, target]).astype(jnp.float32)
    sq = jnp.sum(x * x, axis=-1)
    d2 = jnp.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0)
    pair = pooled_mask[:, None] * pooled_mask[None, :] * (1.0 - jnp.eye(x.shape[0], dtype=x.dtype))
    bandwidth = jnp.sum(d2 * pair) / jnp.maximum(jnp.sum(pair), 1.0)
    bandwidth = jnp.maximum(bandwidth, 1e-8)
    return sum(jnp.exp(-d2 / (m * bandwidth)) for m in multipliers)


def mmd_loss(
    *, source: jax.Array, target: jax.Array, source_mask: jax.Array, target_mask: jax.Array,
    bandwidth_multipliers: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0),
) -> jax.Array:
    """Multi-kernel Gaussian MMD^2, biased estimate (DAN; docs/method.md §7.4).

    MMD^2 = w^T K w with w = [m_s / sum m_s, -m_t / sum m_t] over the pooled batch, i.e.
    mean K_ss + mean K_tt - 2 mean K_st over valid examples.

    Args:
      source: [Ns, h]; target: [Nt, h]; source_mask [Ns], target_mask [Nt] (1 = valid).
      bandwidth_multipliers: kernel bandwidths as multiples of the mean pairwise squared distance.
    Returns:
      scalar.
    """
    mask = jnp.concatenate([source_mask, target_mask]).astype(jnp.float32)
    kernel = _pooled_kernel(source, target, mask, bandwidth_multipliers)
    w = jnp.concatenate([source_mask / jnp.maximum(source_mask.sum(), 1.0),
                         -target_mask / jnp.maximum(target_mask.sum(), 1.0)]).astype(jnp.float32)
    return w @ kernel @ w


def lmmd_loss(
    *, source: jax.Array, target: jax.Array, source_labels: jax.Array, target_probs: jax.Array,
    source_mask: jax.Array, target_mask: jax.Array, num_classes: int,
    bandwidth_multipliers: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0),
) -> jax.Array:
    """Class-conditional (local) MMD^2 (Zhu et al., DSAN 2020): the mean over classes of the MMD
    between the class-k source examples (by label) and the target examples weighted by q_k.

    Args:
      source [Ns, h], target [Nt, h]; source_labels [Ns] int; target_probs [Nt, K] (stop-gradient);
      source_mask [Ns], target_mask [Nt]; num_classes K.
    Returns:
      scalar: mean over the classes present on both sides (0 if none).
    """
    mask = jnp.concatenate([source_mask, target_mask]).astype(jnp.float32)
    kernel = _pooled_kernel(source, target, mask, bandwidth_multipliers)
    ws = jax.nn.one_hot(source_labels, num_classes) * source_mask[:, None]  # [Ns, K]
    wt = target_probs * target_mask[:, None]  # [Nt, K]
    mass_s, mass_t = ws.sum(0), wt.sum(0)
    w = jnp.concatenate([ws / jnp.maximum(mass_s, 1e-8), -wt / jnp.maximum(mass_t, 1e-8)])  # [N, K]
    per_class = jnp.sum(w * (kernel @ w), axis=0)  # [K]: w_k^T K w_k
    present = ((mass_s > 0) & (mass_t > 1e-6)).astype(jnp.float32)
    return jnp.sum(per_class * present) / jnp.maximum(present.sum(), 1.0)


def _masked_covariance(x: jax.Array, mask: jax.Array) -> jax.Array:
    """Unbiased covariance [h, h] of the valid rows of x [N, h]."""
    n = jnp.maximum(mask.sum(), 2.0)
    mean = (x * mask[:, None]).sum(0) / n
    centred = (x - mean) * mask[:, None]
    return centred.T @ centred / (n - 1.0)


def coral_loss(*, source: jax.Array, target: jax.Array, source_mask: jax.Array, target_mask: jax.Array) -> jax.Array:
    """Deep CORAL (Sun & Saenko, 2016): ||C_s - C_t||_F^2 / (4 h^2). source [Ns, h], target [Nt, h];
    masks [Ns], [Nt]. Returns a scalar."""
    dim = source.shape[-1]
    diff = _masked_covariance(source, source_mask) - _masked_covariance(target, target_mask)
    return jnp.sum(diff * diff) / (4.0 * dim * dim)


def diversity_loss(*, probs: jax.Array, mask: jax.Array) -> jax.Array:
    """log K - H(mean prediction): 0 when the batch predicts every class equally often, log K when it
    predicts one class only. Minimising it counters collapse onto a few classes.

    probs [B, K]; mask [B]. Returns a scalar.
    """
    mean = (probs * mask[:, None]).sum(0) / jnp.maximum(mask.sum(), 1.0)
    entropy = -jnp.sum(mean * jnp.log(jnp.maximum(mean, 1e-12)))
    return jnp.log(probs.shape[-1]) - entropy


def consistency_loss(*, teacher_logits: jax.Array, student_logits: jax.Array) -> jax.Array:
    """Per-example KL(p_teacher || p_student) of the emotion predictions, the target consistency term
    of UDA (Xie et al. 2020) and self-ensembling (French et al. 2018): the student sees a strong view
    of the example, the teacher the example itself. The caller stops the teacher's gradient.

    teacher_logits, student_logits: [B, K]. Returns [B] (0 where the two predictions agree).
    """
    teacher_log_probs = jax.nn.log_softmax(teacher_logits, axis=-1)
    student_log_probs = jax.nn.log_softmax(student_logits, axis=-1)
    return jnp.sum(jnp.exp(teacher_log_probs) * (teacher_log_probs - student_log_probs), axis=-1)
