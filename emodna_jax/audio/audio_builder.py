"""Shared base of the audio TFDS builders (data/<corpus>/<corpus>_dataset_builder.py).

A corpus builder only says how to list its files: `list_records(root)` walks the manual folder,
parses each file's emotion code, speaker and gender from the corpus' real naming and returns
`AudioRecord`s. This base turns them into TFDS examples:

  {features float32 [T, F] (the builder config's front end), label (ClassLabel over
   labels.LABEL_NAMES), speaker, gender ("female"/"male"/"unknown"), corpus, file (path relative
   to the corpus root)}

in one split, "train" (the whole corpus, the authors' protocol). One builder config per
`features.FEATURE_CONFIGS` entry, so front ends are built side by side; the default is "mfcc39".

Builder options (constructor keyword arguments; the environment variables serve the `tfds build`
CLI, which cannot pass them):
  skip_bad_files (EMODNA_SKIP_BAD_FILES=1): skip corrupt/empty/unreadable audio and files whose
    name does not parse, logging each and the count, instead of raising. Never relabels anything.
  channel (EMODNA_AUDIO_CHANNEL=N): which channel of a multi-channel file to use (default 0;
    EMOVO's two channels are different microphones, so they are never averaged). Build different
    channels into different data_dirs: the choice is not part of the dataset's name.
  num_workers (EMODNA_BUILD_WORKERS=N): threads computing features (default 2).
"""

from __future__ import annotations

import abc
import concurrent.futures
import dataclasses
import os
from collections.abc import Iterator, Sequence

import numpy as np
import tensorflow_datasets as tfds
from absl import logging

from emodna_jax.audio import features as features_lib
from emodna_jax.audio import labels as labels_lib

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif")
GENDERS = ("female", "male", "unknown")


@dataclasses.dataclass(frozen=True)
class AudioRecord:
    """One audio file of a corpus, with its labels parsed from the corpus' own naming.

    Attributes:
      path: absolute path of the audio file.
      file: path relative to the corpus root, "/"-separated (the example's `file` and TFDS key).
      label: canonical emotion name, or "unknown" for an unlabelled recording.
      speaker: speaker id ("unknown" when the layout does not say).
      gender: "female", "male" or "unknown".
    """

    path: str
    file: str
    label: str
    speaker: str = "unknown"
    gender: str = "unknown"

    def __post_init__(self):
        if self.label not in labels_lib.LABEL_NAMES:
            raise ValueError(f"{self.file}: label {self.label!r} is not one of "
                             f"{labels_lib.LABEL_NAMES}.")
        if self.gender not in GENDERS:
            raise ValueError(f"{self.file}: gender {self.gender!r} is not one of {GENDERS}.")


class BadFiles:
    """Collects bad input files: raises at once by default, or logs and counts when skipping.

    Used by `list_records` (names that do not parse, unknown emotion codes) and by feature
    extraction (corrupt audio), so both obey one `skip_bad_files` switch.
    """

    def __init__(self, corpus: str, skip: bool):
        self.corpus = corpus
        self.skip = skip
        self.skipped: list[str] = []

    def report(self, error: Exception | str) -> None:
        """Raises `error` (as a ValueError if a string) unless skipping; then logs it."""
        if not self.skip:
            if not isinstance(error, Exception):
                error = ValueError(error)
            if "skip_bad_files" not in str(error) and len(error.args) == 1:
                error.args = (f"{error.args[0]} (Or build with skip_bad_files=True / "
                              "EMODNA_SKIP_BAD_FILES=1 to skip bad files, each one logged.)",)
            raise error
        self.skipped.append(str(error))
        logging.warning("%s: skipping bad file: %s", self.corpus, error)

    def emotion(self, table: dict[str, str], code: str, *, file: str) -> str | None:
        """The canonical emotion of a corpus' own `code` (labels.code_to_emotion), or None after
        reporting the file as bad (which raises unless skipping)."""
        try:
            return labels_lib.code_to_emotion(table, code, corpus=self.corpus, file=file)
        except ValueError as e:
            self.report(e)
            return None

    def summarise(self) -> None:
        if self.skipped:
            logging.warning("%s: skipped %d bad file(s).", self.corpus, len(self.skipped))


def env_flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as e:
        raise ValueError(f"Environment variable {name}={value!r} must be an integer.") from e


def relative(path: str, root: str) -> str:
    """`path` relative to `root`, with "/" separators on every OS."""
    return os.path.relpath(path, root).replace(os.sep, "/")


def list_audio_files(folder: str, *, recursive: bool = False) -> list[str]:
    """Sorted absolute paths of the audio files (by extension, any case) in `folder`."""
    found = []
    if recursive:
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames.sort()
            found += [os.path.join(dirpath, f) for f in filenames if is_audio_file(f)]
    else:
        found = [os.path.join(folder, f) for f in os.listdir(folder)
                 if is_audio_file(f) and os.path.isfile(os.path.join(folder, f))]
    return sorted(found)


