"""The train state (a plain pytree, so orbax can save it) and its construction."""

import dataclasses
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax

from emodna_jax.method import prototypes, thresholds
from emodna_jax.model import models
from emodna_jax.train import schedules


class TrainState(flax.struct.PyTreeNode):
    """Everything a step reads and writes.

    step: int32 scalar. params / batch_stats: the model's variables. opt_state: optax state.
    prototypes: emotion and corpus banks. thresholds: adaptive threshold statistics.
    teacher: EMA of {params, batch_stats} when pseudo-labels come from an EMA teacher, else None.
    rng: raw uint32[2] key; each step derives its own with `fold_in(rng, step)`.
    """

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    prototypes: prototypes.PrototypeBanks
    thresholds: thresholds.ThresholdState
    teacher: Any
    rng: jax.Array


def create_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
    """Global-norm clipping, then AdamW on a warm-up + cosine learning-rate schedule."""
    lr = schedules.learning_rate_schedule(
        base_lr=config.learning_rate, warmup_steps=config.lr_warmup_steps, num_steps=config.num_steps
    )
    return optax.chain(
        optax.clip_by_global_norm(config.grad_clip_norm),
        optax.adamw(lr, weight_decay=config.weight_decay),
    )


def create_train_state(
    config: ml_collections.ConfigDict,
    model: models.EmoDNAModel,
    tx: optax.GradientTransformation,
    *,
    feature_shape: tuple[int, int],
) -> TrainState:
    """Initialises parameters, optimiser, prototype banks and thresholds from `config.seed`."""
    rng = jax.random.PRNGKey(config.seed)
    init_rng, dropout_rng, state_rng = jax.random.split(rng, 3)
    dummy = jnp.zeros((2,) + tuple(feature_shape), jnp.float32)
    # Initialise outside any pmap/shard_map: the BatchNorm axis name is not bound here.
    variables = dataclasses.replace(model, axis_name=None).init(
        {"params": init_rng, "dropout": dropout_rng}, dummy, train=False
    )
    params, batch_stats = variables["params"], variables.get("batch_stats", {})
    teacher = None
    if config.pseudo.teacher == "ema":
        # A copy, not the same buffers: the step donates its state, and donating one buffer twice
        # (as params and as teacher params) crashes XLA.
        teacher = jax.tree.map(jnp.copy, {"params": params, "batch_stats": batch_stats})
    return TrainState(
        step=jnp.asarray(0, jnp.int32),
        params=params,
        batch_stats=batch_stats,
        opt_state=tx.init(params),
        prototypes=prototypes.init_prototypes(
            num_classes=model.num_classes, num_corpora=model.num_corpora, dim=model.embed_dim
        ),
        thresholds=thresholds.init_thresholds(model.num_classes),
        teacher=teacher,
        rng=state_rng,
    )
