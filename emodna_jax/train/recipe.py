"""The adapt recipe's choices (configs/adapt.py), made from the config and the filesystem before a
run is validated: which labelled corpora are the source, which classes, what the run is called.

Fields set to AUTO are filled in place; anything else is left as given, so a resolved config
(the config.json a run writes) resolves to itself.
"""

from __future__ import annotations

import os

import ml_collections

from emodna_jax.train import config_checks

AUTO = "auto"
# The class set wanted when the sources have them: the five emotions every shared corpus has (the
# authors' protocol; configs/default.py SHARED_CLASSES).
PREFERRED_CLASSES = ("angry", "fear", "happy", "neutral", "sad")
# Labelled corpora a corpora_root may hold, in the order they are named (config_checks' table).
LABELLED_CORPORA = tuple(n for n in config_checks.CORPUS_EMOTIONS if not n.startswith("synthetic_"))


def found_corpora(corpora_root: str, *, exclude: str = "") -> list[str]:
    """The labelled corpora with a folder <corpora_root>/<name>, except `exclude` (the target)."""
    root = os.path.expanduser(corpora_root or "")
    return [n for n in LABELLED_CORPORA if n != exclude and os.path.isdir(os.path.join(root, n))]


def target_label(target: str) -> str:
    """A short name of the target for the run's name: a folder's base name, else the corpus name."""
    if target.startswith(config_checks.FOLDER_PREFIX):
        path = os.path.normpath(os.path.expanduser(target[len(config_checks.FOLDER_PREFIX):]))
        return os.path.basename(path) or "folder"
    return target


def resolve(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Fills config.source, config.classes and config.task where they are AUTO (in place; returns
    `config`).

    source AUTO: every labelled corpus found under config.corpora_root (several: a pooled source,
    source_pool.py). classes AUTO: PREFERRED_CLASSES that every source has. task AUTO:
    "<source>+<source>2<target>", e.g. "casia+emodb2calls" for folder:/data/calls.

    Raises config_checks.ConfigError, saying what to set, for a missing target, a corpora_root
    without any labelled corpus, or sources sharing fewer than two preferred classes.
    """
    if AUTO not in (config.source, config.classes, config.task):
        return config
    if not config.target or config.target == AUTO:
        raise config_checks.ConfigError(
            "config.target is not set: give your recordings as --config.target=folder:PATH")
    if config.source == AUTO:
        found = found_corpora(config.corpora_root, exclude=config.target)
        if not found:
            raise config_checks.ConfigError(
                f"config.source='auto' found no labelled corpus under config.corpora_root="
                f"{config.corpora_root!r} (it looks for {', '.join(f'<root>/{n}' for n in LABELLED_CORPORA)}): "
                "set --config.corpora_root to the folder that holds them, or name the sources, "
                "e.g. --config.source=casia,emodb")
        config.source = ",".join(found)
    names = [n.strip() for n in config.source.split(",") if n.strip()]
    if config.classes == AUTO:
        known = [config_checks.CORPUS_EMOTIONS.get(n) for n in names]
        shared = [c for c in PREFERRED_CLASSES if all(e is None or c in e for e in known)]
        if len(shared) < 2:
            raise config_checks.ConfigError(
                f"config.classes='auto': the sources {', '.join(names)} share {len(shared)} of "
                f"{', '.join(PREFERRED_CLASSES)}; name the classes, e.g. --config.classes=angry,neutral,sad, "
                "or choose other sources")
        config.classes = ",".join(shared)
    if config.task == AUTO:
        config.task = "+".join(target_label(n) for n in names) + "2" + target_label(config.target)
    return config
