"""The Emo-DNA train step, written once as the per-device body of a data-parallel step.

Cross-device reductions use collectives on a named axis (`settings.axis_name`): `jax.pmap` and
`jax.shard_map` both run this body (see `parallel.py`) and give the same numbers as one device on the
same global batch.

How the global loss is split across devices: each loss part is computed on a device as its LOCAL
CONTRIBUTION, such that the contributions summed over devices equal the loss on the global batch:
per-example losses are summed locally and divided by the global count of valid examples; batch-level
losses (MMD, CORAL, LMMD, diversity) are computed on the all-gathered global batch and divided by the
number of devices. The gradients are then summed across devices (`lax.psum`). Collectives inside the
loss (BatchNorm's `pmean`, `all_gather`) transpose to sums over devices in the backward pass, so each
device's gradient is that of the summed loss through its own examples, and the sum is exact.

Phases are static: `adapt=False` (warm-up) compiles a step that never makes a pseudo-label; the trainer
switches to the `adapt=True` step once `step >= warmup_steps`.
"""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax import lax

from emodna_jax import augment, losses, models, prototypes, schedules, thresholds
from emodna_jax.models import EmoDNAModel
from emodna_jax.train_state import TrainState

Batch = dict[str, dict[str, jax.Array]]

# fold_in data of the strong-view keys (dropout keys fold in the device index, which stays far below).
_AUGMENT_STREAM = 0x7FFFFFFF


@dataclasses.dataclass(frozen=True)
class StepSettings:
    """The static part of the step: everything the config decides (hashable, so jit can key on it)."""

    num_classes: int
    num_corpora: int
    num_steps: int
    warmup_steps: int
    label_smoothing: float
    temperature: float
    corpus_id_weight: float
    decoupling_weight: float
    corpus_align: str
    corpus_align_weight: float
    class_align: str
    class_align_weight: float
    diversity_weight: float
    consistency_weight: float
    mmd_bandwidths: tuple[float, ...]
    threshold: str
    tau_min: float
    fixed_threshold: float
    threshold_ema: float
    quantile_start: float
    quantile_end: float
    teacher: str
    teacher_decay: float
    distribution_alignment: bool
    agreement: bool
    prototype_momentum: float
    axis_name: str = "batch"

    @classmethod
    def from_config(
        cls, config: ml_collections.ConfigDict, *, num_classes: int, num_corpora: int, axis_name: str = "batch"
    ) -> "StepSettings":
        loss, pseudo = config.loss, config.pseudo
        ema = pseudo.threshold_ema or thresholds.schedule_tied_ema(config.num_steps)
        return cls(
            num_classes=num_classes,
            num_corpora=num_corpora,
            num_steps=config.num_steps,
            warmup_steps=pseudo.warmup_steps,
            label_smoothing=loss.label_smoothing,
            temperature=loss.temperature,
            corpus_id_weight=loss.corpus_id_weight,
            decoupling_weight=loss.decoupling_weight,
            corpus_align=loss.corpus_align,
            corpus_align_weight=loss.corpus_align_weight,
            class_align=loss.class_align,
            class_align_weight=loss.class_align_weight,
            diversity_weight=loss.diversity_weight,
            consistency_weight=loss.consistency_weight,
            mmd_bandwidths=tuple(loss.mmd_bandwidths),
            threshold=pseudo.threshold,
            tau_min=pseudo.tau_min,
            fixed_threshold=pseudo.fixed_threshold,
            threshold_ema=ema,
            quantile_start=pseudo.quantile_start,
            quantile_end=pseudo.quantile_end,
            teacher=pseudo.teacher,
            teacher_decay=pseudo.teacher_decay,
            distribution_alignment=pseudo.distribution_alignment,
            agreement=pseudo.agreement,
            prototype_momentum=config.prototype_momentum,
            axis_name=axis_name,
        )

    @property
    def uses_pseudo_labels(self) -> bool:
        """Whether the adaptation phase makes target pseudo-labels at all."""
        return thresholds.makes_pseudo_labels(
            threshold=self.threshold, decoupling_weight=self.decoupling_weight,
            class_align=self.class_align, class_align_weight=self.class_align_weight)


