"""EmoDB (Berlin Database of Emotional Speech) TFDS builder.

Manual folder layout (the original release, or the FLAC copy in ../shared/corpora/emodb):

  <manual_dir>/wav/SSTTTEv.wav   (or .flac)

SS speaker (03 08 09 10 11 12 13 14 15 16), TTT text (a01..b10), E the emotion letter (German
initial: W anger, L boredom, E disgust, A fear, F happiness, T sadness, N neutral), v version.
The letter in the file name is the label (some third-party CSVs map the letters wrongly).

    python -m data.tfds_cli build data/emodb --manual_dir=../shared/corpora/emodb --data_dir=DIR \
        [--config=mfcc39]  (no --config: every front end; egemaps, compare need opensmile)
"""

from __future__ import annotations

import os
import re
import sys

# `tfds build data/emodb` imports this module without the repository root on sys.path.
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from emodna_jax.audio import audio_builder  # noqa: E402
from emodna_jax.audio import labels  # noqa: E402

# Speaker -> gender, from the corpus documentation.
GENDERS = {"03": "male", "10": "male", "11": "male", "12": "male", "15": "male",
           "08": "female", "09": "female", "13": "female", "14": "female", "16": "female"}
_NAME = re.compile(r"^(?P<speaker>\d\d)(?P<text>[a-z]\d\d)(?P<emotion>[A-Z])(?P<version>[a-z])$")


class Builder(audio_builder.AudioCorpusBuilder):
    """EmoDB: 535 utterances, 10 German actors, 7 emotions."""

    CORPUS = "emodb"
    HOMEPAGE = "http://emodb.bilderbar.info/"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Put EmoDB's `wav` folder in the manual folder: <manual_dir>/wav/03a01Fa.wav, ... (535 files;
.wav at any rate or .flac). The file name SSTTTEv carries speaker SS and emotion letter E
(W anger, L boredom, E disgust, A fear, F happiness, T sadness, N neutral)."""

    @classmethod
    def list_records(cls, root, *, bad=None):
        bad = bad or audio_builder.BadFiles(cls.CORPUS, skip=False)
        wav_dir = os.path.join(root, "wav")
        audio_builder.require_dir(wav_dir, cls.CORPUS, "the `wav` folder",
                                  cls.MANUAL_DOWNLOAD_INSTRUCTIONS)
        records = []
        for path in audio_builder.list_audio_files(wav_dir):
            file = audio_builder.relative(path, root)
            stem = os.path.splitext(os.path.basename(path))[0]
            m = _NAME.match(stem)
            if not m:
                bad.report(f"emodb: file {file!r} does not follow EmoDB's naming SSTTTEv "
                           "(e.g. 03a01Fa.wav); rename or remove it.")
                continue
            emotion = bad.emotion(labels.CORPORA["emodb"].codes, m["emotion"], file=file)
            if emotion is None:
                continue
            records.append(audio_builder.AudioRecord(
                path=path, file=file, label=emotion, speaker=m["speaker"],
                gender=GENDERS.get(m["speaker"], "unknown")))
        return records
