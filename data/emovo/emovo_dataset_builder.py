"""EMOVO (Italian emotional speech) TFDS builder.

Manual folder layout (the original release, or the FLAC copy in ../shared/corpora/emovo):

  <manual_dir>/{speaker}/{emo}-{speaker}-{sentence}.wav   (or .flac)

speaker f1 f2 f3 (female) m1 m2 m3 (male); emo dis disgust, gio joy, neu neutral, pau fear,
rab anger, sor surprise, tri sadness; 14 sentences each (588 files). The original is 48 kHz
stereo from two different microphones: the builder keeps ONE channel (`channel`, default 0, or
EMODNA_AUDIO_CHANNEL), never their average. Other top-level folders (e.g. documents) are ignored.

    python -m data.tfds_cli build data/emovo --manual_dir=../shared/corpora/emovo --data_dir=DIR \
        [--config=mfcc39]  (no --config: every front end; egemaps, compare need opensmile)
"""

from __future__ import annotations

import os
import re
import sys

# `tfds build data/emovo` imports this module without the repository root on sys.path.
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from emodna_jax.audio import audio_builder  # noqa: E402
from emodna_jax.audio import labels  # noqa: E402

_SPEAKER = re.compile(r"^[fm]\d$")
_NAME = re.compile(r"^(?P<emotion>[a-z]+)-(?P<speaker>[a-z]\d)-(?P<sentence>[a-z]+\d*)$")


class Builder(audio_builder.AudioCorpusBuilder):
    """EMOVO: 588 utterances, 6 Italian actors, 7 emotions."""

    CORPUS = "emovo"
    HOMEPAGE = "http://voice.fub.it/activities/corpora/emovo/index.html"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Put EMOVO's speaker folders in the manual folder: <manual_dir>/f1/dis-f1-b1.wav, ...
(speakers f1 f2 f3 m1 m2 m3; names {emo}-{speaker}-{sentence}; emo dis gio neu pau rab sor tri;
.wav at any rate, mono or stereo, or .flac)."""

    @classmethod
    def list_records(cls, root, *, bad=None):
        bad = bad or audio_builder.BadFiles(cls.CORPUS, skip=False)
        audio_builder.require_dir(root, cls.CORPUS, "the corpus root",
                                  cls.MANUAL_DOWNLOAD_INSTRUCTIONS)
        speakers = sorted(d for d in os.listdir(root)
                          if _SPEAKER.match(d) and os.path.isdir(os.path.join(root, d)))
        if not speakers:
            raise FileNotFoundError(
                f"emovo: no speaker folders (f1 ... m3) in {root!r}; found {sorted(os.listdir(root))}."
                f"\nExpected layout:\n{cls.MANUAL_DOWNLOAD_INSTRUCTIONS}")
        records = []
        for speaker in speakers:
            for path in audio_builder.list_audio_files(os.path.join(root, speaker)):
                file = audio_builder.relative(path, root)
                m = _NAME.match(os.path.splitext(os.path.basename(path))[0])
                if not m or m["speaker"] != speaker:
                    bad.report(f"emovo: file {file!r} does not follow EMOVO's naming "
                               f"{{emo}}-{speaker}-{{sentence}} (e.g. dis-{speaker}-b1.wav) in "
                               f"folder {speaker}; rename or remove it.")
                    continue
                emotion = bad.emotion(labels.CORPORA["emovo"].codes, m["emotion"], file=file)
                if emotion is None:
                    continue
                records.append(audio_builder.AudioRecord(
                    path=path, file=file, label=emotion, speaker=speaker,
                    gender="female" if speaker[0] == "f" else "male"))
        return records
