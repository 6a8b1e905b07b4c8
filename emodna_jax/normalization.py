"""Feature standardisation without labels (DESIGN §3-4): per corpus, per speaker, per utterance, or none.

"corpus": mean and standard deviation per coefficient over ALL frames (padding frames included, as
the model sees them) of that corpus' own training examples; the same statistics then transform its
training stream and its evaluation splits. "speaker": the same statistics per speaker of the corpus,
each speaker's frames standardised by that speaker's own (speaker normalisation, the strategy
Schuller et al. 2010 found most effective across corpora); it reads speaker ids, which every corpus
here carries in its file names, and no emotion label. Examples of a speaker the statistics have not
seen (new recordings without a speaker id) fall back to the corpus statistics. "utterance": each
utterance by its own frames. "none": raw features, as the authors fed them.
"""

from __future__ import annotations

import dataclasses

import numpy as np

KINDS = ("corpus", "speaker", "utterance", "none")
_EPS = 1e-6  # std floor: a constant coefficient (e.g. an all-padding corpus) must not divide by 0


@dataclasses.dataclass(frozen=True)
class Stats:
    """Per-coefficient mean and std [F] (float64, computed in float64 so that large corpora do not
    lose digits), or None for the utterance/none kinds; for "speaker", also {speaker: (mean, std)}."""

    kind: str
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    by_speaker: dict[str, tuple[np.ndarray, np.ndarray]] | None = None


def corpus_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std [F] over every frame of features [N, T, F] (population std, ddof=0)."""
    if features.ndim != 3 or features.shape[0] == 0:
        raise ValueError(f"corpus statistics need features [N>0, T, F], got shape {features.shape}")
    frames = features.reshape(-1, features.shape[-1]).astype(np.float64)
    return frames.mean(0), frames.std(0)


def fit(kind: str, train_features: np.ndarray, speakers: np.ndarray | None = None) -> Stats:
    """The statistics of `kind` from a corpus' features [N, T, F] (and its speaker ids [N] for
    "speaker")."""
    if kind not in KINDS:
        raise ValueError(f"config.normalization={kind!r} is unknown; choose one of {', '.join(KINDS)}")
    if kind in ("utterance", "none"):
        return Stats(kind)
    mean, std = corpus_stats(train_features)
    if kind == "corpus":
        return Stats(kind, mean, std)
    if speakers is None or len(speakers) != len(train_features):
        raise ValueError("config.normalization='speaker' needs a speaker id per example "
                         f"({0 if speakers is None else len(speakers)} ids for {len(train_features)} "
                         "examples); use normalization='corpus' for data without speaker ids")
    speakers = np.asarray(speakers)
    by_speaker = {str(s): corpus_stats(train_features[speakers == s]) for s in np.unique(speakers)}
    return Stats(kind, mean, std, by_speaker)


def apply(stats: Stats, features: np.ndarray, speakers: np.ndarray | None = None) -> np.ndarray:
    """Standardised float32 copy of features [N, T, F] (or [T, F]); `speakers` [N] picks each
    example's statistics for the "speaker" kind (None: the corpus statistics for all)."""
    if stats.kind == "none":
        return np.asarray(features, dtype=np.float32)
    x = np.asarray(features, dtype=np.float64)
    if stats.kind == "utterance":  # statistics over the time axis of each utterance
        mean = x.mean(-2, keepdims=True)
        std = x.std(-2, keepdims=True)
    elif stats.kind == "speaker" and speakers is not None:
        pairs = [stats.by_speaker.get(str(s), (stats.mean, stats.std)) for s in speakers]
        mean = np.stack([m for m, _ in pairs])[:, None, :]
        std = np.stack([s for _, s in pairs])[:, None, :]
    else:
        mean, std = stats.mean, stats.std
    return ((x - mean) / np.maximum(std, _EPS)).astype(np.float32)
