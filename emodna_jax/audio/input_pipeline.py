"""Input pipeline: class filter and remap, label-free normalisation, train and eval streams.

What the trainer calls: `create_task_data(config, num_devices=..., process_index=..., process_count=...)`
returns a `TaskData` with `train_batches(start_step)` (endless, source + target) and
`eval_batches(which)` (finite, padded and masked).

Design (measured in benchmarks/RESULTS.md, "## Data"):
* Corpora are small (hundreds to a few thousand utterances of [188, 39] float32, about 29 KB each),
  so each split is read ONCE from TFDS into host memory and batches are cut by an index sampler.
  The stream is a sequence of epochs, epoch e being the permutation drawn from
  SeedSequence([config.seed, stream, e]); step k takes global positions [k*B, (k+1)*B). Hence
  `train_batches(start_step=k)` yields exactly what `train_batches(0)` yields from step k on, with
  no replay (a resumed run gets the same parameters), and the global batch does not depend on the
  number of processes: process p takes its contiguous slice of B/P positions of every step
  (per-process slices for multi-host; every process holds the small corpus in memory).
* Target labels never enter the train stream: target batches are built from the features array
  alone, and carry only "features", "corpus" and "index" (the example's position in the split).
  The order of the target stream is drawn from the seed alone, never from labels.
* Class set (config.classes, canonical names, ids 0..K-1 in that order). The source keeps the
  examples of those classes (unlabelled source examples are dropped) and must have every class.
  The TARGET follows the authors' protocol: when it is labelled, it is restricted to the shared
  classes both for evaluation AND for the unlabelled training stream (the target corpus of a task
  "C->B" is EmoDB's 5-class subset), and it must have every class; this uses the target's labels
  only to choose WHICH corpus subset forms the task, exactly like the published protocol, never to
  shape a batch. Examples labelled "unknown" (an unlabelled target, e.g. one's own recordings) are
  all kept, with label -1 in evaluation.
* config.source_val_speakers: those source speakers leave the train stream and form "source_val".
* Normalisation (config.normalization, see normalization.py): "corpus" statistics come from each
  corpus' own training examples (source: train speakers only; target: the filtered target split),
  without labels, and are applied to its train and eval streams alike; "speaker" statistics only for
  a speaker with at least config.normalization_min_per_speaker recordings (the others: their
  corpus'), and `TaskData.normalization_report` says which each corpus got.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from typing import Callable, Iterator, NamedTuple

import ml_collections
import numpy as np

from emodna_jax.audio import labels as label_table
from emodna_jax.audio import normalization, source_pool
from emodna_jax.audio.batch_streams import permutation as _permutation
from emodna_jax.audio.batch_streams import prefetch as _prefetch
from emodna_jax.audio.batch_streams import stream_indices

SOURCE_STREAM, TARGET_STREAM = 0, 1  # seed streams, and the corpus ids put in the batches
EVAL_SPLITS = ("target", "source", "source_val")
# config.source_val_speakers="auto": the fixed held-out set of each corpus that declares one
# (labels.CORPORA).
AUTO_VAL_SPEAKERS = {name: c.val_speakers for name, c in label_table.CORPORA.items() if c.val_speakers}
DEFAULT_DATA_DIR = os.path.join("~", ".cache", "emodna_jax", "tfds")


def auto_val_speakers(corpus: str, speakers) -> list[str]:
    """source_val_speakers="auto": the fixed set of AUTO_VAL_SPEAKERS, or for another corpus every fifth
    of its speakers in sorted order (the second, seventh, ...); refuses a corpus of fewer than 5.
    Pooled sources ("casia,emovo", speakers "<corpus>/<speaker>"): each corpus' own set, prefixed."""
    names = source_pool.source_names(corpus)
    if len(names) > 1:
        speakers = np.asarray(speakers).tolist()
        held = []
        for name in names:
            prefix = f"{name}{source_pool.SEPARATOR}"
            own = [s[len(prefix):] for s in speakers if s.startswith(prefix)]
            held += [prefix + s for s in auto_val_speakers(name, own)]
        return held
    if corpus in AUTO_VAL_SPEAKERS:
        return list(AUTO_VAL_SPEAKERS[corpus])
    names = sorted(set(np.asarray(speakers).tolist()))
    if len(names) < 5:
        raise ValueError(f"source_val_speakers='auto' holds out every fifth speaker, and {corpus!r} has "
                         f"{len(names)} ({', '.join(names)}): name the held-out speakers (e.g. "
                         "--config.select.val_speakers=spk1), or choose a target-only validator "
                         "(--config.select.validator=snd)")
    return names[1::5]


