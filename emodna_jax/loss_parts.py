"""The loss parts of the train step beyond source classification and decoupling, each returning its
LOCAL CONTRIBUTION on one device (summed over devices it is the loss on the global batch; see
train_step.py): corpus-level alignment, class-level alignment, target consistency, and the strong
view they share with the pseudo-label agreement check.
"""

import jax
import jax.numpy as jnp
from jax import lax

from emodna_jax import augment, losses, models
from emodna_jax.models import EmoDNAModel
from emodna_jax.step_settings import StepSettings
from emodna_jax.train_state import TrainState

# fold_in data of the strong-view keys (apart from the step's dropout key, which folds in nothing more).
AUGMENT_STREAM = 0x7FFFFFFF


def global_mean(values: jax.Array, mask: jax.Array, axis_name: str) -> jax.Array:
    """Local contribution to the mean of `values` over the valid examples of the global batch."""
    count = lax.psum(lax.stop_gradient(mask).sum(), axis_name)
    return (values * mask).sum() / jnp.maximum(count, 1.0)


def strong_view(state: TrainState, target: jax.Array, axis_name: str) -> jax.Array:
    """The strong view (augment.py) of this device's target examples [Bt, T, F]; each example's key
    comes from its index in the global batch, so the views do not depend on the device count."""
    num_target = target.shape[0]
    key = jax.random.fold_in(jax.random.fold_in(state.rng, state.step), AUGMENT_STREAM)
    keys = augment.example_keys(key, first_index=lax.axis_index(axis_name) * num_target, count=num_target)
    return augment.strong_view(keys, target)


def corpus_alignment_weight(ramp: jax.Array, settings: StepSettings) -> jax.Array:
    """The weight of the corpus-level alignment loss in the total, given the ramp s(step)
    (schedules.alignment_weight).

    MMD and CORAL ramp their loss weight: s * corpus_align_weight. DANN ramps only its gradient
    reversal (the model's `reversal_coeff` = s, as Ganin et al.): its loss weight stays constant, so
    the discriminator learns at full weight from the first step and the encoder sees -s times the
    discriminator's gradient; ramping both would give the encoder -s^2."""
    if settings.corpus_align == "dann":
        return jnp.asarray(settings.corpus_align_weight, jnp.float32)
    return ramp * settings.corpus_align_weight


def corpus_alignment(out, z_s, z_t, corpus_ids, ones_all, settings: StepSettings) -> jax.Array:
    """Local contribution of the corpus-level alignment loss (MMD, CORAL or DANN)."""
    ax = settings.axis_name
    if settings.corpus_align == "dann":
        ce = losses.softmax_cross_entropy(logits=out["logits_domain"], labels=corpus_ids)
        return global_mean(ce, ones_all, ax)
    source = lax.all_gather(z_s, ax, tiled=True)
    target = lax.all_gather(z_t, ax, tiled=True)
    mask_s, mask_t = jnp.ones(source.shape[:1]), jnp.ones(target.shape[:1])
    num_devices = lax.psum(1, ax)
    if settings.corpus_align == "mmd":
        value = losses.mmd_loss(source=source, target=target, source_mask=mask_s, target_mask=mask_t,
                                bandwidth_multipliers=settings.mmd_bandwidths)
    elif settings.corpus_align == "coral":
        value = losses.coral_loss(source=source, target=target, source_mask=mask_s, target_mask=mask_t)
    else:
        raise ValueError(f"unknown corpus_align {settings.corpus_align!r}")
    return value / num_devices


def class_alignment(z_s, z_t, logits_t, source_labels, pseudo, confident, target_probs, state,
                     settings: StepSettings) -> jax.Array:
    """Local contribution of the class-level alignment loss on confident target examples."""
    ax = settings.axis_name
    if settings.class_align == "prototype":
        loss, mask = losses.class_alignment_loss(
            features=z_t, pseudo_labels=pseudo, prototypes=state.prototypes.emotion,
            temperature=settings.temperature, mask=confident)
        return global_mean(loss, mask, ax)
    if settings.class_align == "cross_entropy":
        ce = losses.softmax_cross_entropy(logits=logits_t, labels=pseudo)
        return global_mean(ce, confident, ax)
    if settings.class_align == "lmmd":
        gather = lambda v: lax.all_gather(v, ax, tiled=True)  # noqa: E731
        value = losses.lmmd_loss(
            source=gather(z_s), target=gather(z_t), source_labels=gather(source_labels),
            target_probs=gather(target_probs), source_mask=jnp.ones(gather(source_labels).shape),
            target_mask=gather(confident), num_classes=settings.num_classes,
            bandwidth_multipliers=settings.mmd_bandwidths)
        return value / lax.psum(1, ax)
    raise ValueError(f"unknown class_align {settings.class_align!r}")


def consistency(params, state: TrainState, x: jax.Array, logits_t: jax.Array, num_source: int,
                 rng: jax.Array, *, model: EmoDNAModel, settings: StepSettings,
                 strong: jax.Array | None = None) -> jax.Array:
    """Local contribution of the target consistency loss: mean KL(p(x_t) || p(strong(x_t))) over the
    global target batch, the clean prediction being the training forward's own (dropout on, gradient
    stopped), as in UDA. No pseudo-label, no threshold: it asks for predictions that a time shift,
    masks and noise do not change. The strong view goes through the emotion encoder alone; with shared
    BatchNorm it is normalised together with the source half, as the training forward's target is.
    `strong`: the view when the caller made it already (the same one pseudo-label agreement uses)."""
    e_model, e_variables = models.emotion_encoder_view(
        model, {"params": params, "batch_stats": state.batch_stats})
    if strong is None:
        strong = strong_view(state, x[num_source:], settings.axis_name)
    ids = models.global_example_ids(num_source, strong.shape[0], settings.axis_name)
    if model.batch_norm == "per_corpus":
        inputs, offset, ids = strong, 0, ids[num_source:]
    else:
        inputs, offset = jnp.concatenate([x[:num_source], strong]), num_source
    out, _ = e_model.apply(e_variables, inputs, train=True, num_source=offset, example_ids=ids,
                           rngs={"dropout": jax.random.fold_in(rng, 1)}, mutable=["batch_stats"])
    kl = losses.consistency_loss(teacher_logits=lax.stop_gradient(logits_t),
                                 student_logits=out["logits_e"][offset:])
    return global_mean(kl, jnp.ones(kl.shape, jnp.float32), settings.axis_name)
