"""Target pseudo-labels from class probabilities: the threshold update, optional distribution alignment,
the thresholds and the agreement checks (docs/method.md §6: adaptive thresholds and this project's
safeguards). Pure functions of arrays; the forwards that give the probabilities are the train step's.
`makes_pseudo_labels` is the one place that says whether a config makes pseudo-labels at all.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from emodna_jax.method import thresholds


def class_alignment_on(loss: Any) -> bool:
    """Whether the config's `loss` section turns the class-level alignment on (a kind and a weight)."""
    return loss.class_align != "none" and loss.class_align_weight > 0


def makes_pseudo_labels(loss: Any, pseudo: Any) -> bool:
    """Whether a config (its `loss` and `pseudo` sections) makes target pseudo-labels at all: a
    threshold rule and a consumer of them (the decoupling loss, or a class-level alignment that is on)."""
    return pseudo.threshold != "none" and (loss.decoupling_weight > 0 or class_alignment_on(loss))


class PseudoLabels(NamedTuple):
    """probs [Bt, K] (aligned when distribution alignment is on); labels [Bt] int32 (argmax of probs);
    confident [Bt] float32 (1: the label counts); thresholds: the updated state; tau [K] (the classes'
    thresholds this step); monitors: label-free batch monitors, reduced over devices."""

    probs: jax.Array
    labels: jax.Array
    confident: jax.Array
    thresholds: thresholds.ThresholdState
    tau: jax.Array
    monitors: dict[str, jax.Array]


def pseudo_labels(
    *, probs: jax.Array, threshold_state: thresholds.ThresholdState, kind: str, tau_min: float,
    fixed_threshold: float, ema: float, distribution_alignment: bool, axis_name: str,
    quantile_fraction: jax.Array | float = 0.0, table_probs: jax.Array | None = None,
    strong_probs: jax.Array | None = None,
) -> PseudoLabels:
    """Confident pseudo-labels for this device's target rows, with thresholds from the global batch.

    The threshold statistics are those of the raw `probs` (summed over devices on `axis_name`);
    distribution alignment then rescales `probs` by the updated running class confidence, and the
    pseudo-labels and thresholds act on the aligned probabilities. A pseudo-label stays confident only
    where it passes its class' threshold (`thresholds.confident_mask`), and, when given, where the
    argmax of `table_probs` (the target's own class-centroid table) names the same class and where the
    (aligned) `strong_probs` of a strong view of the example name the same class.

    Args:
      probs: [Bt, K] stop-gradient target class probabilities.
      threshold_state: the thresholds' running statistics before this step.
      kind, tau_min, fixed_threshold: the threshold rule (thresholds.KINDS) and its parameters.
      ema: lambda of the running statistics.
      distribution_alignment: align `probs` (and `strong_probs`) to a uniform class prior.
      axis_name: the device axis the statistics and monitors are reduced over.
      quantile_fraction: the share of each class that passes (kind "quantile" only).
      table_probs: [Bt, K] or None; strong_probs: [Bt, K] or None (raw, aligned here).
    """
    mask = jnp.ones(probs.shape[:1], jnp.float32)
    sums = lax.psum(thresholds.batch_statistics(probs=probs, mask=mask, fixed_threshold=fixed_threshold),
                    axis_name)
    new_state = thresholds.update_thresholds(threshold_state, sums=sums, ema=ema)

    def aligned(p):
        # The threshold statistics above stay those of the raw predictions (p~ is what is aligned away).
        if not distribution_alignment:
            return p
        return thresholds.align_distribution(probs=p, running_mean=new_state.class_confidence)

    probs = aligned(probs)
    if kind == "quantile":
        global_probs = lax.all_gather(probs, axis_name, tiled=True)
        tau = thresholds.quantile_thresholds(
            probs=global_probs, mask=jnp.ones(global_probs.shape[:1]), fraction=quantile_fraction)
    else:
        tau = thresholds.class_thresholds(
            new_state, kind=kind, tau_min=tau_min, fixed_threshold=fixed_threshold)
    labels, confident = thresholds.confident_mask(probs=probs, thresholds=tau, mask=mask)
    monitors = {}
    if table_probs is not None:
        agrees = (table_probs.argmax(-1) == labels).astype(jnp.float32)
        # Share of the batch whose head and centroid labels agree (only those may stay confident).
        monitors["pseudo/centroid_agreement_batch"] = lax.pmean(agrees.mean(), axis_name)
        confident = confident * agrees
    if strong_probs is not None:
        agrees = (aligned(strong_probs).argmax(-1) == labels).astype(jnp.float32)
        monitors["pseudo/agreement"] = lax.pmean(agrees.mean(), axis_name)
        confident = confident * agrees
    return PseudoLabels(probs, labels, confident, new_state, tau, monitors)
