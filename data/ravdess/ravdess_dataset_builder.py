"""RAVDESS (Ryerson Audio-Visual Database of Emotional Speech and Song) TFDS builder, audio only.

Manual folder layout (the Audio_Speech_Actors_01-24 / Audio_Song_Actors_01-24 zips, extracted):

  <manual_dir>/Actor_12/03-01-05-01-02-01-12.wav   (searched recursively; .wav or .flac)

Seven fields: modality (03 audio-only), vocal channel (01 speech, 02 song), emotion (01 neutral,
02 calm, 03 happy, 04 sad, 05 angry, 06 fearful, 07 disgust, 08 surprised), intensity (01 normal,
02 strong), statement, repetition, actor (01..24; odd male, even female).

    python -m data.tfds_cli build data/ravdess --manual_dir=PATH/ravdess --data_dir=DIR \
        [--config=mfcc39]  (no --config: every front end; egemaps, compare need opensmile)
"""

from __future__ import annotations

import os
import re
import sys

# `tfds build data/ravdess` imports this module without the repository root on sys.path.
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from emodna_jax.audio import audio_builder  # noqa: E402
from emodna_jax.audio import labels  # noqa: E402

_NAME = re.compile(r"^(?P<modality>\d\d)-(?P<channel>\d\d)-(?P<emotion>\d\d)-(?P<intensity>\d\d)-"
                   r"(?P<statement>\d\d)-(?P<repetition>\d\d)-(?P<actor>\d\d)$")
_ACTOR_DIR = re.compile(r"^Actor_(\d\d)$")


class Builder(audio_builder.AudioCorpusBuilder):
    """RAVDESS audio: 24 actors, 8 emotions (1,440 speech files, 1,012 song files)."""

    CORPUS = "ravdess"
    HOMEPAGE = "https://zenodo.org/record/1188976"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Extract RAVDESS' audio zips into the manual folder: <manual_dir>/Actor_01/03-01-01-01-01-01-01.wav
... (searched recursively; names MM-VV-EE-II-SS-RR-AA with EE the emotion code 01..08 and AA the
actor; modality MM must be 03, audio-only)."""

    @classmethod
    def list_records(cls, root, *, bad=None):
        bad = bad or audio_builder.BadFiles(cls.CORPUS, skip=False)
        audio_builder.require_dir(root, cls.CORPUS, "the corpus root",
                                  cls.MANUAL_DOWNLOAD_INSTRUCTIONS)
        records = []
        for path in audio_builder.list_audio_files(root, recursive=True):
            file = audio_builder.relative(path, root)
            m = _NAME.match(os.path.splitext(os.path.basename(path))[0])
            if not m or m["modality"] != "03":
                bad.report(f"ravdess: file {file!r} is not an audio-only RAVDESS file named "
                           "03-VV-EE-II-SS-RR-AA.wav; rename or remove it.")
                continue
            # The actor field is the speaker; a mismatching Actor_NN folder means a mix-up.
            folder = _ACTOR_DIR.match(os.path.basename(os.path.dirname(path)))
            if folder and folder.group(1) != m["actor"]:
                bad.report(f"ravdess: file {file!r} names actor {m['actor']} but lies in folder "
                           f"Actor_{folder.group(1)}; move or remove it.")
                continue
            emotion = bad.emotion(labels.CORPORA["ravdess"].codes, m["emotion"], file=file)
            if emotion is None:
                continue
            records.append(audio_builder.AudioRecord(
                path=path, file=file, label=emotion, speaker=m["actor"],
                gender="male" if int(m["actor"]) % 2 else "female"))
        return records
