"""SAVEE (Surrey Audio-Visual Expressed Emotion) TFDS builder, audio only.

Manual folder layout (the AudioData release):

  <manual_dir>/{speaker}/{code}{nn}.wav   or   <manual_dir>/AudioData/{speaker}/{code}{nn}.wav

speakers DC JE JK KL (four male English speakers); code a anger, d disgust, f fear, h happiness,
n neutral, sa sadness, su surprise (480 files). Other files in the speaker folders (e.g. info
text) are ignored; other audio names are bad files.

    python -m data.tfds_cli build data/savee --manual_dir=PATH/savee --data_dir=DIR \
        [--config=mfcc39]  (no --config: every front end; egemaps, compare need opensmile)
"""

from __future__ import annotations

import os
import re
import sys

# `tfds build data/savee` imports this module without the repository root on sys.path.
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from emodna_jax.audio import audio_builder  # noqa: E402
from emodna_jax.audio import labels  # noqa: E402

_SPEAKER = re.compile(r"^[A-Z]{2}$")
_NAME = re.compile(r"^(?P<emotion>[a-z]+)(?P<number>\d+)$")


class Builder(audio_builder.AudioCorpusBuilder):
    """SAVEE: 480 utterances, 4 male English speakers, 7 emotions."""

    CORPUS = "savee"
    HOMEPAGE = "http://kahlan.eps.surrey.ac.uk/savee/"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Put SAVEE's AudioData speaker folders in the manual folder: <manual_dir>/DC/a01.wav, ... or
<manual_dir>/AudioData/DC/a01.wav (speakers DC JE JK KL; codes a d f h n sa su)."""

    @classmethod
    def list_records(cls, root, *, bad=None):
        bad = bad or audio_builder.BadFiles(cls.CORPUS, skip=False)
        audio_builder.require_dir(root, cls.CORPUS, "the corpus root",
                                  cls.MANUAL_DOWNLOAD_INSTRUCTIONS)
        base = os.path.join(root, "AudioData")
        base = base if os.path.isdir(base) else root
        speakers = sorted(d for d in os.listdir(base)
                          if _SPEAKER.match(d) and os.path.isdir(os.path.join(base, d)))
        if not speakers:
            raise FileNotFoundError(
                f"savee: no speaker folders (DC JE JK KL) in {base!r}.\n"
                f"Expected layout:\n{cls.MANUAL_DOWNLOAD_INSTRUCTIONS}")
        records = []
        for speaker in speakers:
            for path in audio_builder.list_audio_files(os.path.join(base, speaker)):
                file = audio_builder.relative(path, root)
                m = _NAME.match(os.path.splitext(os.path.basename(path))[0])
                if not m:
                    bad.report(f"savee: file {file!r} does not follow SAVEE's naming "
                               "{code}{nn}.wav (e.g. sa01.wav); rename or remove it.")
                    continue
                emotion = bad.emotion(labels.CORPORA["savee"].codes, m["emotion"], file=file)
                if emotion is None:
                    continue
                records.append(audio_builder.AudioRecord(
                    path=path, file=file, label=emotion, speaker=speaker, gender="male"))
        return records
