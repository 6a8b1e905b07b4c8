"""Refuses configs that cannot work, before anything is loaded or compiled (STYLE item 8).

Every message names the field and says what to change.
"""

import os

import ml_collections

from emodna_jax.audio import features, labels
from emodna_jax.method import methods, pseudo_labelling, thresholds
from emodna_jax.model import models
from emodna_jax.train import parallel

CORPUS_ALIGN = ("mmd", "dann", "coral", "none")
CLASS_ALIGN = ("prototype", "lmmd", "cross_entropy", "none")
NORMALIZATION = ("corpus", "speaker", "utterance", "none")
TEACHERS = ("student", "ema")
LABELLERS = ("head", "centroid", "head_and_centroid")
BATCH_NORM = ("shared", "per_corpus")
MULTI_SOURCE = ("pooled", "per_corpus")  # several sources: one corpus id, or one per source (source_pool.py)
FEATURES = ("mfcc39", "logmel64", "affect", "affect_frames", "egemaps", "compare")  # front ends the builders write (features.FEATURE_CONFIGS; a test keeps them equal)
FOLDER_PREFIX = "folder:"
# The emotions each named corpus has (labels.CORPORA; corpora.VALID_NAMES, a test keeps them equal).
CORPUS_EMOTIONS: dict[str, frozenset[str]] = {name: c.emotions for name, c in labels.CORPORA.items()}


class ConfigError(ValueError):
    """A config value that cannot work; the message says which field and what to change."""


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _choice(value: str, options: tuple[str, ...], field: str) -> None:
    _require(value in options, f"config.{field}={value!r} is unknown; choose one of {', '.join(options)}")


def _corpus(name: str, field: str) -> frozenset[str] | None:
    """The emotions of a named corpus, None for folder:PATH (known only once it is read)."""
    if name.startswith(FOLDER_PREFIX):
        folder = os.path.expanduser(name[len(FOLDER_PREFIX):])
        _require(os.path.isdir(folder), f"config.{field}={name!r}: no such folder {folder!r}; "
                 "give folder:PATH with an existing folder of audio files")
        return None
    _require(name in CORPUS_EMOTIONS, f"config.{field}={name!r} is an unknown corpus; choose one of "
             f"{', '.join(CORPUS_EMOTIONS)} or folder:PATH (one's own recordings)")
    return CORPUS_EMOTIONS[name]


def _classes(config: ml_collections.ConfigDict) -> None:
    """The class set parses, and every class exists in the source and in the target."""
    try:
        classes = labels.parse_classes(config.classes)
    except ValueError as error:
        raise ConfigError(f"config.classes={config.classes!r}: {error}") from None
    _require(len(classes) >= 2, f"config.classes={config.classes!r} needs at least two classes")
    # Several sources (a pooled source, source_pool.py): the emotions every one of them has.
    names = [n.strip() for n in config.source.split(",") if n.strip()]
    _require(len(names) == len(set(names)) and names, f"config.source={config.source!r}: name each source "
             "corpus once, comma-separated (e.g. casia,emodb)")
    emotions = [_corpus(n, "source") for n in names]
    source = None if None in emotions else frozenset.intersection(*emotions)
    target = _corpus(config.target, "target")
    known = [(f, n, e) for f, n, e in (("source", config.source, source), ("target", config.target, target))
             if e is not None]
    if len(known) == 2:
        shared = sorted(source & target)
        _require(len(shared) >= 2, f"config.source={config.source!r} and config.target={config.target!r} "
                 f"share {len(shared)} emotion class(es) ({', '.join(shared) or 'none'}); a task needs at "
                 "least two: choose other corpora")
    for field, name, emotions in known:
        missing = [c for c in classes if c not in emotions]
        if missing:
            common = sorted(set.intersection(*(set(e) for _, _, e in known)))
            raise ConfigError(
                f"config.classes={config.classes!r}: config.{field}={name!r} has no {', '.join(missing)} "
                f"(it has {', '.join(sorted(emotions))}); use classes the corpora share, e.g. "
                f"--config.classes={','.join(c for c in classes if c in common) or ','.join(common)}")


