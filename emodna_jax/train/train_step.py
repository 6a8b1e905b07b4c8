"""The Emo-DNA train step top to bottom (its settings, the pseudo-labels, the loss, the update) and the
eval step; step_functions.py compiles them. The pure parts are in method/ (losses.py, pseudo_labelling.py:
the pseudo-label math, prototypes.py, thresholds.py) and schedules.py beside it.

The step is the per-device body of a data-parallel step: cross-device reductions are collectives on
`settings.axis_name`, so `jax.pmap` and `jax.shard_map` (parallel.py) both run it and give the numbers
of one device on the same global batch.

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

from emodna_jax.audio import augment
from emodna_jax.method import losses, prototypes, pseudo_labelling, thresholds
from emodna_jax.model import models
from emodna_jax.train import schedules
from emodna_jax.model.models import EmoDNAModel
from emodna_jax.train.train_state import TrainState

Batch = dict[str, dict[str, jax.Array]]
# fold_in data of the strong-view keys (apart from the step's dropout key, which folds in nothing more).
AUGMENT_STREAM = 0x7FFFFFFF


@dataclasses.dataclass(frozen=True)
class StepSettings:
    """The static part of the step (hashable, so jit can key on it): the config's `loss` and `pseudo`
    sections as they are, the run's length and prototype momentum, and what the data (K classes, D
    corpora) and the backend (the device axis) decide."""

    loss: ml_collections.FrozenConfigDict
    pseudo: ml_collections.FrozenConfigDict
    num_steps: int
    prototype_momentum: float
    num_classes: int
    num_corpora: int
    axis_name: str = "batch"

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict, *, num_classes: int, num_corpora: int,
                    axis_name: str = "batch") -> "StepSettings":
        return cls(loss=ml_collections.FrozenConfigDict(config.loss),
                   pseudo=ml_collections.FrozenConfigDict(config.pseudo), num_steps=config.num_steps,
                   prototype_momentum=config.prototype_momentum, num_classes=num_classes,
                   num_corpora=num_corpora, axis_name=axis_name)

    @property
    def makes_pseudo_labels(self) -> bool:
        """Whether the adaptation phase makes target pseudo-labels at all."""
        return pseudo_labelling.makes_pseudo_labels(self.loss, self.pseudo)

    @property
    def labeller(self) -> str:
        """Where pseudo-labels come from: "head", "centroid" or "head_and_centroid"."""
        return self.pseudo.get("labeller", "head")

    @property
    def uses_centroid_table(self) -> bool:
        """Whether the step reads the host's target class-centroid table ("labeller_probs")."""
        return self.makes_pseudo_labels and self.labeller != "head"


