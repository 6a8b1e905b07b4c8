"""CASIA (Mandarin, the public 1,200-utterance set) TFDS builder.

Manual folder layout (as circulated, and the FLAC copy in ../shared/corpora/casia):

  <manual_dir>/{speaker}/{emotion}/{201..250}.wav   (or .flac)

speakers liuchanhg, wangzhe, zhaoquanyin, ZhaoZuoxiang; emotion folders angry fear happy neutral
sad surprise (200 files each). Any other folder inside a speaker folder is an error.

    python -m data.tfds_cli build data/casia --manual_dir=../shared/corpora/casia --data_dir=DIR \
        [--config=mfcc39]  (no --config: every front end; egemaps, compare need opensmile)
"""

from __future__ import annotations

import os
import sys

# `tfds build data/casia` imports this module without the repository root on sys.path.
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from emodna_jax.audio import audio_builder  # noqa: E402
from emodna_jax.audio import labels  # noqa: E402

# Speaker -> gender (corpus documentation; not verified by listening).
GENDERS = {"wangzhe": "male", "ZhaoZuoxiang": "male",
           "liuchanhg": "female", "zhaoquanyin": "female"}


class Builder(audio_builder.AudioCorpusBuilder):
    """CASIA: 1,200 utterances, 4 Mandarin speakers, 6 emotions."""

    CORPUS = "casia"
    HOMEPAGE = "http://www.chineseldc.org/resource_info.php?rid=76"
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Put CASIA's speaker folders in the manual folder: <manual_dir>/{speaker}/{emotion}/{201..250}.wav
(speakers liuchanhg wangzhe zhaoquanyin ZhaoZuoxiang; emotion folders angry fear happy neutral
sad surprise; .wav at any rate or .flac)."""

    @classmethod
    def list_records(cls, root, *, bad=None):
        bad = bad or audio_builder.BadFiles(cls.CORPUS, skip=False)
        audio_builder.require_dir(root, cls.CORPUS, "the corpus root",
                                  cls.MANUAL_DOWNLOAD_INSTRUCTIONS)
        speakers = sorted(d for d in os.listdir(root)
                          if not d.startswith(".") and os.path.isdir(os.path.join(root, d)))
        if not speakers:
            raise FileNotFoundError(f"casia: no speaker folders in {root!r}.\n"
                                    f"Expected layout:\n{cls.MANUAL_DOWNLOAD_INSTRUCTIONS}")
        codes = labels.CORPORA["casia"].codes
        records = []
        for speaker in speakers:
            speaker_dir = os.path.join(root, speaker)
            for folder in sorted(os.listdir(speaker_dir)):
                folder_path = os.path.join(speaker_dir, folder)
                if folder.startswith(".") or not os.path.isdir(folder_path):
                    continue
                if folder not in codes:
                    # A wrongly laid-out tree would otherwise lose or mislabel whole folders.
                    raise ValueError(
                        f"casia: folder {speaker}/{folder!r} is not an emotion folder (expected "
                        f"one of {sorted(codes)}).\n"
                        f"Expected layout:\n{cls.MANUAL_DOWNLOAD_INSTRUCTIONS}")
                for path in audio_builder.list_audio_files(folder_path):
                    file = audio_builder.relative(path, root)
                    records.append(audio_builder.AudioRecord(
                        path=path, file=file, label=codes[folder], speaker=speaker,
                        gender=GENDERS.get(speaker, "unknown")))
        return records
