"""Feature standardisation without labels (docs/method.md): per corpus, per speaker, per utterance, or none.

"corpus": mean and standard deviation per coefficient over ALL frames (padding frames included, as
the model sees them) of that corpus' own training examples; the same statistics then transform its
training stream and its evaluation splits. "speaker": the same statistics per speaker of the corpus,
each speaker's frames standardised by that speaker's own (speaker normalisation, the strategy
Schuller et al. 2010 found most effective across corpora); it reads speaker ids, which every corpus
here carries in its file names, and no emotion label. "utterance": each utterance by its own frames.
"none": raw features, as the authors fed them.

Why per-speaker statistics need a minimum: a speaker whose recordings hold one or two emotions
(talk-show clips, one agent per call type) has the emotion as its mean, and subtracting that mean
erases the emotion. So only a speaker with at least `min_per_speaker` recordings
(config.normalization_min_per_speaker) gets its own statistics; every other speaker, a speaker the
statistics have not seen (new recordings), and every speaker of a corpus whose examples all carry one
speaker id get the corpus statistics. `describe` says which statistics each corpus got.

Frames: statistics pool every frame of every example ([N, T, F] -> [N*T, F]), so they hold for T = 1
(utterance functionals as one frame) too; "utterance" needs T >= 2 and is refused for T = 1.
"""

from __future__ import annotations

import dataclasses

import numpy as np

KINDS = ("corpus", "speaker", "utterance", "none")
_EPS = 1e-6  # std floor: a constant coefficient (e.g. an all-padding corpus) must not divide by 0


@dataclasses.dataclass(frozen=True)
class Stats:
    """Per-coefficient mean and std [F] (float64, computed in float64 so that large corpora do not
    lose digits), or None for the utterance/none kinds; for "speaker", also {speaker: (mean, std)}
    for the speakers with enough recordings, and the speakers that fell back to the corpus'."""

    kind: str
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    by_speaker: dict[str, tuple[np.ndarray, np.ndarray]] | None = None
    # "speaker" kind only: speakers below the minimum (corpus statistics), and the minimum used.
    fallback_speakers: tuple[str, ...] = ()
    min_per_speaker: int = 1
    speakers: tuple[str, ...] = ()  # every speaker id the statistics were fitted on


def corpus_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std [F] over every frame of features [N, T, F] (population std, ddof=0)."""
    if features.ndim != 3 or features.shape[0] == 0:
        raise ValueError(f"corpus statistics need features [N>0, T, F], got shape {features.shape}")
    frames = features.reshape(-1, features.shape[-1]).astype(np.float64)
    return frames.mean(0), frames.std(0)


def fit(kind: str, train_features: np.ndarray, speakers: np.ndarray | None = None, *,
        min_per_speaker: int = 1, corpus_features: np.ndarray | None = None) -> Stats:
    """The statistics of `kind` from a corpus' features [N, T, F] (and its speaker ids [N] for
    "speaker").

    Args:
      kind: one of KINDS.
      train_features: [N, T, F] the examples the statistics come from.
      speakers: [N] speaker ids ("speaker" kind).
      min_per_speaker: recordings a speaker needs for its own statistics ("speaker" kind; >= 1).
      corpus_features: [M, T, F] where the corpus statistics (and the fallback) come from, when not
        `train_features` (the source's training speakers, without its held-out ones).
    """
    if kind not in KINDS:
        raise ValueError(f"config.normalization={kind!r} is unknown; choose one of {', '.join(KINDS)}")
    if kind == "utterance" and train_features.ndim == 3 and train_features.shape[1] < 2:
        raise ValueError("config.normalization='utterance' standardises each utterance over its frames, "
                         f"but these features have {train_features.shape[1]} frame per example (utterance "
                         "functionals) and would all become 0; use normalization='speaker' or 'corpus'")
    if kind in ("utterance", "none"):
        return Stats(kind)
    mean, std = corpus_stats(train_features if corpus_features is None else corpus_features)
    if kind == "corpus":
        return Stats(kind, mean, std)
    if speakers is None or len(speakers) != len(train_features):
        raise ValueError("config.normalization='speaker' needs a speaker id per example "
                         f"({0 if speakers is None else len(speakers)} ids for {len(train_features)} "
                         "examples); use normalization='corpus' for data without speaker ids")
    if min_per_speaker < 1:
        raise ValueError(f"normalization.fit: min_per_speaker={min_per_speaker} must be >= 1")
    speakers = np.asarray(speakers).astype(str)
    names, counts = np.unique(speakers, return_counts=True)
    known = tuple(str(s) for s in names)
    if len(names) == 1:  # one id for the whole corpus: its "speaker" statistics are the corpus'
        return Stats(kind, mean, std, {}, (), min_per_speaker, known)
    by_speaker = {str(s): corpus_stats(train_features[speakers == s])
                  for s, n in zip(names, counts) if n >= min_per_speaker}
    fallback = tuple(str(s) for s, n in zip(names, counts) if n < min_per_speaker)
    return Stats(kind, mean, std, by_speaker, fallback, min_per_speaker, known)


def apply(stats: Stats, features: np.ndarray, speakers: np.ndarray | None = None) -> np.ndarray:
    """Standardised float32 copy of features [N, T, F] (or [T, F]); `speakers` [N] picks each
    example's statistics for the "speaker" kind (None, or a speaker without statistics of its own:
    the corpus statistics)."""
    if stats.kind == "none":
        return np.asarray(features, dtype=np.float32)
    x = np.asarray(features, dtype=np.float64)
    if stats.kind == "utterance":  # statistics over the time axis of each utterance
        mean = x.mean(-2, keepdims=True)
        std = x.std(-2, keepdims=True)
    elif stats.kind == "speaker" and speakers is not None and stats.by_speaker:
        pairs = [stats.by_speaker.get(str(s), (stats.mean, stats.std)) for s in speakers]
        mean = np.stack([m for m, _ in pairs])[:, None, :]
        std = np.stack([s for _, s in pairs])[:, None, :]
    else:
        mean, std = stats.mean, stats.std
    return ((x - mean) / np.maximum(std, _EPS)).astype(np.float32)


def describe(stats: Stats, corpus: str) -> dict:
    """What statistics `corpus` got, for results.json and the run log:
    {"corpus", "kind", "per_speaker" [names], "corpus_fallback" [names], "min_per_speaker",
    "text" (one line)}."""
    per_speaker = sorted(stats.by_speaker or {})
    fallback = sorted(stats.fallback_speakers)
    if stats.kind != "speaker":
        text = f"{corpus}: {stats.kind} normalisation"
    elif not per_speaker and not fallback:
        text = f"{corpus}: corpus statistics (all examples carry one speaker id)"
    else:
        text = f"{corpus}: per-speaker statistics for {len(per_speaker)} speaker(s)"
        if fallback:
            text += (f"; {len(fallback)} speaker(s) with fewer than {stats.min_per_speaker} recordings "
                     f"fell back to corpus statistics ({', '.join(fallback)})")
    return {"corpus": corpus, "kind": stats.kind, "per_speaker": per_speaker,
            "corpus_fallback": fallback, "min_per_speaker": stats.min_per_speaker, "text": text}