def _pseudo_labels(
    state: TrainState, x: jax.Array, num_source: int, *, model: EmoDNAModel, settings: StepSettings
) -> tuple[jax.Array, jax.Array, jax.Array, thresholds.ThresholdState, jax.Array, dict[str, jax.Array]]:
    """Stop-gradient pseudo-labels for the target half of x, and the updated threshold state.

    The forward uses batch statistics (so BatchNorm sees what the training forward sees) but no
    dropout, from the student or from the EMA teacher. With `distribution_alignment` the returned
    probabilities (and the pseudo-labels and thresholds applied to them) are the aligned ones. With
    `agreement` a pseudo-label stays confident only where a strong view of the example (augment.py)
    is given the same class.
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
    if settings.agreement:
        strong = _strong_view(state, x[num_source:], ax)
        strong_probs = aligned(target_probs(jnp.concatenate([x[:num_source], strong])))
        agrees = (strong_probs.argmax(-1) == pseudo).astype(jnp.float32)
        monitors["pseudo/agreement"] = lax.pmean(agrees.mean(), ax)
        confident = confident * agrees
    return probs, pseudo, confident, new_thresholds, tau, monitors


def _strong_view(state: TrainState, target: jax.Array, axis_name: str) -> jax.Array:
    """The strong view (augment.py) of this device's target examples [Bt, T, F]; each example's key
    comes from its index in the global batch, so the views do not depend on the device count."""
    num_target = target.shape[0]
    key = jax.random.fold_in(jax.random.fold_in(state.rng, state.step), _AUGMENT_STREAM)
    keys = augment.example_keys(key, first_index=lax.axis_index(axis_name) * num_target, count=num_target)
    return augment.strong_view(keys, target)


def _consistency(params, state: TrainState, x: jax.Array, logits_t: jax.Array, num_source: int,
                 rng: jax.Array, *, model: EmoDNAModel, settings: StepSettings) -> jax.Array:
    """Local contribution of the target consistency loss: mean KL(p(x_t) || p(strong(x_t))) over the
    global target batch, the clean prediction being the training forward's own (dropout on, gradient
    stopped), as in UDA. No pseudo-label, no threshold: it asks for predictions that a time shift,
    masks and noise do not change. The strong view goes through the emotion encoder alone; with shared
    BatchNorm it is normalised together with the source half, as the training forward's target is."""
    e_model, e_variables = models.emotion_encoder_view(
        model, {"params": params, "batch_stats": state.batch_stats})
    strong = _strong_view(state, x[num_source:], settings.axis_name)
    if model.batch_norm == "per_corpus":
        inputs, offset = strong, 0
    else:
        inputs, offset = jnp.concatenate([x[:num_source], strong]), num_source
    out, _ = e_model.apply(e_variables, inputs, train=True, num_source=offset,
                           rngs={"dropout": jax.random.fold_in(rng, 1)}, mutable=["batch_stats"])
    kl = losses.consistency_loss(teacher_logits=lax.stop_gradient(logits_t),
                                 student_logits=out["logits_e"][offset:])
    return _global_mean(kl, jnp.ones(kl.shape, jnp.float32), settings.axis_name)


def _global_mean(values: jax.Array, mask: jax.Array, axis_name: str) -> jax.Array:
    """Local contribution to the mean of `values` over the valid examples of the global batch."""
    count = lax.psum(lax.stop_gradient(mask).sum(), axis_name)
    return (values * mask).sum() / jnp.maximum(count, 1.0)


