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

The static settings live in step_settings.py, the pseudo-labels in pseudo_labelling.py, and the loss
parts beyond classification and decoupling in loss_parts.py.
"""

from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax import lax

from emodna_jax import losses, models, prototypes, schedules
from emodna_jax.loss_parts import (
    class_alignment, consistency, corpus_alignment, corpus_alignment_weight, global_mean, strong_view)
from emodna_jax.models import EmoDNAModel
from emodna_jax.pseudo_labelling import pseudo_labels
from emodna_jax.step_settings import StepSettings
from emodna_jax.train_state import TrainState

__all__ = ["Batch", "StepSettings", "eval_step", "train_step"]

Batch = dict[str, dict[str, jax.Array]]


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
              "target": {"features" [Bt, T, F], "corpus" [Bt], "index" [Bt]?,
                         "labeller_probs" [Bt, K] (a labeller other than "head")}} (no target labels).
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
    # The same key on every device: each example's dropout masks come from its position in the global
    # batch (example_ids), so a seed gives one run on any device count.
    rng = jax.random.fold_in(state.rng, state.step)
    example_ids = models.global_example_ids(num_source, num_target, ax)
    align_w = schedules.alignment_weight(state.step, num_steps=settings.num_steps)
    class_w = schedules.class_alignment_weight(
        state.step, warmup_steps=settings.warmup_steps, num_steps=settings.num_steps)

    use_pseudo = adapt and settings.uses_pseudo_labels
    # One strong view of the target serves both the agreement check and the consistency loss.
    strong = None
    if use_pseudo and settings.agreement and settings.consistency_weight > 0:
        strong = strong_view(state, tgt["features"], ax)
    new_thresholds, tau = state.thresholds, jnp.full((settings.num_classes,), jnp.inf)
    pseudo = jnp.zeros((num_target,), jnp.int32)
    confident = jnp.zeros((num_target,), jnp.float32)
    target_probs, pseudo_monitors = None, {}
    if use_pseudo:
        target_probs, pseudo, confident, new_thresholds, tau, pseudo_monitors = pseudo_labels(
            state, x, num_source, model=model, settings=settings, labeller_probs=tgt.get("labeller_probs"),
            strong=strong)
    emotion_labels = jnp.concatenate([source_labels, pseudo])
    emotion_mask = jnp.concatenate([ones_s, confident])

    def loss_fn(params):
        out, mutated = model.apply(
            {"params": params, "batch_stats": state.batch_stats}, x, train=True,
            reversal_coeff=align_w, num_source=num_source, example_ids=example_ids, rngs={"dropout": rng},
            mutable=["batch_stats"])
        z_e = out["z_e"]
        z_s, z_t = z_e[:num_source], z_e[num_source:]
        logits_s, logits_t = out["logits_e"][:num_source], out["logits_e"][num_source:]
        parts = {}
        ce = losses.softmax_cross_entropy(
            logits=logits_s, labels=source_labels, label_smoothing=settings.label_smoothing)
        parts["cls"] = global_mean(ce, ones_s, ax)
        total = parts["cls"]
        if settings.corpus_id_weight > 0:
            ce_c = losses.softmax_cross_entropy(logits=out["logits_c"], labels=corpus_ids)
            parts["corpus_id"] = global_mean(ce_c, ones_all, ax)
            total += settings.corpus_id_weight * parts["corpus_id"]
        if settings.decoupling_weight > 0:
            dec = losses.decoupling_loss(
                emotion_features=z_e, corpus_features=out["z_c"], emotion_labels=emotion_labels,
                corpus_labels=corpus_ids, emotion_prototypes=state.prototypes.emotion,
                corpus_prototypes=state.prototypes.corpus, temperature=settings.temperature,
                emotion_mask=emotion_mask, corpus_mask=ones_all)
            parts["dec_emotion"] = global_mean(dec.emotion, dec.emotion_mask, ax)
            parts["dec_corpus"] = global_mean(dec.corpus, dec.corpus_mask, ax)
            parts["decoupling"] = 0.5 * (parts["dec_emotion"] + parts["dec_corpus"])
            total += settings.decoupling_weight * parts["decoupling"]
        if settings.corpus_align != "none" and settings.corpus_align_weight > 0:
            parts["corpus_align"] = corpus_alignment(out, z_s, z_t, corpus_ids, ones_all, settings)
            total += corpus_alignment_weight(align_w, settings) * parts["corpus_align"]
        if use_pseudo and settings.class_align != "none" and settings.class_align_weight > 0:
            parts["class_align"] = class_alignment(
                z_s, z_t, logits_t, source_labels, pseudo, confident, target_probs, state, settings)
            total += class_w * settings.class_align_weight * parts["class_align"]
        if settings.diversity_weight > 0:
            probs_all = lax.all_gather(jax.nn.softmax(logits_t), ax, tiled=True)
            parts["diversity"] = losses.diversity_loss(
                probs=probs_all, mask=jnp.ones(probs_all.shape[:1])) / num_devices
            total += settings.diversity_weight * parts["diversity"]
        if settings.consistency_weight > 0:
            parts["consistency"] = consistency(
                params, state, x, logits_t, num_source, rng, model=model, settings=settings, strong=strong)
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

    metrics = _monitors(parts, out, grads, num_source, confident, target_probs, tau, state, settings,
                        index=tgt.get("index"))
    return new_state, {**metrics, **pseudo_monitors}


def _monitors(parts, out, grads, num_source, confident, target_probs, tau, state,
              settings: StepSettings, index=None) -> dict[str, jax.Array]:
    """Label-free monitors of docs/method.md §11, all reduced over the global batch; with pseudo-labels also
    "examples/pseudo_label" [global Bt] (-1: not confident) and "examples/target_index" (the batch's
    "index"), gathered over devices, for the host's run-long tally (run_logging.PseudoLabelTally)."""
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
        passed = jnp.where(confident > 0, target_probs.argmax(-1), -1).astype(jnp.int32)
        metrics["examples/pseudo_label"] = lax.all_gather(passed, ax, tiled=True)
        if index is not None:
            metrics["examples/target_index"] = lax.all_gather(index.astype(jnp.int32), ax, tiled=True)
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
