"""Feature standardisation without labels (DESIGN §3-4): per corpus, per utterance, or none.

"corpus": mean and standard deviation per coefficient over ALL frames (padding frames included, as
the model sees them) of that corpus' own training examples; the same statistics then transform its
training stream and its evaluation splits. No label is read. "utterance": each utterance by its own
frames. "none": raw features, as the authors fed them.
"""

from __future__ import annotations

import dataclasses

import numpy as np

KINDS = ("corpus", "utterance", "none")
_EPS = 1e-6  # std floor: a constant coefficient (e.g. an all-padding corpus) must not divide by 0


@dataclasses.dataclass(frozen=True)
class Stats:
    """Per-coefficient mean and std [F] (float64, computed in float64 so that large corpora do not
    lose digits), or None for the utterance/none kinds."""

    kind: str
    mean: np.ndarray | None = None
    std: np.ndarray | None = None


def corpus_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std [F] over every frame of features [N, T, F] (population std, ddof=0)."""
    if features.ndim != 3 or features.shape[0] == 0:
        raise ValueError(f"corpus statistics need features [N>0, T, F], got shape {features.shape}")
    frames = features.reshape(-1, features.shape[-1]).astype(np.float64)
    return frames.mean(0), frames.std(0)


def fit(kind: str, train_features: np.ndarray) -> Stats:
    """The statistics of `kind` from a corpus' training features [N, T, F]."""
    if kind not in KINDS:
        raise ValueError(f"config.normalization={kind!r} is unknown; choose one of {', '.join(KINDS)}")
    if kind != "corpus":
        return Stats(kind)
    mean, std = corpus_stats(train_features)
    return Stats(kind, mean, std)


def apply(stats: Stats, features: np.ndarray) -> np.ndarray:
    """Standardised float32 copy of features [N, T, F] (or [T, F])."""
    if stats.kind == "none":
        return np.asarray(features, dtype=np.float32)
    x = np.asarray(features, dtype=np.float64)
    if stats.kind == "corpus":
        mean, std = stats.mean, stats.std
    else:  # per utterance: statistics over the time axis of each utterance
        mean = x.mean(-2, keepdims=True)
        std = x.std(-2, keepdims=True)
    return ((x - mean) / np.maximum(std, _EPS)).astype(np.float32)
