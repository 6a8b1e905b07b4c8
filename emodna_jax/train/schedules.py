"""Schedules as pure functions of the step (STYLE item 3): learning rate, loss-weight ramps and the
quantile threshold's share."""

import jax.numpy as jnp
import optax


def learning_rate_schedule(*, base_lr: float, warmup_steps: int, num_steps: int) -> optax.Schedule:
    """Linear warm-up from 0 to `base_lr` over `warmup_steps`, then cosine decay to 0 at `num_steps`."""
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=base_lr, warmup_steps=max(warmup_steps, 0),
        decay_steps=max(num_steps, warmup_steps + 1), end_value=0.0)


def dann_ramp(progress: jnp.ndarray) -> jnp.ndarray:
    """The DANN schedule 2 / (1 + exp(-10 p)) - 1: 0 at p = 0, about 0.99 at p = 0.5, -> 1."""
    return 2.0 / (1.0 + jnp.exp(-10.0 * progress)) - 1.0


def alignment_weight(step: jnp.ndarray, *, num_steps: int) -> jnp.ndarray:
    """s(step) of the corpus-level alignment: the DANN ramp with p = step / num_steps.

    A scale-invariant MMD has a gradient of order 1/|z|; unramped, it swamps the classification loss
    while |z_e| is still small (docs/method.md §8)."""
    progress = jnp.clip(step / max(num_steps, 1), 0.0, 1.0)
    return dann_ramp(progress)


def class_alignment_weight(step: jnp.ndarray, *, warmup_steps: int, num_steps: int) -> jnp.ndarray:
    """r(step) of the class-level alignment: 0 during warm-up, then the DANN ramp over the rest."""
    span = max(num_steps - warmup_steps, 1)
    progress = jnp.clip((step - warmup_steps) / span, 0.0, 1.0)
    return jnp.where(step < warmup_steps, 0.0, dann_ramp(progress))


def quantile_fraction(step: jnp.ndarray, *, warmup_steps: int, num_steps: int, start: float,
                      end: float) -> jnp.ndarray:
    """The share of each class a quantile threshold lets pass: `start` until the warm-up ends, then
    linear to `end` at `num_steps`."""
    span = max(num_steps - warmup_steps, 1)
    progress = jnp.clip((step - warmup_steps) / span, 0.0, 1.0)
    return start + (end - start) * progress