def train_step(state: TrainState, batch: Batch, *, model: EmoDNAModel, tx: optax.GradientTransformation,
               settings: StepSettings, adapt: bool) -> tuple[TrainState, dict[str, jax.Array]]:
    """One optimisation step on one device's share of the global batch.

    Args:
      state: the (replicated) train state.
      batch: {"source": {"features" [Bs, T, F], "label" [Bs], "corpus" [Bs]},
              "target": {"features" [Bt, T, F], "corpus" [Bt], "index" [Bt]?,
                         "labeller_probs" [Bt, K] (a labeller other than "head")}} (no target labels).
      model, tx, settings: static.
      adapt: static phase; False during warm-up (no pseudo-labels anywhere).
    Returns:
      the new state and a dict of global (cross-device) metrics.
    """
    loss_cfg, ax = settings.loss, settings.axis_name
    num_devices = lax.psum(1, ax)
    src, tgt = batch["source"], batch["target"]
    num_source, num_target = src["features"].shape[0], tgt["features"].shape[0]
    x = jnp.concatenate([src["features"], tgt["features"]])
    corpus_ids = jnp.concatenate([src["corpus"], tgt["corpus"]]).astype(jnp.int32)
    source_labels = src["label"].astype(jnp.int32)
    ones_s = jnp.ones((num_source,), jnp.float32)
    ones_all = jnp.ones((num_source + num_target,), jnp.float32)
    # The same key on every device: each example's dropout masks come from its position in the global
    # batch (example_ids), so a seed gives one run on any device count.
    rng = jax.random.fold_in(state.rng, state.step)
    example_ids = models.global_example_ids(num_source, num_target, ax)
    # One corpus id per source (D > 2): a per-corpus BatchNorm normalises each source corpus by its own
    # statistics, so the model needs to know whose each source row is.
    source_corpus = src["corpus"].astype(jnp.int32) if settings.num_corpora > 2 else None
    align_w = schedules.alignment_weight(state.step, num_steps=settings.num_steps)
    class_w = schedules.class_alignment_weight(
        state.step, warmup_steps=settings.pseudo.warmup_steps, num_steps=settings.num_steps)

    use_pseudo = adapt and settings.makes_pseudo_labels
    # One strong view of the target serves both the agreement check and the consistency loss.
    strong = None
    if loss_cfg.consistency_weight > 0 or (use_pseudo and settings.pseudo.agreement):
        strong = strong_view(state, tgt["features"], ax)
    pseudo = None
    if use_pseudo:
        pseudo = target_pseudo_labels(state, x, num_source, model=model, settings=settings,
                                      labeller_probs=tgt.get("labeller_probs"), strong=strong)
    # Source labels, then the target's confident pseudo-labels (none during warm-up).
    target_labels, confident = jnp.zeros((num_target,), jnp.int32), jnp.zeros((num_target,), jnp.float32)
    if pseudo is not None:
        target_labels, confident = pseudo.labels, pseudo.confident
    emotion_labels = jnp.concatenate([source_labels, target_labels])
    emotion_mask = jnp.concatenate([ones_s, confident])

    def loss_fn(params):
        out, mutated = model.apply(
            {"params": params, "batch_stats": state.batch_stats}, x, train=True,
            reversal_coeff=align_w, num_source=num_source, example_ids=example_ids,
            source_corpus=source_corpus, rngs={"dropout": rng}, mutable=["batch_stats"])
        z_s, z_t = out["z_e"][:num_source], out["z_e"][num_source:]
        logits_s, logits_t = out["logits_e"][:num_source], out["logits_e"][num_source:]
        ce = losses.softmax_cross_entropy(
            logits=logits_s, labels=source_labels, label_smoothing=loss_cfg.label_smoothing)
        parts = {"cls": global_mean(ce, ones_s, ax)}
        total = parts["cls"]
        if loss_cfg.corpus_id_weight > 0:
            ce_c = losses.softmax_cross_entropy(logits=out["logits_c"], labels=corpus_ids)
            parts["corpus_id"] = global_mean(ce_c, ones_all, ax)
            total += loss_cfg.corpus_id_weight * parts["corpus_id"]
        if loss_cfg.decoupling_weight > 0:
            dec = losses.decoupling_loss(
                emotion_features=out["z_e"], corpus_features=out["z_c"], emotion_labels=emotion_labels,
                corpus_labels=corpus_ids, emotion_prototypes=state.prototypes.emotion,
                corpus_prototypes=state.prototypes.corpus, temperature=loss_cfg.temperature,
                emotion_mask=emotion_mask, corpus_mask=ones_all)
            parts["dec_emotion"] = global_mean(dec.emotion, dec.emotion_mask, ax)
            parts["dec_corpus"] = global_mean(dec.corpus, dec.corpus_mask, ax)
            parts["decoupling"] = 0.5 * (parts["dec_emotion"] + parts["dec_corpus"])
            total += loss_cfg.decoupling_weight * parts["decoupling"]
        if loss_cfg.corpus_align != "none" and loss_cfg.corpus_align_weight > 0:
            parts["corpus_align"] = corpus_alignment(out, z_s, z_t, corpus_ids, ones_all, settings)
            total += corpus_alignment_weight(align_w, settings) * parts["corpus_align"]
        if use_pseudo and pseudo_labelling.class_alignment_on(loss_cfg):
            parts["class_align"] = class_alignment(z_s, z_t, logits_t, source_labels, pseudo, state, settings)
            total += class_w * loss_cfg.class_align_weight * parts["class_align"]
        if loss_cfg.diversity_weight > 0:
            probs_all = lax.all_gather(jax.nn.softmax(logits_t), ax, tiled=True)
            parts["diversity"] = losses.diversity_loss(
                probs=probs_all, mask=jnp.ones(probs_all.shape[:1])) / num_devices
            total += loss_cfg.diversity_weight * parts["diversity"]
        if loss_cfg.consistency_weight > 0:
            parts["consistency"] = consistency(
                params, state, x, logits_t, num_source, rng, strong, model=model, settings=settings)
            total += loss_cfg.consistency_weight * parts["consistency"]
        parts["total"] = total
        return total, (parts, mutated["batch_stats"], out)

    grads, (parts, batch_stats, out) = jax.grad(loss_fn, has_aux=True)(state.params)
    grads = lax.psum(grads, ax)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)

    # Prototype banks: from this step's forward (stop-gradient), summed over the global batch; the
    # losses above used the banks from before this update.
    def updated_bank(bank, features, labels, mask, num_rows):
        sums, counts = lax.psum(prototypes.class_sums(
            features=features, labels=labels, mask=mask, num_rows=num_rows), ax)
        return prototypes.update_bank(bank, sums=sums, counts=counts, momentum=settings.prototype_momentum)

    banks = state.prototypes.replace(emotion=updated_bank(
        state.prototypes.emotion, out["z_e"], emotion_labels, emotion_mask, settings.num_classes))
    if "z_c" in out:
        banks = banks.replace(corpus=updated_bank(
            state.prototypes.corpus, out["z_c"], corpus_ids, ones_all, settings.num_corpora))
    teacher = state.teacher
    if teacher is not None:
        decay = settings.pseudo.teacher_decay
        teacher = {
            "params": jax.tree.map(lambda t, p: decay * t + (1 - decay) * p, teacher["params"], params),
            "batch_stats": batch_stats,
        }
    new_state = state.replace(
        step=state.step + 1, params=params, batch_stats=batch_stats, opt_state=opt_state, prototypes=banks,
        thresholds=state.thresholds if pseudo is None else pseudo.thresholds, teacher=teacher)
    metrics = _monitors(parts, out, grads, num_source, pseudo, state, settings, index=tgt.get("index"))
    return new_state, {**metrics, **({} if pseudo is None else pseudo.monitors)}


