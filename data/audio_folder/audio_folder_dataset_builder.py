"""Your own recordings as a TFDS dataset: class folders, a flat unlabelled folder, or a manifest.

Three layouts of the manual folder, detected in this order:

1. Manifest: <manual_dir>/manifest.csv with a header row and columns `path` (required, relative
   to the manifest's folder), `label` (optional: an emotion name or synonym, empty or "unknown"
   for unlabelled), `speaker` and `gender` (optional). Only the listed files are used.
2. Class folders: every sub-folder is named after an emotion (canonical names or synonyms, any
   case: angry/anger/mad, happy/happiness/joy, sad/sadness, fear/fearful/scared, neutral, calm,
   surprise/surprised, disgust/disgusted, boredom/bored), or `unknown`/`unlabelled` for
   recordings without a label; audio files are searched recursively inside each of them.
3. Flat: audio files directly in <manual_dir>, no sub-folders: an unlabelled corpus (label
   "unknown"), e.g. a call centre's recordings used as the unlabelled target.

Speaker and gender are "unknown" unless the manifest gives them. `corpus` is the folder's name.
Anything else (audio beside class folders, a sub-folder that is not an emotion name) is refused
with an error naming the folder, rather than guessed.

    python -m data.tfds_cli build data/audio_folder --manual_dir=PATH --data_dir=DIR \
        [--config=mfcc39]  (no --config: every front end; egemaps, compare need opensmile)
"""

from __future__ import annotations

import csv
import os
import sys

# `tfds build data/audio_folder` imports this module without the repository root on sys.path.
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from emodna_jax.audio import audio_builder  # noqa: E402
from emodna_jax.audio import labels  # noqa: E402

MANIFEST = "manifest.csv"
UNLABELLED_FOLDERS = ("unknown", "unlabelled", "unlabeled")


def _folder_label(name: str) -> str | None:
    """Canonical emotion (or "unknown") of a class folder name; None if it is not one."""
    key = name.strip().lower()
    if key in UNLABELLED_FOLDERS:
        return labels.UNKNOWN
    return labels.SYNONYMS.get(key)


class Builder(audio_builder.AudioCorpusBuilder):
    """A user's own recordings from a folder (labelled, unlabelled, or listed in a manifest)."""

    CORPUS = ""
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Point the manual folder at your recordings, laid out as ONE of:
  (1) <manual_dir>/manifest.csv with columns path[,label][,speaker][,gender], paths relative to it;
  (2) class folders <manual_dir>/<emotion>/**/*.wav (angry, happy, sad, fear, neutral, calm,
      surprise, disgust, boredom or a synonym, any case; `unknown` for unlabelled files);
  (3) a flat folder <manual_dir>/*.wav of unlabelled recordings.
Audio: .wav/.flac/.ogg/.aiff at any sample rate, mono or stereo."""

    def corpus_name(self, root: str) -> str:
        return os.path.basename(os.path.normpath(root)) or "audio_folder"

    @classmethod
    def list_records(cls, root, *, bad=None):
        bad = bad or audio_builder.BadFiles("audio_folder", skip=False)
        audio_builder.require_dir(root, "audio_folder", "your recordings folder",
                                  cls.MANUAL_DOWNLOAD_INSTRUCTIONS)
        if os.path.isfile(os.path.join(root, MANIFEST)):
            return _from_manifest(root, bad)
        subdirs = sorted(d for d in os.listdir(root)
                         if not d.startswith(".") and os.path.isdir(os.path.join(root, d)))
        top_files = audio_builder.list_audio_files(root)
        if not subdirs:
            return [audio_builder.AudioRecord(path=p, file=audio_builder.relative(p, root),
                                              label=labels.UNKNOWN) for p in top_files]
        not_emotions = [d for d in subdirs if _folder_label(d) is None]
        if not_emotions:
            raise ValueError(
                f"audio_folder: sub-folder(s) {not_emotions} of {root!r} are not emotion names "
                f"(accepted, any case: {', '.join(sorted(labels.SYNONYMS))}, or "
                f"{'/'.join(UNLABELLED_FOLDERS)}). Rename them, move unlabelled audio into the "
                f"root folder without sub-folders, or list the files in {MANIFEST}.\n"
                f"Expected layout:\n{cls.MANUAL_DOWNLOAD_INSTRUCTIONS}")
        if top_files:
            raise ValueError(
                f"audio_folder: {len(top_files)} audio file(s) (e.g. "
                f"{os.path.basename(top_files[0])!r}) lie in {root!r} beside the class folders "
                f"{subdirs}; move them into a class folder or into `unknown/`.")
        records = []
        for d in subdirs:
            for path in audio_builder.list_audio_files(os.path.join(root, d), recursive=True):
                records.append(audio_builder.AudioRecord(
                    path=path, file=audio_builder.relative(path, root), label=_folder_label(d)))
        return records


def _from_manifest(root: str, bad: audio_builder.BadFiles) -> list[audio_builder.AudioRecord]:
    manifest = os.path.join(root, MANIFEST)
    with open(manifest, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = [c.strip().lower() for c in (reader.fieldnames or [])]
        if "path" not in columns:
            raise ValueError(f"audio_folder: {manifest!r} has no `path` column (header found: "
                             f"{reader.fieldnames}); the first row must name the columns "
                             "path[,label][,speaker][,gender].")
        rows = [{k.strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
                for row in reader]
    records = []
    for line, row in enumerate(rows, start=2):
        where = f"{manifest}, line {line}"
        if not row.get("path"):
            raise ValueError(f"audio_folder: {where}: empty `path`.")
        path = os.path.normpath(os.path.join(root, row["path"]))
        if not os.path.isfile(path):
            bad.report(audio_builder.features_lib.AudioFileError(
                f"audio_folder: {where}: file {row['path']!r} not found (paths are relative to "
                "the manifest's folder)."))
            continue
        raw_label = row.get("label", "")
        if raw_label == "" or raw_label.lower() == labels.UNKNOWN:
            label = labels.UNKNOWN
        else:
            try:
                label = labels.canonical_emotion(raw_label)
            except ValueError as e:
                raise ValueError(f"audio_folder: {where} ({row['path']!r}): {e}") from e
        gender = row.get("gender", "").lower() or "unknown"
        if gender in ("f", "m"):
            gender = {"f": "female", "m": "male"}[gender]
        if gender not in audio_builder.GENDERS:
            raise ValueError(f"audio_folder: {where}: gender {row['gender']!r} is not one of "
                             f"{audio_builder.GENDERS} (or f/m).")
        records.append(audio_builder.AudioRecord(
            path=path, file=audio_builder.relative(path, root), label=label,
            speaker=row.get("speaker") or "unknown", gender=gender))
    return records