def _processes(config: ml_collections.ConfigDict) -> None:
    """The multi-process fields: all three given (a cluster JAX cannot detect) or none."""
    given = (bool(config.get("coordinator_address")), config.get("num_processes", 0) > 0,
             config.get("process_id", -1) >= 0)
    if not any(given):
        return
    _require(config.distributed, "config.coordinator_address, num_processes and process_id start a "
             "multi-process run: set config.distributed=True as well (or leave them unset)")
    _require(all(given), "config.coordinator_address, config.num_processes and config.process_id go "
             f"together (got {config.coordinator_address!r}, {config.num_processes}, {config.process_id}): "
             "give all three, or none to let JAX detect the cluster")
    _require(config.process_id < config.num_processes,
             f"config.process_id={config.process_id} must be below config.num_processes={config.num_processes}")


def _inert_thresholds(config: ml_collections.ConfigDict) -> None:
    """A threshold no target example can pass leaves every pseudo-label consumer (class-level
    alignment, the decoupling's and the emotion prototypes' target rows) present but inert: refused.

    An example passes when its top probability is >= its class' threshold; a softmax reaches 1 only
    when float32 rounds it there, so a threshold of 1 or more admits (practically) nothing."""
    pseudo = config.pseudo
    off = ("or switch pseudo-labels off (config.pseudo.threshold='none', config.loss.class_align='none', "
           "config.loss.decoupling_weight=0)")
    if pseudo.threshold == "freematch":
        _require(pseudo.tau_min < 1, f"config.pseudo.tau_min={pseudo.tau_min} makes every FreeMatch threshold "
                 "max(tau_min, g * p_k / max p) >= 1 (the scaled threshold is at most 1), so no target example "
                 f"ever passes and the pseudo-label parts are inert: set it below 1 (FreeMatch's 0.7), {off}")
    if pseudo.threshold in ("fixed", "flexmatch"):
        _require(pseudo.fixed_threshold < 1, f"config.pseudo.fixed_threshold={pseudo.fixed_threshold} with "
                 f"config.pseudo.threshold={pseudo.threshold!r} admits no target example, so the pseudo-label "
                 f"parts are inert: set it below 1 (e.g. 0.95), {off}")


def _model(config: ml_collections.ConfigDict) -> None:
    """The backbone and its fields; TIM-Net needs frame sequences (T > 1) from the front end."""
    model = config.model
    _choice(model.get("backbone", "timnet"), ("auto",) + models.BACKBONES, "model.backbone")
    backbone = models.backbone_of(config)
    _choice(model.batch_norm, BATCH_NORM, "model.batch_norm")
    _require(model.shared_blocks == 0 or backbone == "timnet",
             f"config.model.shared_blocks={model.shared_blocks} shares TIM-Net blocks, which the "
             f"{backbone!r} backbone has none of: set config.model.shared_blocks=0 or config.model.backbone=timnet")
    _require(0 <= model.shared_blocks < model.dilations,
             f"config.model.shared_blocks={model.shared_blocks} must be in [0, model.dilations="
             f"{model.dilations}): at least one temporal block of each encoder stays its own (0 = separate)")
    for name in ("filters", "kernel_size", "dilations", "embed_dim"):
        _require(model[name] >= 1, f"config.model.{name}={model[name]} must be >= 1")
    if backbone == "mlp":
        for name in ("hidden_dim", "num_layers"):
            _require(model[name] >= 1, f"config.model.{name}={model[name]} must be >= 1 for the mlp backbone "
                     "(config.model.backbone=linear is the MLP without hidden layers)")
    _require(0 <= model.dropout_rate < 1, f"config.model.dropout_rate={model.dropout_rate} must be in [0, 1)")
    _require(0 <= model.bn_momentum < 1, f"config.model.bn_momentum={model.bn_momentum} must be in [0, 1) "
             "(0 ties it to the schedule: min(0.99, 1 - 10 / num_steps))")
    if backbone == "timnet" and config.features in features.FEATURE_CONFIGS:
        frames = features.get_feature_config(config.features).shape[0]
        _require(frames > 1, f"config.features={config.features!r} gives one frame per utterance "
                 "(functionals), which TIM-Net's temporal convolutions cannot use: set "
                 "--config.model.backbone=mlp (or linear), or a frame front end for TIM-Net")


