"""Adaptive per-class confidence thresholds for target pseudo-labels (docs/method.md §6).

State lives in the train state. The train step averages the statistics over the GLOBAL batch
(`lax.psum` of sums and counts) before calling `update_thresholds`, so every replica agrees.

Kinds:
  freematch  self-adaptive (Wang et al., 2023) with a floor: g <- lam g + (1-lam) mean(max q),
             p~ <- lam p~ + (1-lam) mean(q); tau_k = max(tau_min, g * p~_k / max_j p~_j).
  flexmatch  curriculum (Zhang et al., 2021): tau_k = M(beta_k) * fixed, beta_k the EMA share of
             confident predictions of class k relative to the best-learnt class (or to the
             not-yet-confident share), M(x) = x / (2 - x).
  fixed      tau_k = fixed for every class.
  quantile   class-balanced: among the examples predicted as class k in the global batch, the top
             `fraction` by confidence pass (one class cannot swamp the others).
  none       no pseudo-labels.

Distribution alignment (an option of every kind, `align_distribution`): before thresholding, the
target probabilities are multiplied by prior / p~ (p~ the EMA of the mean target prediction kept by
the state) and renormalised (ReMixMatch, Berthelot et al. 2020; AdaMatch, Berthelot et al. 2022), so
that a class the model over-predicts on the target loses pseudo-labels to the classes it neglects.
"""

import flax.struct
import jax
import jax.numpy as jnp

KINDS = ("freematch", "flexmatch", "fixed", "quantile", "none")


class ThresholdState(flax.struct.PyTreeNode):
    """global_confidence: g (scalar); class_confidence: p~ [K]; learning_effect: FlexMatch sigma [K]
    (EMA share of the batch confidently predicted as k); unconfident: EMA share below the threshold."""

    global_confidence: jax.Array
    class_confidence: jax.Array
    learning_effect: jax.Array
    unconfident: jax.Array


def init_thresholds(num_classes: int) -> ThresholdState:
    """g = p~_k = 1/K (FreeMatch's initialisation); FlexMatch starts with nothing learnt."""
    uniform = jnp.full((num_classes,), 1.0 / num_classes, jnp.float32)
    return ThresholdState(
        global_confidence=jnp.asarray(1.0 / num_classes, jnp.float32),
        class_confidence=uniform,
        learning_effect=jnp.zeros((num_classes,), jnp.float32),
        unconfident=jnp.asarray(1.0, jnp.float32),
    )


def batch_statistics(*, probs: jax.Array, mask: jax.Array, fixed_threshold: float) -> dict[str, jax.Array]:
    """Per-device sums for `update_thresholds`; sum them across devices before use.

    Args:
      probs: [B, K] target class probabilities (stop-gradient).
      mask: [B] 1 for real examples.
      fixed_threshold: FlexMatch's base threshold.
    Returns:
      dict of sums: count (scalar), max_prob (scalar), probs [K], confident [K], unconfident (scalar).
    """
    confidence = probs.max(axis=-1)
    confident = (confidence >= fixed_threshold) * mask
    one_hot = jax.nn.one_hot(probs.argmax(axis=-1), probs.shape[-1])
    return {
        "count": mask.sum(),
        "max_prob": (confidence * mask).sum(),
        "probs": (probs * mask[:, None]).sum(axis=0),
        "confident": (one_hot * confident[:, None]).sum(axis=0),
        "unconfident": (mask - confident).sum(),
    }


def update_thresholds(state: ThresholdState, *, sums: dict[str, jax.Array], ema: float) -> ThresholdState:
    """EMA update from global-batch sums (see `batch_statistics`); lam = `ema`."""
    count = jnp.maximum(sums["count"], 1.0)
    mix = lambda old, new: ema * old + (1.0 - ema) * new  # noqa: E731
    return ThresholdState(
        global_confidence=mix(state.global_confidence, sums["max_prob"] / count),
        class_confidence=mix(state.class_confidence, sums["probs"] / count),
        learning_effect=mix(state.learning_effect, sums["confident"] / count),
        unconfident=mix(state.unconfident, sums["unconfident"] / count),
    )