@dataclasses.dataclass
class CorpusArrays:
    """One split of one corpus in host memory. features f32 [N, T, F]; labels int64 [N] (an index
    into labels.LABEL_NAMES before `select_classes`, a class id in 0..K-1 or -1 after it);
    speakers, files: str object arrays [N]."""

    name: str
    features: np.ndarray
    labels: np.ndarray
    speakers: np.ndarray
    files: np.ndarray

    def subset(self, keep: np.ndarray, labels: np.ndarray | None = None) -> "CorpusArrays":
        return CorpusArrays(self.name, self.features[keep],
                            (self.labels if labels is None else labels)[keep], self.speakers[keep],
                            self.files[keep])

    def __len__(self) -> int:
        return int(self.features.shape[0])


class ExampleInfo(NamedTuple):
    """Who an eval example is (for prediction CSVs); label is the class id or -1."""

    file: str
    speaker: str
    label: int


def _hide_accelerators_from_tensorflow() -> None:
    """TF only reads files here; it must not grab GPU/TPU memory that JAX needs."""
    import tensorflow as tf

    try:
        tf.config.set_visible_devices([], "GPU")
        tf.config.set_visible_devices([], "TPU")
    except (RuntimeError, ValueError):
        pass  # already initialised by an earlier call: devices were hidden then, or there are none


def load_corpus_arrays(name: str, *, config: ml_collections.ConfigDict, split: str) -> CorpusArrays:
    """Reads a whole TFDS split through corpora.load into host memory."""
    _hide_accelerators_from_tensorflow()
    from emodna_jax.audio import corpora  # imports TF and TFDS: only when real data is read

    data_dir = os.path.expanduser(config.data_dir or DEFAULT_DATA_DIR)
    ds = corpora.load(name, corpora_root=config.corpora_root or None, data_dir=data_dir,
                      features=config.features, split=split)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("features", "label", "speaker", "file")}
    for batch in ds.batch(512).as_numpy_iterator():
        for key in parts:
            parts[key].append(np.asarray(batch[key]))
    if not parts["features"]:
        raise ValueError(f"corpus {name!r} split {split!r} is empty (data_dir={data_dir}): "
                         "check the corpus folder and config.target_split")
    text = lambda xs: np.array([v.decode() if isinstance(v, bytes) else str(v)  # noqa: E731
                                for v in np.concatenate(xs)], dtype=object)
    return CorpusArrays(name, np.concatenate(parts["features"]).astype(np.float32),
                        np.concatenate(parts["label"]).astype(np.int64), text(parts["speaker"]),
                        text(parts["file"]))


def select_classes(arrays: CorpusArrays, class_names: tuple[str, ...], *, role: str) -> CorpusArrays:
    """Keeps the examples of `class_names` (remapped to 0..K-1) and, for the target, unlabelled ones.

    role "source": every example must end up labelled; unlabelled ones are dropped.
    role "target": "unknown" examples are kept with label -1.
    Raises ValueError naming the corpus and the missing classes when a labelled corpus lacks one.
    """
    names = label_table.LABEL_NAMES
    unknown = names.index("unknown")
    if np.any((arrays.labels < 0) | (arrays.labels >= len(names))):
        raise ValueError(f"corpus {arrays.name!r}: label ids outside 0..{len(names) - 1} "
                         f"({names}); rebuild the dataset with the current builders")
    remap = np.full(len(names), -1, dtype=np.int64)
    for k, c in enumerate(class_names):
        remap[names.index(c)] = k
    new = remap[arrays.labels]
    labelled = arrays.labels != unknown
    present = sorted({names[i] for i in np.unique(arrays.labels[labelled])})
    if role == "source" and not labelled.any():
        raise ValueError(f"source corpus {arrays.name!r} has no labelled example: the source must be "
                         "labelled (use an unlabelled corpus as config.target)")
    if labelled.any():
        missing = [c for c in class_names if c not in present]
        if missing:
            raise ValueError(
                f"{role} corpus {arrays.name!r} has no examples of class(es) {', '.join(missing)} "
                f"(it has: {', '.join(present)}); remove them from config.classes={','.join(class_names)!r}")
    keep = new >= 0 if role == "source" else (new >= 0) | ~labelled
    return arrays.subset(keep, new)


