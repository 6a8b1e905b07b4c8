"""Corpus names -> TFDS datasets, built on first use: how the library reads every corpus.

Names (config.source / config.target):

  emodb, emovo, casia, ravdess, savee   a real corpus; its manual folder is <corpora_root>/<name>
                                        (laid out as the builder's MANUAL_DOWNLOAD_INSTRUCTIONS say)
  synthetic_a, synthetic_b, synthetic_c the embedded synthetic corpora: splits "a", "b", "c" of
                                        the `synthetic` builder, generated from a fixed seed
  folder:PATH                           one's own recordings in PATH (the `audio_folder` builder:
                                        class folders, a flat unlabelled folder, or manifest.csv)

Layout of `data_dir` (the same as `tfds build data/<name> --data_dir=DIR` writes, so a data_dir
built by the CLI is reused as it is):

  <data_dir>/<builder>/<features>/<version>/...        emodb, ..., synthetic
  <data_dir>/folders/<basename>-<sha1(abs PATH)[:12]>/audio_folder/<features>/<version>/...
                                                       folder:PATH, one data_dir per folder, so
                                                       different folders never collide

A folder:PATH dataset is rebuilt when the folder's listing (paths, sizes, modification times,
labels) changes: the fingerprint of the listing it was built from sits beside it. The real corpora
are fixed releases and are never rebuilt; delete <data_dir>/<name> to force it.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import shutil
import sys

import tensorflow as tf
import tensorflow_datasets as tfds
from absl import logging

from emodna_jax.audio import audio_builder, labels

# The builders live in the repository's top-level `data` package, beside `emodna_jax`.
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

# Declared in labels.CORPORA: the real corpora, and the synthetic ones as their `synthetic` split.
REAL_CORPORA = tuple(name for name, c in labels.CORPORA.items() if not c.synthetic_split)
SYNTHETIC_CORPORA = {name: c.synthetic_split for name, c in labels.CORPORA.items() if c.synthetic_split}
FOLDER_PREFIX = "folder:"
FOLDERS_SUBDIR = "folders"
VALID_NAMES = REAL_CORPORA + tuple(SYNTHETIC_CORPORA) + (FOLDER_PREFIX + "PATH",)
_TRAIN_SPLIT = re.compile(r"^train(\[.*\])?$")  # "train", or a TFDS slice such as "train[:80%]"


def builder_class(builder_name: str) -> type[tfds.core.DatasetBuilder]:
    """The `Builder` class of data/<builder_name>/<builder_name>_dataset_builder.py."""
    module = importlib.import_module(f"data.{builder_name}.{builder_name}_dataset_builder")
    return module.Builder


def _unknown_name(name: str) -> ValueError:
    return ValueError(f"Unknown corpus {name!r}; valid names: {', '.join(VALID_NAMES)} "
                      "(config.source / config.target).")


def _tfds_split(name: str, split: str) -> str:
    """The builder's split for a corpus name: every builder has one "train" split (the whole
    corpus), except `synthetic`, whose splits a/b/c are the corpora synthetic_a/b/c."""
    m = _TRAIN_SPLIT.match(split)
    if not m:
        raise ValueError(f"corpus {name!r} has only the split 'train' (the whole corpus, "
                         f"optionally sliced as 'train[:80%]'), not {split!r} "
                         "(config.target_split).")
    if name in SYNTHETIC_CORPORA:
        return SYNTHETIC_CORPORA[name] + (m.group(1) or "")
    return split


def folder_data_dir(data_dir: str, folder: str) -> str:
    """The data_dir of a folder:PATH corpus: <data_dir>/folders/<basename>-<sha1(abspath)[:12]>."""
    path = os.path.abspath(os.path.expanduser(folder))
    key = hashlib.sha1(path.encode("utf-8")).hexdigest()[:12]
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.basename(os.path.normpath(path))) or "root"
    return os.path.join(data_dir, FOLDERS_SUBDIR, f"{base}-{key}")


def _folder_fingerprint(builder, folder: str) -> str:
    """sha1 of the folder's listing as the builder reads it (paths, sizes, mtimes, labels)."""
    # Listing errors (a folder that is not an emotion name, ...) surface here, before any build;
    # with skip_bad_files, the skipped names are logged again when the builder lists the folder.
    bad = audio_builder.BadFiles("audio_folder", skip=builder.skip_bad_files)
    records = builder.list_records(folder, bad=bad)
    h = hashlib.sha1()
    for r in sorted(records, key=lambda r: r.file):
        st = os.stat(r.path)
        h.update(f"{r.file}\t{st.st_size}\t{st.st_mtime_ns}\t{r.label}\t{r.speaker}\t"
                 f"{r.gender}\n".encode("utf-8"))
    manifest = os.path.join(folder, "manifest.csv")
    if os.path.isfile(manifest):
        h.update(f"manifest {os.stat(manifest).st_mtime_ns}".encode("utf-8"))
    return h.hexdigest()


def _build(builder: tfds.core.DatasetBuilder, manual_dir: str | None) -> None:
    logging.info("Building %s (%s) into %s", builder.name, builder.builder_config.name,
                 builder.data_dir)
    config = tfds.download.DownloadConfig(manual_dir=manual_dir)
    builder.download_and_prepare(download_config=config)