def strong_view(state: TrainState, target: jax.Array, axis_name: str) -> jax.Array:
    """The strong view (augment.py) of this device's target examples [Bt, T, F]; each example's key
    comes from its index in the global batch, so the views do not depend on the device count."""
    num_target = target.shape[0]
    key = jax.random.fold_in(jax.random.fold_in(state.rng, state.step), AUGMENT_STREAM)
    keys = augment.example_keys(key, first_index=lax.axis_index(axis_name) * num_target, count=num_target)
    return augment.strong_view(keys, target)


def emotion_probs(model: EmoDNAModel, variables: dict[str, Any], source: jax.Array,
                  target: jax.Array) -> jax.Array:
    """Stop-gradient class probabilities [Bt, K] of the `target` rows, from a forward with batch
    statistics (BatchNorm sees what the training forward sees, `source` rows included) but no dropout.

    The emotion encoder alone gives the same logits (each encoder has its own BatchNorm) at about half
    the cost; with per-corpus statistics the target rows alone give them too, at about a fifth."""
    e_model, e_variables = models.emotion_encoder_view(model, variables)
    if model.batch_norm == "per_corpus":
        inputs, num_source = target, 0
    else:
        inputs, num_source = jnp.concatenate([source, target]), source.shape[0]
    out, _ = e_model.apply(e_variables, inputs, train=True, use_dropout=False, num_source=num_source,
                           mutable=["batch_stats"])
    return jax.nn.softmax(lax.stop_gradient(out["logits_e"][num_source:]))


def target_pseudo_labels(
    state: TrainState, x: jax.Array, num_source: int, *, model: EmoDNAModel, settings: StepSettings,
    labeller_probs: jax.Array | None = None, strong: jax.Array | None = None,
) -> pseudo_labelling.PseudoLabels:
    """This step's pseudo-labels for the target rows x[num_source:] (pseudo_labelling.pseudo_labels).

    The probabilities are the head's (`emotion_probs`, by the student or the EMA teacher), or with
    pseudo.labeller "centroid" the batch's `labeller_probs` [Bt, K] (target_labeller.py); with
    "head_and_centroid" the head's, kept only where `labeller_probs` name the same class. With
    pseudo.agreement, kept only where the head names the same class on `strong` [Bt, T, F], the target's
    strong view (`strong_view`)."""
    pseudo = settings.pseudo
    if settings.uses_centroid_table and labeller_probs is None:
        raise ValueError(f"pseudo.labeller={settings.labeller!r} needs the batch's target 'labeller_probs' "
                         "(the trainer adds them; see target_labeller.CentroidLabeller)")
    variables = state.teacher if pseudo.teacher == "ema" else {
        "params": state.params, "batch_stats": state.batch_stats}
    source, target = x[:num_source], x[num_source:]
    if settings.labeller == "centroid":
        probs = lax.stop_gradient(labeller_probs.astype(jnp.float32))
    else:
        probs = emotion_probs(model, variables, source, target)
    fraction = 0.0
    if pseudo.threshold == "quantile":
        fraction = schedules.quantile_fraction(
            state.step, warmup_steps=pseudo.warmup_steps, num_steps=settings.num_steps,
            start=pseudo.quantile_start, end=pseudo.quantile_end)
    return pseudo_labelling.pseudo_labels(
        probs=probs, threshold_state=state.thresholds, kind=pseudo.threshold, tau_min=pseudo.tau_min,
        fixed_threshold=pseudo.fixed_threshold,
        ema=pseudo.threshold_ema or thresholds.schedule_tied_ema(settings.num_steps),
        distribution_alignment=pseudo.distribution_alignment, axis_name=settings.axis_name,
        quantile_fraction=fraction,
        table_probs=labeller_probs if settings.labeller == "head_and_centroid" else None,
        strong_probs=emotion_probs(model, variables, source, strong) if pseudo.agreement else None)