@dataclasses.dataclass
class TaskData:
    """Everything the trainer needs from the data of one task (see the module docstring).

    class_names: config.classes in order (label ids 0..K-1); feature_shape: (T, F);
    num_source / num_target: examples in the source train stream / in the target split.
    """

    class_names: tuple[str, ...]
    feature_shape: tuple[int, int]
    num_source: int
    num_target: int
    source: CorpusArrays = dataclasses.field(repr=False)
    target: CorpusArrays = dataclasses.field(repr=False)
    source_val: CorpusArrays | None = dataclasses.field(repr=False)
    seed: int = 0
    per_device_batch: int = 1
    per_device_eval_batch: int = 1
    num_devices: int = 1
    process_index: int = 0
    process_count: int = 1
    prefetch: int = 2
    # The target corpus' normalisation statistics (label-free), for new recordings at inference.
    target_stats: normalization.Stats | None = dataclasses.field(default=None, repr=False)
    # Which statistics each corpus got (normalization.describe), source first: for the log and results.
    normalization_report: list[dict] = dataclasses.field(default_factory=list, repr=False)
    # A pooled source (config.source="a,b"): the indices of each corpus in `source`, for balanced
    # source batches (source_pool.py); () for one source corpus.
    source_groups: tuple = dataclasses.field(default=(), repr=False)
    # Corpora in the train step (D): 2, or sources + target with config.multi_source="per_corpus", whose
    # source examples then carry their own corpus' id (its index in `source_names`, 0..D-2).
    num_corpora: int = 2
    source_names: tuple[str, ...] = ()

    def source_corpus(self, arrays: CorpusArrays) -> np.ndarray | None:
        """Each example's corpus id int32 [N] in a source split (one id per source), else None."""
        return source_pool.corpus_ids(arrays.speakers, self.source_names) if self.num_corpora > 2 else None

    def __post_init__(self) -> None:
        self._perm = functools.lru_cache(maxsize=8)(_permutation)
        self._source_corpus = functools.lru_cache(maxsize=1)(lambda: self.source_corpus(self.source))

    @property
    def global_batch(self) -> int:
        return self.per_device_batch * self.num_devices * self.process_count

    def _stream(self, arrays: CorpusArrays, stream: int, step: int) -> tuple[np.ndarray, np.ndarray]:
        local = self.per_device_batch * self.num_devices
        start = step * self.global_batch + self.process_index * local
        if stream == SOURCE_STREAM and self.source_groups:
            idx = source_pool.balanced_indices(self.source_groups, start=start, count=local, stream_indices=(
                functools.partial(stream_indices, seed=self.seed, _cache=self._perm)))
        else:
            idx = stream_indices(len(arrays), seed=self.seed, stream=stream, start=start, count=local,
                                 _cache=self._perm)
        shape = (self.num_devices, self.per_device_batch)
        return arrays.features[idx].reshape(shape + self.feature_shape), idx.reshape(shape)

    def train_batch(self, step: int) -> dict:
        """The batch of training step `step` (this process' slice), see `train_batches`."""
        xs, idx_s = self._stream(self.source, SOURCE_STREAM, step)
        # Built from the target FEATURES only: no label can reach the train step.
        # "index" is each example's position in the target split (the order of eval_batches("target")),
        # by which a host-side labeller (any pseudo.labeller but "head") finds its rows.
        xt, idx_t = self._stream(self.target, TARGET_STREAM, step)
        shape = idx_s.shape
        corpus = self._source_corpus()
        source_corpus = np.full(shape, SOURCE_STREAM, np.int32) if corpus is None else corpus[idx_s]
        return {
            "source": {"features": xs, "label": self.source.labels[idx_s].astype(np.int32),
                       "corpus": source_corpus},
            # The target is the last corpus: TARGET_STREAM (1) for one source or a pooled one.
            "target": {"features": xt, "corpus": np.full(shape, self.num_corpora - 1, np.int32),
                       "index": idx_t.astype(np.int32)},
        }

    def train_batches(self, start_step: int = 0) -> Iterator[dict]:
        """Endless batches from step `start_step` on: {"source": {features f32[n_dev, b, T, F],
        label i32[n_dev, b], corpus i32 (0; per-corpus sources 0..D-2)}, "target": {features,
        corpus i32 (D-1: 1 but for per-corpus sources), index i32}}, prefetched."""
        if start_step < 0:
            raise ValueError(f"start_step={start_step} must be >= 0")
        return _prefetch(self.train_batch, start_step, self.prefetch)

    def _eval_arrays(self, which: str) -> CorpusArrays:
        if which not in EVAL_SPLITS:
            raise ValueError(f"eval split {which!r} is unknown; choose one of {', '.join(EVAL_SPLITS)}")
        if which == "source_val" and self.source_val is None:
            raise ValueError("eval split 'source_val' needs config.source_val_speakers "
                             "(comma-separated source speakers to hold out)")
        return {"target": self.target, "source": self.source, "source_val": self.source_val}[which]

    def num_eval_batches(self, which: str = "target") -> int:
        per_step = self.per_device_eval_batch * self.num_devices * self.process_count
        return math.ceil(len(self._eval_arrays(which)) / per_step)

    def eval_batches(self, which: str = "target") -> Iterator[dict]:
        """The whole split once: {features f32[n_dev, b_eval, T, F], label i32 (-1: no label),
        mask bool (False on padding), index i32 (position in `eval_examples(which)`, -1 on padding),
        corpus i32 (a source split of several sources with one corpus id each: whose each row is)}.

        Global position i of batch j sits at process i // (n_dev*b) % P, device, slot (row-major);
        every process yields the same number of batches, and each example has mask True exactly once.
        """
        arrays = self._eval_arrays(which)
        n, local = len(arrays), self.per_device_eval_batch * self.num_devices
        shape = (self.num_devices, self.per_device_eval_batch)
        for j in range(self.num_eval_batches(which)):
            pos = j * local * self.process_count + self.process_index * local + np.arange(local)
            mask = pos < n
            idx = np.where(mask, pos, 0)
            features = arrays.features[idx]
            features[~mask] = 0.0
            corpus = None if which == "target" else self.source_corpus(arrays)
            yield {"features": features.reshape(shape + self.feature_shape),
                   **({} if corpus is None else {"corpus": np.where(mask, corpus[idx], 0).reshape(shape)}),
                   "label": np.where(mask, arrays.labels[idx], -1).astype(np.int32).reshape(shape),
                   "mask": mask.reshape(shape),
                   "index": np.where(mask, pos, -1).astype(np.int32).reshape(shape)}

    def eval_examples(self, which: str = "target") -> list[ExampleInfo]:
        """File, speaker and label of every example of an eval split, in the order of `eval_batches`
        (flatten batches row-major, keep mask True: on one process, that is this list's order)."""
        a = self._eval_arrays(which)
        return [ExampleInfo(str(f), str(s), int(y)) for f, s, y in zip(a.files, a.speakers, a.labels)]