def is_audio_file(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(AUDIO_EXTENSIONS)


def check_unique_stems(records: Sequence[AudioRecord], corpus: str) -> None:
    """Refuses a recording present twice (e.g. both x.wav and x.flac): it would count twice."""
    seen: dict[str, str] = {}
    for r in records:
        stem = os.path.splitext(r.file)[0]
        if stem in seen:
            raise ValueError(f"{corpus}: {seen[stem]!r} and {r.file!r} are the same recording in "
                             "two formats; keep only one of them in the manual folder.")
        seen[stem] = r.file


def require_dir(path: str, corpus: str, what: str, instructions: str) -> None:
    if not os.path.isdir(path):
        raise FileNotFoundError(
            f"{corpus}: expected {what} at {path!r}, which does not exist or is not a folder.\n"
            f"Expected layout:\n{instructions}")


@dataclasses.dataclass(eq=False)
class FeatureBuilderConfig(tfds.core.BuilderConfig):
    """A builder config that carries one audio front end (`features.FeatureConfig`)."""

    feature_config: features_lib.FeatureConfig = features_lib.FeatureConfig()


def _describe(c: features_lib.FeatureConfig) -> str:
    return c.describe()  # mfcc/logmel: the same text as before; affect/openSMILE kinds: their own


def feature_builder_configs() -> list[FeatureBuilderConfig]:
    """One builder config per front end; "mfcc39" (the default) first."""
    names = ["mfcc39"] + sorted(n for n in features_lib.FEATURE_CONFIGS if n != "mfcc39")
    return [FeatureBuilderConfig(name=n, description=_describe(features_lib.FEATURE_CONFIGS[n]),
                                 feature_config=features_lib.FEATURE_CONFIGS[n]) for n in names]


def example_features(feature_config: features_lib.FeatureConfig) -> tfds.features.FeaturesDict:
    """The TFDS features of every audio builder."""
    return tfds.features.FeaturesDict({
        "features": tfds.features.Tensor(shape=feature_config.shape, dtype=np.float32),
        "label": tfds.features.ClassLabel(names=labels_lib.LABEL_NAMES),
        "speaker": tfds.features.Text(),
        "gender": tfds.features.Text(),
        "corpus": tfds.features.Text(),
        "file": tfds.features.Text(),
    })


class AudioCorpusBuilder(tfds.core.GeneratorBasedBuilder, abc.ABC):
    """Base of the audio corpus builders; subclasses set CORPUS, HOMEPAGE, instructions and
    implement `list_records`."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = feature_builder_configs()
    DEFAULT_CONFIG_NAME = "mfcc39"
    CORPUS: str = ""
    HOMEPAGE: str = ""

    def __init__(self, *, skip_bad_files: bool | None = None, channel: int | None = None,
                 num_workers: int | None = None, **kwargs):
        """Args: see the module docstring; the rest go to `tfds.core.GeneratorBasedBuilder`."""
        self.skip_bad_files = (env_flag("EMODNA_SKIP_BAD_FILES") if skip_bad_files is None
                               else bool(skip_bad_files))
        self.channel = env_int("EMODNA_AUDIO_CHANNEL", 0) if channel is None else channel
        self.num_workers = max(1, env_int("EMODNA_BUILD_WORKERS", 2) if num_workers is None
                               else num_workers)
        super().__init__(**kwargs)

    @classmethod
    @abc.abstractmethod
    def list_records(cls, root: str, *, bad: BadFiles | None = None) -> list[AudioRecord]:
        """Lists the corpus' audio files under the manual folder `root`, labels parsed from names.

        Args:
          root: the manual folder (the corpus root).
          bad: where name/code errors go; None raises at the first one.

        Raises:
          FileNotFoundError / ValueError: missing or wrongly laid-out folder, a file name that
            does not parse, or an unknown emotion code, each naming the file and what was
            expected.
        """

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=example_features(self.builder_config.feature_config),
            supervised_keys=("features", "label"),
            homepage=self.HOMEPAGE or None,
        )

    def _manual_root(self, dl_manager: tfds.download.DownloadManager) -> str:
        try:
            return os.fspath(dl_manager.manual_dir)
        except (AssertionError, ValueError) as e:
            reason = str(e).split(" Create it")[0]  # TFDS' message, without its own hints
            raise FileNotFoundError(
                f"{self.name}: no manual folder with the corpus ({reason}). Pass "
                f"--manual_dir=PATH to `tfds build`, or --config.corpora_root=DIR holding "
                f"DIR/{self.name} to train.py.\nExpected layout:\n"
                f"{self.MANUAL_DOWNLOAD_INSTRUCTIONS}") from e

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        root = self._manual_root(dl_manager)
        bad = BadFiles(self.name, self.skip_bad_files)
        records = self.list_records(root, bad=bad)
        if not records:
            raise ValueError(f"{self.name}: no usable audio files found under {root!r}.\n"
                             f"Expected layout:\n{self.MANUAL_DOWNLOAD_INSTRUCTIONS}")
        check_unique_stems(records, self.name)
        return {"train": self._generate_examples(records, bad, self.corpus_name(root))}

    def corpus_name(self, root: str) -> str:
        """The `corpus` string of every example (the builder name unless overridden)."""
        del root
        return self.CORPUS or self.name

    def _generate_examples(self, records: Sequence[AudioRecord], bad: BadFiles, corpus: str
                           ) -> Iterator[tuple[str, dict]]:
        config = self.builder_config.feature_config

        def compute(record: AudioRecord):
            try:
                return features_lib.features_from_file(record.path, config, self.channel)
            except features_lib.AudioFileError as e:
                return e

        # Threads suffice: resampling, FFTs and the mel matmul release the GIL; map keeps order.
        with features_lib.single_threaded_blas(), \
                concurrent.futures.ThreadPoolExecutor(self.num_workers) as pool:
            for record, feats in zip(records, pool.map(compute, records)):
                if isinstance(feats, Exception):
                    bad.report(feats)
                    continue
                yield record.file, {
                    "features": feats,
                    "label": record.label,
                    "speaker": record.speaker,
                    "gender": record.gender,
                    "corpus": corpus,
                    "file": record.file,
                }
        bad.summarise()