def _require_features(builder_cls, features: str) -> None:
    configs = [c.name for c in builder_cls.BUILDER_CONFIGS]
    if features not in configs:
        raise ValueError(f"Unknown feature config {features!r}; valid: {', '.join(configs)} "
                         "(config.features).")


def prepare(name: str, *, corpora_root: str | None, data_dir: str, features: str = "mfcc39",
            skip_bad_files: bool | None = None) -> tfds.core.DatasetBuilder:
    """The TFDS builder of corpus `name`, its dataset built into `data_dir` if not there yet.

    Args:
      name: see the module docstring (emodb, ..., synthetic_a, ..., folder:PATH).
      corpora_root: folder holding <corpora_root>/<name> for the real corpora; only needed when the
        dataset is not yet built. Ignored for synthetic and folder corpora.
      data_dir: the TFDS data_dir (see the module docstring for its layout).
      features: the builder config (a front end of `features.FEATURE_CONFIGS`).
      skip_bad_files: builder option (None: the EMODNA_SKIP_BAD_FILES environment variable):
        skip bad audio files, logging each and the count, instead of raising.

    Raises:
      ValueError: unknown name, feature config or split.
      FileNotFoundError: a real corpus that is not built and whose folder is missing (the message
        names the path and says to set config.corpora_root), or a missing folder:PATH.
    """
    data_dir = os.path.expanduser(data_dir)
    options = {} if skip_bad_files is None else {"skip_bad_files": skip_bad_files}
    if name.startswith(FOLDER_PREFIX):
        folder = os.path.abspath(os.path.expanduser(name[len(FOLDER_PREFIX):]))
        if not name[len(FOLDER_PREFIX):] or not os.path.isdir(folder):
            raise FileNotFoundError(f"corpus {name!r}: folder {folder!r} does not exist; give "
                                    "folder:PATH with PATH a folder of your recordings.")
        cls = builder_class("audio_folder")
        _require_features(cls, features)
        sub_dir = folder_data_dir(data_dir, folder)
        builder = cls(config=features, data_dir=sub_dir, **options)
        stamp = os.path.join(sub_dir, f"listing-{features}.sha1")
        fingerprint = _folder_fingerprint(builder, folder)
        old = open(stamp).read().strip() if os.path.isfile(stamp) else None
        if builder.is_prepared() and old == fingerprint:
            return builder
        if builder.is_prepared():
            logging.warning("%s changed since it was built into %s: rebuilding.", folder, sub_dir)
            shutil.rmtree(os.path.join(sub_dir, cls.name, features))
            builder = cls(config=features, data_dir=sub_dir, **options)
        _build(builder, folder)
        with open(stamp, "w") as f:
            f.write(fingerprint + "\n")
        return builder

    if name in SYNTHETIC_CORPORA:
        cls = builder_class("synthetic")
        _require_features(cls, features)
        builder = cls(config=features, data_dir=data_dir)
        if not builder.is_prepared():
            _build(builder, None)
        return builder

    if name not in REAL_CORPORA:
        raise _unknown_name(name)
    cls = builder_class(name)
    _require_features(cls, features)
    builder = cls(config=features, data_dir=data_dir, **options)
    if builder.is_prepared():
        return builder
    if not corpora_root:
        raise FileNotFoundError(
            f"corpus {name!r} ({features}) is not built in data_dir {data_dir!r} and "
            f"config.corpora_root is not set: set config.corpora_root to the folder that holds "
            f"{name}/ (e.g. --config.corpora_root=../shared/corpora).\nExpected layout of "
            f"<corpora_root>/{name}:\n{cls.MANUAL_DOWNLOAD_INSTRUCTIONS}")
    manual_dir = os.path.abspath(os.path.join(os.path.expanduser(corpora_root), name))
    if not os.path.isdir(manual_dir):
        raise FileNotFoundError(
            f"corpus {name!r}: folder {manual_dir!r} does not exist: set config.corpora_root to "
            f"the folder that holds {name}/ (now {corpora_root!r}).\nExpected layout of "
            f"{manual_dir}:\n{cls.MANUAL_DOWNLOAD_INSTRUCTIONS}")
    _build(builder, manual_dir)
    return builder


def load(name: str, *, corpora_root: str | None = None, data_dir: str, features: str = "mfcc39",
         split: str = "train", skip_bad_files: bool | None = None) -> tf.data.Dataset:
    """One split of corpus `name` as a tf.data.Dataset, building it into `data_dir` on first use.

    Args: see `prepare`; split: "train" (the whole corpus, the authors' protocol) or a TFDS slice
      of it such as "train[:80%]".

    Returns:
      A dataset, in the builder's stored order (not shuffled), of dicts:
        features float32 [T, F] (T, F of the feature config; [188, 39] for mfcc39),
        label int64 [] (an index into labels.LABEL_NAMES; "unknown" for an unlabelled file),
        speaker, gender ("female"/"male"/"unknown"), corpus, file (relative to the corpus root):
        tf.string [].
    """
    if not (name in REAL_CORPORA or name in SYNTHETIC_CORPORA or name.startswith(FOLDER_PREFIX)):
        raise _unknown_name(name)
    tfds_split = _tfds_split(name, split)  # refuse a bad split before building anything
    builder = prepare(name, corpora_root=corpora_root, data_dir=data_dir, features=features,
                      skip_bad_files=skip_bad_files)
    return builder.as_dataset(split=tfds_split, shuffle_files=False)