def validate(config: ml_collections.ConfigDict, *, num_devices: int | None = None,
             process_count: int = 1) -> None:
    """Raises ConfigError for the first impossible setting found.

    Args:
      config: the full run config.
      num_devices: local devices that will run the step (checks batch divisibility when given).
      process_count: hosts in a multi-host run.
    """
    _choice(config.method, tuple(methods.METHODS), "method")
    _choice(config.backend, parallel.BACKENDS, "backend")
    _choice(config.normalization, NORMALIZATION, "normalization")
    _choice(config.get("multi_source", "pooled"), MULTI_SOURCE, "multi_source")
    if config.loss.get("corpus_align_per_source", False):
        sources = [n for n in config.source.split(",") if n.strip()]
        _require(len(sources) > 1 and config.get("multi_source", "pooled") == "per_corpus"
                 and config.loss.corpus_align in ("mmd", "coral"),
                 "config.loss.corpus_align_per_source needs several sources with one corpus id each and "
                 "MMD or CORAL (--config.source=a,b --config.multi_source=per_corpus "
                 f"--config.loss.corpus_align=mmd; now source={config.source!r}, multi_source="
                 f"{config.get('multi_source', 'pooled')!r}, corpus_align={config.loss.corpus_align!r})")
    minimum = config.get("normalization_min_per_speaker", 2)
    _require(isinstance(minimum, int) and minimum >= 2,
             f"config.normalization_min_per_speaker={minimum!r} must be an integer >= 2: one recording's "
             "own statistics standardise it to 0 (try 20, the default)")
    loss, pseudo = config.loss, config.pseudo
    _choice(loss.corpus_align, CORPUS_ALIGN, "loss.corpus_align")
    _choice(loss.class_align, CLASS_ALIGN, "loss.class_align")
    _choice(pseudo.threshold, thresholds.KINDS, "pseudo.threshold")
    _choice(pseudo.teacher, TEACHERS, "pseudo.teacher")
    _choice(pseudo.get("labeller", "head"), LABELLERS, "pseudo.labeller")

    _choice(config.features, FEATURES, "features")
    _classes(config)
    _processes(config)
    _require(config.num_steps > 0, f"config.num_steps={config.num_steps} must be positive")
    _require(config.batch_size > 0, f"config.batch_size={config.batch_size} must be positive")
    _require(config.learning_rate > 0, f"config.learning_rate={config.learning_rate} must be positive")
    _require(config.grad_clip_norm > 0, f"config.grad_clip_norm={config.grad_clip_norm} must be positive")
    _require(0 <= config.lr_warmup_steps < config.num_steps,
             f"config.lr_warmup_steps={config.lr_warmup_steps} must be in [0, num_steps={config.num_steps})")
    _require(loss.temperature > 0, f"config.loss.temperature={loss.temperature} must be > 0 (try 0.1)")
    _require(0 <= loss.label_smoothing < 1,
             f"config.loss.label_smoothing={loss.label_smoothing} must be in [0, 1)")
    for name in ("corpus_id_weight", "decoupling_weight", "corpus_align_weight", "class_align_weight",
                 "diversity_weight", "consistency_weight"):
        _require(loss[name] >= 0, f"config.loss.{name}={loss[name]} must be >= 0")
    _require(len(loss.mmd_bandwidths) > 0 and all(m > 0 for m in loss.mmd_bandwidths),
             f"config.loss.mmd_bandwidths={tuple(loss.mmd_bandwidths)} must be positive multipliers")
    _require(0 <= config.prototype_momentum < 1,
             f"config.prototype_momentum={config.prototype_momentum} must be in [0, 1)")
    _require(0 <= pseudo.tau_min <= 1, f"config.pseudo.tau_min={pseudo.tau_min} must be in [0, 1]")
    _require(0 < pseudo.fixed_threshold <= 1,
             f"config.pseudo.fixed_threshold={pseudo.fixed_threshold} must be in (0, 1]")
    _require(0 <= pseudo.threshold_ema < 1,
             f"config.pseudo.threshold_ema={pseudo.threshold_ema} must be in [0, 1) (0 ties it to num_steps)")
    _require(0 < pseudo.quantile_start <= pseudo.quantile_end <= 1,
             "config.pseudo.quantile_start/quantile_end must satisfy 0 < start <= end <= 1")
    _require(0 <= pseudo.teacher_decay < 1, f"config.pseudo.teacher_decay={pseudo.teacher_decay} must be in [0, 1)")
    class_level = pseudo_labelling.class_alignment_on(loss)
    if class_level or loss.decoupling_weight > 0:
        _require(0 <= pseudo.warmup_steps < config.num_steps,
                 f"config.pseudo.warmup_steps={pseudo.warmup_steps} must be below num_steps={config.num_steps}, "
                 "or no pseudo-label is ever used")
    if class_level:
        _require(pseudo.threshold != "none",
                 f"config.loss.class_align={loss.class_align!r} needs pseudo-labels: set config.pseudo.threshold "
                 "(e.g. 'freematch') or config.loss.class_align='none'")
    makes_pseudo = pseudo_labelling.makes_pseudo_labels(loss, pseudo)
    if makes_pseudo:
        _inert_thresholds(config)
    labeller = pseudo.get("labeller", "head")
    if labeller != "head":
        _require(makes_pseudo, f"config.pseudo.labeller={labeller!r} labels the target for pseudo-labels, "
                 "which this config never makes: set config.pseudo.labeller='head' or choose a method that "
                 "uses them")
        _require(pseudo.centroid_every >= 1,
                 f"config.pseudo.centroid_every={pseudo.centroid_every} must be >= 1 (steps between refreshes)")
    if labeller == "centroid":
        _require(pseudo.teacher == "student", "config.pseudo.labeller='centroid' labels the target from the "
                 "model being trained; set config.pseudo.teacher='student' (an EMA teacher has no role there)")
    for name in ("distribution_alignment", "agreement"):
        _require(not pseudo[name] or makes_pseudo,
                 f"config.pseudo.{name}=True acts on pseudo-labels, which this config never makes "
                 f"(pseudo.threshold={pseudo.threshold!r}, class-level and decoupling weights off): "
                 f"set config.pseudo.{name}=False or choose a method that uses pseudo-labels")
    for name in ("log_every", "checkpoint_every", "max_checkpoints", "eval_batch_size"):
        _require(config[name] >= 1, f"config.{name}={config[name]} must be >= 1")
    _require(config.monitor_target_every >= 0,
             f"config.monitor_target_every={config.monitor_target_every} must be >= 0 (0 = off)")
    _require(config.num_devices >= 0, f"config.num_devices={config.num_devices} must be >= 0 (0 = all)")
    _model(config)
    if num_devices is not None:
        shards = num_devices * process_count
        _require(config.batch_size % shards == 0,
                 f"config.batch_size={config.batch_size} is not divisible by the {shards} devices "
                 f"({process_count} process(es) x {num_devices}); use a multiple of {shards}")
        _require(config.eval_batch_size % shards == 0,
                 f"config.eval_batch_size={config.eval_batch_size} is not divisible by the {shards} devices; "
                 f"use a multiple of {shards}")
