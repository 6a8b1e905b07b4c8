"""Canonical emotion names and one record per corpus (label table, task letter, held-out speakers).

Every builder writes its `label` feature as an index into `LABEL_NAMES`, so labels from different
corpora are directly comparable; a task's class set (e.g. the 5 shared classes) is chosen later by
the input pipeline. Each corpus' own emotion codes are mapped here, in one table each, and nowhere
else: a label mix-up silently ruins every cross-corpus number, so an unknown code is an error,
never a guess.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from emodna_jax.audio import synthetic_speech

# Canonical emotion names, sorted; the union of the five corpora of the authors' protocol.
EMOTIONS: tuple[str, ...] = (
    "angry", "boredom", "calm", "disgust", "fear", "happy", "neutral", "sad", "surprise",
)
UNKNOWN = "unknown"
# The ClassLabel names of EVERY builder; "unknown" marks an unlabelled recording.
LABEL_NAMES: tuple[str, ...] = EMOTIONS + (UNKNOWN,)
UNKNOWN_LABEL: int = LABEL_NAMES.index(UNKNOWN)


@dataclasses.dataclass(frozen=True)
class Corpus:
    """One corpus, declared once; every other table (corpora.REAL_CORPORA and SYNTHETIC_CORPORA,
    configs/cross_corpus.py's task letters, input_pipeline.AUTO_VAL_SPEAKERS,
    config_checks.CORPUS_EMOTIONS) is read from `CORPORA`. A new corpus is one record here and its
    builder in data/<name>/."""

    name: str  # config.source / config.target; a real corpus' builder is data/<name>/
    codes: Mapping[str, str]  # the corpus' own emotion codes -> canonical names (EMOTIONS)
    letter: str = ""  # its letter in a task name (configs/cross_corpus.py: c2b); "" for none
    # source_val_speakers="auto": a fixed held-out set (one male, one female speaker where the corpus
    # has both; a quarter of CASIA's four speakers); () holds out every fifth speaker instead.
    val_speakers: tuple[str, ...] = ()
    synthetic_split: str = ""  # a synthetic corpus: its split of the `synthetic` builder

    @property
    def emotions(self) -> frozenset[str]:
        """The canonical emotions the corpus has."""
        return frozenset(self.codes.values())


# In this order everywhere a list of corpora is shown or searched (recipe's labelled sources).
CORPORA: Mapping[str, Corpus] = {c.name: c for c in (
    # EmoDB (Berlin): letter at index 5 of `SSTTTEv.wav` (German initials).
    Corpus("emodb", letter="b", val_speakers=("03", "08"), codes={
        "W": "angry",  # Wut / Ärger
        "L": "boredom",  # Langeweile
        "E": "disgust",  # Ekel
        "A": "fear",  # Angst
        "F": "happy",  # Freude
        "T": "sad",  # Trauer
        "N": "neutral",
    }),
    # EMOVO: first field of `{emo}-{speaker}-{sentence}.wav` (Italian abbreviations).
    Corpus("emovo", letter="e", val_speakers=("f1", "m1"), codes={
        "dis": "disgust",  # disgusto
        "gio": "happy",  # gioia
        "neu": "neutral",
        "pau": "fear",  # paura
        "rab": "angry",  # rabbia
        "sor": "surprise",  # sorpresa
        "tri": "sad",  # tristezza
    }),
    # CASIA: emotion folder names `{speaker}/{emotion}/{201..250}.wav`.
    Corpus("casia", letter="c", val_speakers=("wangzhe",), codes={
        "angry": "angry",
        "fear": "fear",
        "happy": "happy",
        "neutral": "neutral",
        "sad": "sad",
        "surprise": "surprise",
    }),
    # RAVDESS: third field of `03-01-05-01-02-01-12.wav`.
    Corpus("ravdess", letter="r", codes={
        "01": "neutral",
        "02": "calm",
        "03": "happy",
        "04": "sad",
        "05": "angry",
        "06": "fear",  # fearful
        "07": "disgust",
        "08": "surprise",  # surprised
    }),
    # SAVEE: letter prefix of `DC/a01.wav`; "sa" and "su" are two letters, so match longest first.
    Corpus("savee", letter="s", codes={
        "a": "angry",
        "d": "disgust",
        "f": "fear",
        "h": "happy",
        "n": "neutral",
        "sa": "sad",
        "su": "surprise",
    }),
    # The embedded synthetic corpora (synthetic_speech.py), labelled with the canonical names.
    *(Corpus(f"synthetic_{split}", codes={e: e for e in synthetic_speech.CLASSES},
             val_speakers=(f"{split}f1", f"{split}m1"), synthetic_split=split)
      for split in synthetic_speech.CORPUS_NAMES),
)}

# Lower-case names a user may use for class folders or manifest labels (audio_folder builder).
SYNONYMS: Mapping[str, str] = {
    **{e: e for e in EMOTIONS},
    "anger": "angry", "angry": "angry", "mad": "angry", "rage": "angry", "annoyed": "angry",
    "frustrated": "angry", "frustration": "angry",
    "bored": "boredom", "boring": "boredom",
    "calm": "calm", "relaxed": "calm",
    "disgusted": "disgust", "disgusting": "disgust",
    "fearful": "fear", "scared": "fear", "afraid": "fear", "anxious": "fear", "anxiety": "fear",
    "happiness": "happy", "joy": "happy", "joyful": "happy", "glad": "happy",
    "neutrality": "neutral",
    "sadness": "sad", "unhappy": "sad",
    "surprised": "surprise",
    # Codes of the corpora, so that a folder named after them also works.
    "neu": "neutral", "ang": "angry", "hap": "happy", "fea": "fear", "dis": "disgust",
    "sur": "surprise",
}


def _accepted() -> str:
    return ", ".join(sorted(SYNONYMS))


def canonical_emotion(name: str) -> str:
    """Maps an emotion name or synonym (case-insensitive, surrounding spaces ignored) to its
    canonical name in `EMOTIONS`.

    Raises:
      ValueError: naming the unknown name and listing the accepted ones.
    """
    key = str(name).strip().lower()
    if key not in SYNONYMS:
        raise ValueError(
            f"Unknown emotion name {name!r}. Accepted (case-insensitive): {_accepted()}.")
    return SYNONYMS[key]


def label_index(name: str) -> int:
    """Index into `LABEL_NAMES` of a canonical emotion, a synonym, or "unknown"."""
    if str(name).strip().lower() == UNKNOWN:
        return UNKNOWN_LABEL
    return LABEL_NAMES.index(canonical_emotion(name))


def code_to_emotion(table: Mapping[str, str], code: str, *, corpus: str, file: str) -> str:
    """Looks up a corpus' own emotion `code` in its `table`.

    Raises:
      ValueError: naming the corpus, the file and the code, listing the valid codes, so that a
        stray or renamed file is never mislabelled.
    """
    if code not in table:
        valid = ", ".join(f"{k}={v}" for k, v in table.items())
        raise ValueError(
            f"{corpus}: unknown emotion code {code!r} in file {file!r}. Valid codes: {valid}. "
            "Remove or rename the file (or build with skip_bad_files) to continue.")
    return table[code]


def parse_classes(spec: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Parses a class set such as "angry,fear,happy,neutral,sad" into canonical names.

    Order is kept (it defines the task's label indices 0..K-1); synonyms are mapped.

    Raises:
      ValueError: for an empty set, an unknown name, or a class listed twice.
    """
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    parts = [p.strip() for p in parts if p.strip()]
    if not parts:
        raise ValueError(
            f"Empty class set {spec!r}: give comma-separated emotion names, e.g. "
            "'angry,fear,happy,neutral,sad'.")
    names = tuple(canonical_emotion(p) for p in parts)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"Class set {spec!r} lists {duplicates} more than once.")
    return names
