"""Several labelled corpora as ONE pooled source: `config.source="casia,emodb"`.

What pooling is (docs/method.md §1: one source and one target corpus, D = 2 corpora):
* each source corpus is standardised by its OWN label-free statistics (config.normalization, as a
  single source would be; its held-out speakers, if any, included in its statistics), then the
  corpora are concatenated; speaker ids become "<corpus>/<speaker>" so that two corpora's
  speakers never merge;
* the source stream is balanced across corpora: global position p of the source stream takes
  corpus p % K, at position p // K of that corpus' own endless shuffled stream (seed stream
  POOL_STREAM + k), so every batch holds (almost) equal numbers of each corpus, whatever their
  sizes, and resuming or changing the device count gives the same batches;
* config.multi_source="pooled": the train step sees ONE source corpus (corpus id 0) and the target
  (1), D = 2: one source prototype, two corpus-classifier classes;
* config.multi_source="per_corpus": source corpus k has corpus id k and the target K (D = K + 1
  corpora, docs/method.md §1): a corpus prototype, a corpus-classifier class (and, with DANN, a
  discriminator class) per corpus, and a per-corpus BatchNorm keeps a row of statistics per corpus
  (layers.CorpusBatchNorm). Either way the corpus-level alignment (MMD, CORAL) is between the pooled
  sources and the target; per_corpus with loss.corpus_align_per_source: one term per source corpus.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from emodna_jax.audio import normalization

POOL_STREAM = 2  # seed streams POOL_STREAM + k for source corpus k (0 and 1 are source and target)
SEPARATOR = "/"  # between a corpus and a speaker name in pooled speaker ids


def source_names(source: str) -> list[str]:
    """'casia, emodb' -> ['casia', 'emodb'] (a single name -> [name])."""
    return [s.strip() for s in source.split(",") if s.strip()]


def load_pooled(names: list[str], load_one: Callable, *, kind: str, min_per_speaker: int):
    """The corpora `names` standardised each by its own statistics and concatenated.

    Args:
      names: two or more corpus names.
      load_one: name -> input_pipeline.CorpusArrays (already restricted to the task's classes).
      kind, min_per_speaker: config.normalization and config.normalization_min_per_speaker.

    Returns:
      (CorpusArrays named "a+b" with speakers "<corpus>/<speaker>", standardised;
       [normalization.describe(...) of each corpus, as "source <name>"]).
    """
    parts, reports = [], []
    for name in names:
        arrays = load_one(name)
        stats = normalization.fit(kind, arrays.features, arrays.speakers, min_per_speaker=min_per_speaker)
        reports.append(normalization.describe(stats, f"source {name}"))
        speakers = np.array([f"{name}{SEPARATOR}{s}" for s in arrays.speakers], dtype=object)
        parts.append((normalization.apply(stats, arrays.features, arrays.speakers), arrays, speakers))
    cls = type(parts[0][1])
    pooled = cls("+".join(names), np.concatenate([p[0] for p in parts]).astype(np.float32),
                 np.concatenate([p[1].labels for p in parts]), np.concatenate([p[2] for p in parts]),
                 np.concatenate([p[1].files for p in parts]))
    return pooled, reports


def groups(speakers: np.ndarray, names: list[str]) -> tuple[np.ndarray, ...]:
    """The example indices [n_k] of each source corpus in a pooled array, from its speaker ids."""
    owner = np.array([str(s).split(SEPARATOR, 1)[0] for s in speakers], dtype=object)
    return tuple(np.flatnonzero(owner == name) for name in names)


def balanced_indices(groups: tuple[np.ndarray, ...], *, start: int, count: int,
                     stream_indices: Callable[..., np.ndarray]) -> np.ndarray:
    """Pooled indices at global positions [start, start + count) of the balanced source stream
    (module docstring). stream_indices(n, stream=, start=, count=) -> int [count]: the positions of
    one corpus' endless shuffled stream (input_pipeline.stream_indices with the seed bound)."""
    k = len(groups)
    pos = np.arange(start, start + count)
    out = np.empty(count, dtype=np.int64)
    for g, members in enumerate(groups):
        sel = pos % k == g
        if sel.any():
            q = pos[sel] // k  # consecutive positions of corpus g's own stream
            local = stream_indices(len(members), stream=POOL_STREAM + g, start=int(q[0]), count=len(q))
            out[sel] = members[local]
    return out


def corpus_fields(speakers: np.ndarray, names: list[str], *, pooled: bool, multi_source: str) -> dict:
    """TaskData's corpus fields: source_groups (balanced batches; () for one source), and with
    multi_source "per_corpus" num_corpora = K + 1 and source_names (each example's corpus id is its
    corpus' index there, `corpus_ids`); else num_corpora = 2 and one corpus id for all sources."""
    if not pooled:
        return {"source_groups": ()}
    members = groups(speakers, names)
    if multi_source != "per_corpus":
        return {"source_groups": members}
    return {"source_groups": members, "num_corpora": len(names) + 1, "source_names": tuple(names)}


def corpus_ids(speakers: np.ndarray, names: tuple[str, ...] | list[str]) -> np.ndarray:
    """int32 [N]: each pooled example's source corpus, its index in `names` (from its speaker id)."""
    corpus = np.zeros(len(speakers), np.int32)
    for k, rows in enumerate(groups(speakers, list(names))):
        corpus[rows] = k
    return corpus
