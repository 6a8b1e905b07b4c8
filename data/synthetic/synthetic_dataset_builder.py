"""TFDS builder `synthetic`: three speech-like emotional corpora generated on the fly (no download).

Splits "a", "b" and "c" are the three corpora (200 utterances each: 4 speakers x 5 emotions x 10),
synthesised by `emodna_jax.audio.synthetic_speech` from a fixed seed, so every build gives the same audio.
Builder configs are the feature front ends of `emodna_jax.audio.features.FEATURE_CONFIGS` ("mfcc39" is the
authors' 39 MFCCs at 22,050 Hz on 96,000 samples). Use it through `corpora.load("synthetic_a", ...)`
or build it directly from the repository root with `python -m data.tfds_cli build data/synthetic
--data_dir=DIR --config=mfcc39` (data/tfds_cli.py is the `tfds` CLI, runnable without apache-beam;
without --config, every front end is built; egemaps and compare need the optional opensmile).
"""

from __future__ import annotations

import concurrent.futures
import os
import sys

import tensorflow_datasets as tfds

# `tfds build data/synthetic` imports this file by path: make the project's library importable.
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from emodna_jax.audio import audio_builder  # noqa: E402
from emodna_jax.audio import features as feature_lib  # noqa: E402
from emodna_jax.audio import synthetic_speech  # noqa: E402

# The synthetic corpora are part of the dataset's definition: changing this seed (or the generator)
# makes a new dataset and must bump VERSION.
SEED = 0


class Builder(tfds.core.GeneratorBasedBuilder):
    """Synthetic cross-corpus emotional speech: emotion in prosody, corpus in speakers/language/channel.

    Same example schema and builder configs as the real-corpus builders (emodna_jax.audio.audio_builder).
    Constructor option num_workers (env EMODNA_BUILD_WORKERS, default 2): synthesis threads.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Three corpora a, b, c; 4 speakers x 5 emotions x 10 utterances each."}
    BUILDER_CONFIGS = audio_builder.feature_builder_configs()
    DEFAULT_CONFIG_NAME = "mfcc39"

    def __init__(self, *, num_workers: int | None = None, **kwargs):
        self.num_workers = max(1, audio_builder.env_int("EMODNA_BUILD_WORKERS", 2)
                               if num_workers is None else num_workers)
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=audio_builder.example_features(self.builder_config.feature_config),
            supervised_keys=("features", "label"),
            homepage="https://arxiv.org/abs/2308.02190",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        del dl_manager  # nothing to download: the audio is generated
        return {name: self._generate_examples(name) for name in synthetic_speech.CORPUS_NAMES}

    def _generate_examples(self, corpus: str):
        fc: feature_lib.FeatureConfig = self.builder_config.feature_config

        def compute(utt: synthetic_speech.Utterance):
            return feature_lib.compute_features(
                synthetic_speech.synthesize(utt, sample_rate=fc.sample_rate), fc)

        utts = synthetic_speech.corpus_utterances(corpus, seed=SEED)
        # Threads suffice: numpy's FFTs and librosa's STFT release the GIL; map keeps the order, and
        # each utterance has its own seed, so the result does not depend on the thread count.
        with feature_lib.single_threaded_blas(), \
                concurrent.futures.ThreadPoolExecutor(self.num_workers) as pool:
            for utt, feats in zip(utts, pool.map(compute, utts)):
                yield utt.file, {
                    "features": feats,
                    "label": utt.emotion,
                    "speaker": utt.speaker.name,
                    "gender": utt.speaker.gender,
                    "corpus": f"synthetic_{corpus}",
                    "file": utt.file,
                }
