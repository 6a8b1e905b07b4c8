"""Canonical emotion names and one label table per corpus.

Every builder writes its `label` feature as an index into `LABEL_NAMES`, so labels from different
corpora are directly comparable; a task's class set (e.g. the 5 shared classes) is chosen later by
the input pipeline. Each corpus' own emotion codes are mapped here, in one table each, and nowhere
else: a label mix-up silently ruins every cross-corpus number, so an unknown code is an error,
never a guess.
"""

from __future__ import annotations

from collections.abc import Mapping

# Canonical emotion names, sorted; the union of the five corpora of the authors' protocol.
EMOTIONS: tuple[str, ...] = (
    "angry", "boredom", "calm", "disgust", "fear", "happy", "neutral", "sad", "surprise",
)
UNKNOWN = "unknown"
# The ClassLabel names of EVERY builder; "unknown" marks an unlabelled recording.
LABEL_NAMES: tuple[str, ...] = EMOTIONS + (UNKNOWN,)
UNKNOWN_LABEL: int = LABEL_NAMES.index(UNKNOWN)

# EmoDB (Berlin): letter at index 5 of `SSTTTEv.wav` (German initials).
EMODB_CODES: Mapping[str, str] = {
    "W": "angry",  # Wut / Ärger
    "L": "boredom",  # Langeweile
    "E": "disgust",  # Ekel
    "A": "fear",  # Angst
    "F": "happy",  # Freude
    "T": "sad",  # Trauer
    "N": "neutral",
}
# EMOVO: first field of `{emo}-{speaker}-{sentence}.wav` (Italian abbreviations).
EMOVO_CODES: Mapping[str, str] = {
    "dis": "disgust",  # disgusto
    "gio": "happy",  # gioia
    "neu": "neutral",
    "pau": "fear",  # paura
    "rab": "angry",  # rabbia
    "sor": "surprise",  # sorpresa
    "tri": "sad",  # tristezza
}
# CASIA: emotion folder names `{speaker}/{emotion}/{201..250}.wav`.
CASIA_CODES: Mapping[str, str] = {
    "angry": "angry",
    "fear": "fear",
    "happy": "happy",
    "neutral": "neutral",
    "sad": "sad",
    "surprise": "surprise",
}
# RAVDESS: third field of `03-01-05-01-02-01-12.wav`.
RAVDESS_CODES: Mapping[str, str] = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fear",  # fearful
    "07": "disgust",
    "08": "surprise",  # surprised
}
# SAVEE: letter prefix of `DC/a01.wav`; "sa" and "su" are two letters, so match longest first.
SAVEE_CODES: Mapping[str, str] = {
    "a": "angry",
    "d": "disgust",
    "f": "fear",
    "h": "happy",
    "n": "neutral",
    "sa": "sad",
    "su": "surprise",
}

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