def global_mean(values: jax.Array, mask: jax.Array, axis_name: str) -> jax.Array:
    """Local contribution to the mean of `values` over the valid examples of the global batch."""
    count = lax.psum(lax.stop_gradient(mask).sum(), axis_name)
    return (values * mask).sum() / jnp.maximum(count, 1.0)


def corpus_alignment_weight(ramp: jax.Array, settings: StepSettings) -> jax.Array:
    """The weight of the corpus-level alignment loss in the total, given the ramp s(step)
    (schedules.alignment_weight).

    MMD and CORAL ramp their loss weight: s * corpus_align_weight. DANN ramps only its gradient
    reversal (the model's `reversal_coeff` = s, as Ganin et al.): its loss weight stays constant, so
    the discriminator learns at full weight from the first step and the encoder sees -s times the
    discriminator's gradient; ramping both would give the encoder -s^2."""
    if settings.loss.corpus_align == "dann":
        return jnp.asarray(settings.loss.corpus_align_weight, jnp.float32)
    return ramp * settings.loss.corpus_align_weight


def corpus_alignment(out, z_s, z_t, corpus_ids, ones_all, settings: StepSettings) -> jax.Array:
    """Local contribution of the corpus-level alignment loss (MMD, CORAL or DANN).

    MMD and CORAL are between the pooled sources and the target, or with loss.corpus_align_per_source
    and one corpus id per source (D > 2) the mean over source corpora k of the term between corpus k
    (a mask on the pooled sources) and the target. DANN's discriminator has D classes either way."""
    ax, kind = settings.axis_name, settings.loss.corpus_align
    if kind == "dann":
        ce = losses.softmax_cross_entropy(logits=out["logits_domain"], labels=corpus_ids)
        return global_mean(ce, ones_all, ax)
    if kind not in ("mmd", "coral"):
        raise ValueError(f"unknown corpus_align {kind!r}")
    source = lax.all_gather(z_s, ax, tiled=True)
    target = lax.all_gather(z_t, ax, tiled=True)
    mask_t = jnp.ones(target.shape[:1])

    def term(mask_s):
        if kind == "mmd":
            return losses.mmd_loss(source=source, target=target, source_mask=mask_s, target_mask=mask_t,
                                   bandwidth_multipliers=settings.loss.mmd_bandwidths)
        return losses.coral_loss(source=source, target=target, source_mask=mask_s, target_mask=mask_t)

    if settings.num_corpora > 2 and settings.loss.get("corpus_align_per_source", False):
        ids = lax.all_gather(corpus_ids[: z_s.shape[0]], ax, tiled=True)
        value = jnp.mean(jnp.stack([term((ids == k).astype(jnp.float32))
                                    for k in range(settings.num_corpora - 1)]))
    else:
        value = term(jnp.ones(source.shape[:1]))
    return value / lax.psum(1, ax)


def class_alignment(z_s, z_t, logits_t, source_labels, pseudo: pseudo_labelling.PseudoLabels,
                    state: TrainState, settings: StepSettings) -> jax.Array:
    """Local contribution of the class-level alignment loss on confident target examples."""
    ax, kind = settings.axis_name, settings.loss.class_align
    if kind == "prototype":
        loss, mask = losses.class_alignment_loss(
            features=z_t, pseudo_labels=pseudo.labels, prototypes=state.prototypes.emotion,
            temperature=settings.loss.temperature, mask=pseudo.confident)
        return global_mean(loss, mask, ax)
    if kind == "cross_entropy":
        ce = losses.softmax_cross_entropy(logits=logits_t, labels=pseudo.labels)
        return global_mean(ce, pseudo.confident, ax)
    if kind == "lmmd":
        gather = lambda v: lax.all_gather(v, ax, tiled=True)  # noqa: E731
        value = losses.lmmd_loss(
            source=gather(z_s), target=gather(z_t), source_labels=gather(source_labels),
            target_probs=gather(pseudo.probs), source_mask=jnp.ones(gather(source_labels).shape),
            target_mask=gather(pseudo.confident), num_classes=settings.num_classes,
            bandwidth_multipliers=settings.loss.mmd_bandwidths)
        return value / lax.psum(1, ax)
    raise ValueError(f"unknown class_align {kind!r}")