def class_thresholds(
    state: ThresholdState, *, kind: str, tau_min: float, fixed_threshold: float
) -> jax.Array:
    """Per-class thresholds tau [K] for kinds freematch, flexmatch, fixed (quantile: see below)."""
    num_classes = state.class_confidence.shape[0]
    if kind == "freematch":
        local = state.class_confidence / jnp.max(state.class_confidence)
        return jnp.maximum(tau_min, state.global_confidence * local)
    if kind == "flexmatch":
        reference = jnp.maximum(jnp.max(state.learning_effect), state.unconfident)
        beta = state.learning_effect / jnp.maximum(reference, 1e-12)
        return beta / (2.0 - beta) * fixed_threshold
    if kind == "fixed":
        return jnp.full((num_classes,), fixed_threshold, jnp.float32)
    if kind == "none":
        return jnp.full((num_classes,), jnp.inf, jnp.float32)
    raise ValueError(f"class_thresholds: unknown kind {kind!r}; choose one of {KINDS}")


def quantile_thresholds(*, probs: jax.Array, mask: jax.Array, fraction: jax.Array) -> jax.Array:
    """Class-balanced thresholds from the GLOBAL batch (all-gather probs first).

    For each predicted class k, the confidence of its ceil(fraction * n_k)-th most confident example,
    so that the top `fraction` of every predicted class pass.

    Args:
      probs: [N, K] global-batch probabilities; mask: [N]; fraction: scalar in (0, 1].
    Returns:
      [K] thresholds (inf for a class nobody predicts).
    """
    num_classes = probs.shape[-1]
    confidence = probs.max(axis=-1)
    predicted = jax.nn.one_hot(probs.argmax(axis=-1), num_classes, dtype=bool) & (mask[:, None] > 0)
    scores = jnp.where(predicted, confidence[:, None], -jnp.inf)  # [N, K]
    ranked = -jnp.sort(-scores, axis=0)  # descending per class
    counts = predicted.sum(axis=0)
    keep = jnp.clip(jnp.ceil(fraction * counts).astype(jnp.int32), 1, probs.shape[0])
    tau = jnp.take_along_axis(ranked, (keep - 1)[None, :], axis=0)[0]
    return jnp.where(counts > 0, tau, jnp.inf)


def align_distribution(*, probs: jax.Array, running_mean: jax.Array, prior: jax.Array | None = None,
                       eps: float = 1e-6) -> jax.Array:
    """q~ = normalise(q * prior / p~): distribution alignment of target probabilities.

    Args:
      probs: [B, K] target probabilities q (stop-gradient).
      running_mean: [K] p~, the running mean of q over the target (ThresholdState.class_confidence).
      prior: [K] the class distribution the target predictions should have on average; None = uniform
        (nothing is known of the target's class balance, and UAR weighs every class alike).
    Returns:
      [B] rows of q~, each summing to 1. With p~ = prior, q~ = q.
    """
    num_classes = probs.shape[-1]
    if prior is None:
        prior = jnp.full((num_classes,), 1.0 / num_classes, probs.dtype)
    scaled = probs * (prior / jnp.maximum(running_mean, eps))
    return scaled / jnp.maximum(scaled.sum(axis=-1, keepdims=True), eps)


def confident_mask(*, probs: jax.Array, thresholds: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Pseudo-labels argmax q and a float mask of examples with max q >= tau[argmax q].

    probs [B, K], thresholds [K], mask [B] -> (pseudo_labels [B] int32, confident [B] float32).
    """
    pseudo = probs.argmax(axis=-1).astype(jnp.int32)
    confident = (probs.max(axis=-1) >= thresholds[pseudo]) & (mask > 0)
    return pseudo, confident.astype(jnp.float32)


def schedule_tied_ema(num_steps: int) -> float:
    """lam = 1 - 1 / (0.1 * num_steps): the statistics forget over a tenth of the run."""
    return 1.0 - 1.0 / max(0.1 * num_steps, 1.0)