def train_step(
    state: TrainState,
    batch: Batch,
    *,
    model: EmoDNAModel,
    tx: optax.GradientTransformation,
    settings: StepSettings,
    adapt: bool,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One optimisation step on one device's share of the global batch.

    Args:
      state: the (replicated) train state.
      batch: {"source": {"features" [Bs, T, F], "label" [Bs], "corpus" [Bs]},
              "target": {"features" [Bt, T, F], "corpus" [Bt]}} (no target labels).
      model, tx, settings: static.
      adapt: static phase; False during warm-up (no pseudo-labels anywhere).
    Returns:
      the new state and a dict of global (cross-device) metrics.
    """
    ax = settings.axis_name
    num_devices = lax.psum(1, ax)
    src, tgt = batch["source"], batch["target"]
    num_source = src["features"].shape[0]
    num_target = tgt["features"].shape[0]
    x = jnp.concatenate([src["features"], tgt["features"]])
    corpus_ids = jnp.concatenate([src["corpus"], tgt["corpus"]]).astype(jnp.int32)
    source_labels = src["label"].astype(jnp.int32)
    ones_s = jnp.ones((num_source,), jnp.float32)
    ones_all = jnp.ones((num_source + num_target,), jnp.float32)
    rng = jax.random.fold_in(jax.random.fold_in(state.rng, state.step), lax.axis_index(ax))
    align_w = schedules.alignment_weight(state.step, num_steps=settings.num_steps)
    class_w = schedules.class_alignment_weight(
        state.step, warmup_steps=settings.warmup_steps, num_steps=settings.num_steps)

    use_pseudo = adapt and settings.uses_pseudo_labels
    new_thresholds, tau = state.thresholds, jnp.full((settings.num_classes,), jnp.inf)
    pseudo = jnp.zeros((num_target,), jnp.int32)
    confident = jnp.zeros((num_target,), jnp.float32)
    target_probs, pseudo_monitors = None, {}
    if use_pseudo:
        target_probs, pseudo, confident, new_thresholds, tau, pseudo_monitors = _pseudo_labels(
            state, x, num_source, model=model, settings=settings)
    emotion_labels = jnp.concatenate([source_labels, pseudo])
    emotion_mask = jnp.concatenate([ones_s, confident])

    def loss_fn(params):
        out, mutated = model.apply(
            {"params": params, "batch_stats": state.batch_stats}, x, train=True,
            reversal_coeff=align_w, num_source=num_source, rngs={"dropout": rng}, mutable=["batch_stats"])
        z_e = out["z_e"]
        z_s, z_t = z_e[:num_source], z_e[num_source:]
        logits_s, logits_t = out["logits_e"][:num_source], out["logits_e"][num_source:]
        parts = {}
        ce = losses.softmax_cross_entropy(
            logits=logits_s, labels=source_labels, label_smoothing=settings.label_smoothing)
        parts["cls"] = _global_mean(ce, ones_s, ax)
        total = parts["cls"]
        if settings.corpus_id_weight > 0:
            ce_c = losses.softmax_cross_entropy(logits=out["logits_c"], labels=corpus_ids)
            parts["corpus_id"] = _global_mean(ce_c, ones_all, ax)
            total += settings.corpus_id_weight * parts["corpus_id"]
        if settings.decoupling_weight > 0:
            dec = losses.decoupling_loss(
                emotion_features=z_e, corpus_features=out["z_c"], emotion_labels=emotion_labels,
                corpus_labels=corpus_ids, emotion_prototypes=state.prototypes.emotion,
                corpus_prototypes=state.prototypes.corpus, temperature=settings.temperature,
                emotion_mask=emotion_mask, corpus_mask=ones_all)
            parts["dec_emotion"] = _global_mean(dec.emotion, dec.emotion_mask, ax)
            parts["dec_corpus"] = _global_mean(dec.corpus, dec.corpus_mask, ax)
            parts["decoupling"] = 0.5 * (parts["dec_emotion"] + parts["dec_corpus"])
            total += settings.decoupling_weight * parts["decoupling"]
        if settings.corpus_align != "none" and settings.corpus_align_weight > 0:
            parts["corpus_align"] = _corpus_alignment(out, z_s, z_t, corpus_ids, ones_all, settings)
            total += align_w * settings.corpus_align_weight * parts["corpus_align"]
        if use_pseudo and settings.class_align != "none" and settings.class_align_weight > 0:
            parts["class_align"] = _class_alignment(
                z_s, z_t, logits_t, source_labels, pseudo, confident, target_probs, state, settings)
            total += class_w * settings.class_align_weight * parts["class_align"]
        if settings.diversity_weight > 0:
            probs_all = lax.all_gather(jax.nn.softmax(logits_t), ax, tiled=True)
            parts["diversity"] = losses.diversity_loss(
                probs=probs_all, mask=jnp.ones(probs_all.shape[:1])) / num_devices
            total += settings.diversity_weight * parts["diversity"]
        if settings.consistency_weight > 0:
            parts["consistency"] = _consistency(
                params, state, x, logits_t, num_source, rng, model=model, settings=settings)
            total += settings.consistency_weight * parts["consistency"]
        parts["total"] = total
        return total, (parts, mutated["batch_stats"], out)

    grads, (parts, batch_stats, out) = jax.grad(loss_fn, has_aux=True)(state.params)
    grads = lax.psum(grads, ax)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)

    # Prototype banks: from this step's forward (stop-gradient), summed over the global batch; the
    # losses above used the banks from before this update.
    sums, counts = lax.psum(prototypes.class_sums(
        features=out["z_e"], labels=emotion_labels, mask=emotion_mask, num_rows=settings.num_classes), ax)
    new_banks = state.prototypes.replace(emotion=prototypes.update_bank(
        state.prototypes.emotion, sums=sums, counts=counts, momentum=settings.prototype_momentum))
    if "z_c" in out:
        sums, counts = lax.psum(prototypes.class_sums(
            features=out["z_c"], labels=corpus_ids, mask=ones_all, num_rows=settings.num_corpora), ax)
        new_banks = new_banks.replace(corpus=prototypes.update_bank(
            state.prototypes.corpus, sums=sums, counts=counts, momentum=settings.prototype_momentum))

    teacher = state.teacher
    if teacher is not None:
        decay = settings.teacher_decay
        teacher = {
            "params": jax.tree.map(lambda t, p: decay * t + (1 - decay) * p, teacher["params"], params),
            "batch_stats": batch_stats,
        }
    new_state = state.replace(
        step=state.step + 1, params=params, batch_stats=batch_stats, opt_state=opt_state,
        prototypes=new_banks, thresholds=new_thresholds, teacher=teacher)

    metrics = _monitors(parts, out, grads, num_source, confident, target_probs, tau, state, settings)
    return new_state, {**metrics, **pseudo_monitors}


def _corpus_alignment(out, z_s, z_t, corpus_ids, ones_all, settings: StepSettings) -> jax.Array:
    """Local contribution of the corpus-level alignment loss (MMD, CORAL or DANN)."""
    ax = settings.axis_name
    if settings.corpus_align == "dann":
        ce = losses.softmax_cross_entropy(logits=out["logits_domain"], labels=corpus_ids)
        return _global_mean(ce, ones_all, ax)
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


def _class_alignment(z_s, z_t, logits_t, source_labels, pseudo, confident, target_probs, state,
                     settings: StepSettings) -> jax.Array:
    """Local contribution of the class-level alignment loss on confident target examples."""
    ax = settings.axis_name
    if settings.class_align == "prototype":
        loss, mask = losses.class_alignment_loss(
            features=z_t, pseudo_labels=pseudo, prototypes=state.prototypes.emotion,
            temperature=settings.temperature, mask=confident)
        return _global_mean(loss, mask, ax)
    if settings.class_align == "cross_entropy":
        ce = losses.softmax_cross_entropy(logits=logits_t, labels=pseudo)
        return _global_mean(ce, confident, ax)
    if settings.class_align == "lmmd":
        gather = lambda v: lax.all_gather(v, ax, tiled=True)  # noqa: E731
        value = losses.lmmd_loss(
            source=gather(z_s), target=gather(z_t), source_labels=gather(source_labels),
            target_probs=gather(target_probs), source_mask=jnp.ones(gather(source_labels).shape),
            target_mask=gather(confident), num_classes=settings.num_classes,
            bandwidth_multipliers=settings.mmd_bandwidths)
        return value / lax.psum(1, ax)
    raise ValueError(f"unknown class_align {settings.class_align!r}")


def _monitors(parts, out, grads, num_source, confident, target_probs, tau, state,
              settings: StepSettings) -> dict[str, jax.Array]:
    """Label-free monitors of DESIGN §4, all reduced over the global batch."""
    ax = settings.axis_name
    metrics = {f"loss/{k}": v for k, v in parts.items()}
    metrics = lax.psum(metrics, ax)
    z_norm = jnp.linalg.norm(out["z_e"], axis=-1)
    metrics["monitor/z_e_norm"] = lax.pmean(z_norm.mean(), ax)
    metrics["monitor/grad_norm"] = optax.tree.norm(grads)
    logits_t = out["logits_e"][num_source:]
    predicted = jax.nn.one_hot(logits_t.argmax(-1), settings.num_classes)
    metrics["monitor/target_prediction_hist"] = lax.pmean(predicted.mean(0), ax)
    metrics["monitor/max_prototype_cosine"] = prototypes.max_cosine(state.prototypes.emotion)
    if target_probs is not None:
        pseudo_hist = jax.nn.one_hot(target_probs.argmax(-1), settings.num_classes) * confident[:, None]
        metrics["pseudo/confident_fraction"] = lax.pmean(confident.mean(), ax)
        metrics["pseudo/confident_per_class"] = lax.psum(pseudo_hist.sum(0), ax)
        metrics["pseudo/thresholds"] = jnp.where(jnp.isfinite(tau), tau, -1.0)
    return metrics


def eval_step(state: TrainState, batch: dict[str, jax.Array], *, model: EmoDNAModel,
              stream: int = models.TARGET_STREAM) -> dict[str, Any]:
    """Forward in inference mode (running BatchNorm statistics, no dropout), per example.

    batch: {"features" [B, T, F], ...}; stream: whose running statistics a per-corpus BatchNorm
    uses (models.SOURCE_STREAM or TARGET_STREAM; ignored by shared BatchNorm).
    Returns {"logits" [B, K], "z_e" [B, h], "z_c" [B, h]?}.
    """
    out = model.apply({"params": state.params, "batch_stats": state.batch_stats},
                      batch["features"], train=False, stream=stream)
    result = {"logits": out["logits_e"], "z_e": out["z_e"]}
    if "z_c" in out:
        result["z_c"] = out["z_c"]
    return result
