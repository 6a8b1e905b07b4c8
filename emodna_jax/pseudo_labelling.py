"""Target pseudo-labels for the train step: a stop-gradient forward, the threshold update, optional
distribution alignment and weak/strong agreement (docs/method.md §6: adaptive thresholds and this project's
safeguards, all config options)."""

import jax
import jax.numpy as jnp
from jax import lax

from emodna_jax import models, thresholds
from emodna_jax.loss_parts import strong_view
from emodna_jax.models import EmoDNAModel
from emodna_jax.step_settings import StepSettings
from emodna_jax.train_state import TrainState


def pseudo_labels(
    state: TrainState, x: jax.Array, num_source: int, *, model: EmoDNAModel, settings: StepSettings,
    labeller_probs: jax.Array | None = None, strong: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array, thresholds.ThresholdState, jax.Array, dict[str, jax.Array]]:
    """Stop-gradient pseudo-labels for the target half of x, and the updated threshold state.

    With `settings.labeller == "head"` the probabilities come from a forward that uses batch
    statistics (so BatchNorm sees what the training forward sees) but no dropout, from the student
    or from the EMA teacher. With "centroid" they are `labeller_probs` [Bt, K], the target's own
    class-centroid assignments the host computed (target_labeller.py). With "head_and_centroid" they
    are the head's, and a pseudo-label stays confident only where the centroid assignment
    (argmax of `labeller_probs`) names the same class. With `distribution_alignment`
    the returned probabilities (and the pseudo-labels and thresholds applied to them) are the aligned
    ones. With `agreement` a pseudo-label stays confident only where a strong view of the example
    (augment.py; `strong` [Bt, T, F] when the caller made it already) is given the same class.
    Returns (probs [Bt, K], pseudo [Bt], confident [Bt], new threshold state, tau [K], monitors).
    """
    ax = settings.axis_name
    variables = state.teacher if settings.teacher == "ema" else {
        "params": state.params, "batch_stats": state.batch_stats}
    # The emotion encoder alone gives the same logits (each encoder has its own BatchNorm) at about
    # half the cost of the whole model; with per-corpus statistics it normalises target rows by target
    # statistics only, so the target half alone gives them too, at about a fifth.
    e_model, e_variables = models.emotion_encoder_view(model, variables)
    if model.batch_norm == "per_corpus":
        x, num_source = x[num_source:], 0

    def target_probs(inputs):
        out, _ = e_model.apply(e_variables, inputs, train=True, use_dropout=False, num_source=num_source,
                               mutable=["batch_stats"])
        return jax.nn.softmax(lax.stop_gradient(out["logits_e"][num_source:]))

    if settings.uses_centroid_table and labeller_probs is None:
        raise ValueError(f"pseudo.labeller={settings.labeller!r} needs the batch's target 'labeller_probs' "
                         "(the trainer adds them; see target_labeller.CentroidLabeller)")
    if settings.labeller == "centroid":
        probs = lax.stop_gradient(labeller_probs.astype(jnp.float32))
    else:
        probs = target_probs(x)
    mask = jnp.ones(probs.shape[:1], jnp.float32)
    sums = lax.psum(
        thresholds.batch_statistics(probs=probs, mask=mask, fixed_threshold=settings.fixed_threshold), ax
    )
    new_thresholds = thresholds.update_thresholds(state.thresholds, sums=sums, ema=settings.threshold_ema)

    def aligned(p):
        # The threshold statistics above stay those of the raw predictions (p~ is what is aligned away).
        if not settings.distribution_alignment:
            return p
        return thresholds.align_distribution(probs=p, running_mean=new_thresholds.class_confidence)

    probs = aligned(probs)
    if settings.threshold == "quantile":
        span = max(settings.num_steps - settings.warmup_steps, 1)
        progress = jnp.clip((state.step - settings.warmup_steps) / span, 0.0, 1.0)
        fraction = settings.quantile_start + (settings.quantile_end - settings.quantile_start) * progress
        global_probs = lax.all_gather(probs, ax, tiled=True)
        tau = thresholds.quantile_thresholds(
            probs=global_probs, mask=jnp.ones(global_probs.shape[:1]), fraction=fraction)
    else:
        tau = thresholds.class_thresholds(
            new_thresholds, kind=settings.threshold, tau_min=settings.tau_min,
            fixed_threshold=settings.fixed_threshold)
    pseudo, confident = thresholds.confident_mask(probs=probs, thresholds=tau, mask=mask)
    monitors = {}
    if settings.labeller == "head_and_centroid":
        agrees = (labeller_probs.argmax(-1) == pseudo).astype(jnp.float32)
        # Share of the batch whose head and centroid labels agree (only those may stay confident).
        monitors["pseudo/centroid_agreement_batch"] = lax.pmean(agrees.mean(), ax)
        confident = confident * agrees
    if settings.agreement:
        if strong is None:
            strong = strong_view(state, x[num_source:], ax)
        strong_probs = aligned(target_probs(jnp.concatenate([x[:num_source], strong])))
        agrees = (strong_probs.argmax(-1) == pseudo).astype(jnp.float32)
        monitors["pseudo/agreement"] = lax.pmean(agrees.mean(), ax)
        confident = confident * agrees
    return probs, pseudo, confident, new_thresholds, tau, monitors