def consistency(params, state: TrainState, x: jax.Array, logits_t: jax.Array, num_source: int, rng: jax.Array,
                strong: jax.Array, *, model: EmoDNAModel, settings: StepSettings) -> jax.Array:
    """Local contribution of the target consistency loss: mean KL(p(x_t) || p(strong(x_t))) over the
    global target batch, the clean prediction being the training forward's own (dropout on, gradient
    stopped), as in UDA. No pseudo-label, no threshold: it asks for predictions that a time shift,
    masks and noise do not change. The strong view goes through the emotion encoder alone; with shared
    BatchNorm it is normalised together with the source half, as the training forward's target is."""
    e_model, e_variables = models.emotion_encoder_view(
        model, {"params": params, "batch_stats": state.batch_stats})
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


def _monitors(parts, out, grads, num_source, pseudo, state, settings: StepSettings,
              index=None) -> dict[str, jax.Array]:
    """Label-free monitors of docs/method.md §11, all reduced over the global batch; with pseudo-labels also
    "examples/pseudo_label" [global Bt] (-1: not confident) and "examples/target_index" (the batch's
    "index"), gathered over devices, for the host's run-long tally (run_logging.PseudoLabelTally)."""
    ax, num_classes = settings.axis_name, settings.num_classes
    metrics = lax.psum({f"loss/{k}": v for k, v in parts.items()}, ax)
    metrics["monitor/z_e_norm"] = lax.pmean(jnp.linalg.norm(out["z_e"], axis=-1).mean(), ax)
    metrics["monitor/grad_norm"] = optax.tree.norm(grads)
    predicted = jax.nn.one_hot(out["logits_e"][num_source:].argmax(-1), num_classes)
    metrics["monitor/target_prediction_hist"] = lax.pmean(predicted.mean(0), ax)
    metrics["monitor/max_prototype_cosine"] = prototypes.max_cosine(state.prototypes.emotion)
    if pseudo is not None:
        pseudo_hist = jax.nn.one_hot(pseudo.labels, num_classes) * pseudo.confident[:, None]
        metrics["pseudo/confident_fraction"] = lax.pmean(pseudo.confident.mean(), ax)
        metrics["pseudo/confident_per_class"] = lax.psum(pseudo_hist.sum(0), ax)
        metrics["pseudo/thresholds"] = jnp.where(jnp.isfinite(pseudo.tau), pseudo.tau, -1.0)
        passed = jnp.where(pseudo.confident > 0, pseudo.labels, -1).astype(jnp.int32)
        metrics["examples/pseudo_label"] = lax.all_gather(passed, ax, tiled=True)
        if index is not None:
            metrics["examples/target_index"] = lax.all_gather(index.astype(jnp.int32), ax, tiled=True)
    return metrics


def eval_step(state: TrainState, batch: dict[str, jax.Array], *, model: EmoDNAModel,
              stream: int = models.TARGET_STREAM) -> dict[str, Any]:
    """Forward in inference mode (running BatchNorm statistics, no dropout), per example.

    batch: {"features" [B, T, F], "corpus" [B]?, ...}; stream: whose running statistics a per-corpus
    BatchNorm uses (models.SOURCE_STREAM or TARGET_STREAM; ignored by shared BatchNorm). A source
    split of several sources with one corpus id each (D > 2) carries "corpus": each row then gets its
    own corpus' statistics.
    Returns {"logits" [B, K], "z_e" [B, h], "z_c" [B, h]?}.
    """
    rows = batch.get("corpus") if stream == models.SOURCE_STREAM and model.num_corpora > 2 else None
    out = model.apply({"params": state.params, "batch_stats": state.batch_stats},
                      batch["features"], train=False, stream=stream, source_corpus=rows)
    result = {"logits": out["logits_e"], "z_e": out["z_e"]}
    if "z_c" in out:
        result["z_c"] = out["z_c"]
    return result