def _split_names(text: str) -> list[str]:
    return [s.strip() for s in (text or "").split(",") if s.strip()]


def create_task_data(config: ml_collections.ConfigDict, *, num_devices: int, process_index: int = 0,
                     process_count: int = 1,
                     load_fn: Callable[..., CorpusArrays] = load_corpus_arrays) -> TaskData:
    """Loads config.source (split "train") and config.target (config.target_split) and builds the task.

    load_fn(name, config=, split=) -> CorpusArrays can be replaced (tests use in-memory corpora).
    Raises ValueError for a batch size that does not divide, a missing class or an unknown speaker.
    """
    if num_devices < 1 or process_count < 1 or not 0 <= process_index < process_count:
        raise ValueError(f"bad topology: num_devices={num_devices}, process_index={process_index}, "
                         f"process_count={process_count}")
    shards = num_devices * process_count
    if config.batch_size % shards:
        raise ValueError(f"config.batch_size={config.batch_size} is not divisible by {shards} "
                         f"(= {process_count} process(es) x {num_devices} device(s)); "
                         f"use a multiple of {shards}")
    class_names = tuple(label_table.parse_classes(config.classes))
    kind = config.normalization
    minimum = int(config.get("normalization_min_per_speaker", 1))
    names = source_pool.source_names(config.source)
    load_source = lambda name: select_classes(  # noqa: E731
        load_fn(name, config=config, split="train"), class_names, role="source")
    pooled_report = None  # several sources: each standardised by its own statistics, then pooled
    if len(names) > 1:
        source_all, pooled_report = source_pool.load_pooled(names, load_source, kind=kind,
                                                            min_per_speaker=minimum)
    else:
        source_all = load_source(config.source)
    target = select_classes(load_fn(config.target, config=config, split=config.target_split),
                            class_names, role="target")
    if source_all.features.shape[1:] != target.features.shape[1:]:
        raise ValueError(f"source {config.source!r} features {source_all.features.shape[1:]} and target "
                         f"{config.target!r} features {target.features.shape[1:]} differ; build both "
                         "with the same config.features")

    val_speakers = _split_names(config.get("source_val_speakers", ""))
    if val_speakers == ["auto"]:
        val_speakers = auto_val_speakers(config.source, source_all.speakers)
    unknown = sorted(set(val_speakers) - set(source_all.speakers))
    if unknown:
        raise ValueError(f"config.source_val_speakers names {', '.join(unknown)}, not speakers of "
                         f"{config.source!r} (its speakers: {', '.join(sorted(set(source_all.speakers)))})")
    held = np.isin(source_all.speakers, val_speakers)
    source = source_all.subset(~held)
    if len(source) == 0:
        raise ValueError(f"config.source_val_speakers={config.source_val_speakers!r} holds out every "
                         f"speaker of {config.source!r}: nothing is left to train on")
    source_val = source_all.subset(held) if val_speakers else None

    # Label-free statistics of each corpus' own training examples, applied to all its streams. Per
    # speaker, every source speaker (held-out ones too) is standardised by its own frames alone, as
    # each target speaker is: held-out speakers then stand for a new corpus' speakers.
    # A speaker below config.normalization_min_per_speaker recordings gets its corpus' statistics
    # (the source's from its training speakers), see normalization.py.
    s_fit = source_all if kind == "speaker" else source
    s_stats = normalization.fit("none" if pooled_report else kind, s_fit.features, s_fit.speakers,
                                min_per_speaker=minimum, corpus_features=source.features)
    t_stats = normalization.fit(kind, target.features, target.speakers, min_per_speaker=minimum)
    norm = lambda a, st: dataclasses.replace(  # noqa: E731
        a, features=normalization.apply(st, a.features, a.speakers))
    eval_per_device = max(1, math.ceil(config.eval_batch_size / shards))
    return TaskData(
        class_names=class_names, feature_shape=tuple(int(d) for d in source.features.shape[1:]),
        num_source=len(source), num_target=len(target), source=norm(source, s_stats),
        target=norm(target, t_stats), source_val=None if source_val is None else norm(source_val, s_stats),
        seed=int(config.seed), per_device_batch=config.batch_size // shards,
        per_device_eval_batch=eval_per_device, num_devices=num_devices, process_index=process_index,
        process_count=process_count, prefetch=int(config.get("prefetch", 2)), target_stats=t_stats,
        normalization_report=[*(pooled_report or [normalization.describe(s_stats, f"source {config.source}")]),
                              normalization.describe(t_stats, f"target {config.target}")],
        **source_pool.corpus_fields(source.speakers, names, pooled=bool(pooled_report),
                                    multi_source=config.get("multi_source", "pooled")))
