"""The benchmark's run commands and folders: current configs only, every registered method benchmarked."""

import os
import subprocess
import sys

from benchmarks import accuracy_benchmark as ab
from emodna_jax.method import methods


def test_run_commands_carry_the_overrides_and_nothing_else():
    plain = ab.train_command("c2b", "emodna", 1, "w", [], "/d")
    assert plain[2:] == ["--config=configs/cross_corpus.py:c2b,emodna", "--config.seed=1", "--workdir=w",
                         "--config.plots=False", "--config.data_dir=/d"]
    speaker = ab.train_command("c2b", "adabn", 0, "w", ["normalization=corpus", "num_steps=5"], "")
    assert speaker[-2:] == ["--config.normalization=corpus", "--config.num_steps=5"]
    assert ab.setting_name([]) == "default"
    assert ab.setting_name(["normalization=speaker"], "0123abcd") == "normalization-speaker-0123abcd"


def test_the_folder_fingerprint_follows_the_configs(monkeypatch):
    """A method's override or a base field changed gives another folder, so no stale run is reused."""
    from configs import default

    before = ab.config_fingerprint()
    assert len(before) == 8 and before == ab.config_fingerprint()
    changed = dict(methods.METHODS["mmd"].overrides, **{"loss.corpus_align_weight": 2.0})
    monkeypatch.setitem(methods.METHODS, "mmd", methods.METHODS["mmd"]._replace(overrides=changed))
    assert ab.config_fingerprint() != before
    monkeypatch.undo()
    real = default.get_config
    monkeypatch.setattr(default, "get_config", lambda arg="": real("smoke") if not arg else real(arg))
    assert ab.config_fingerprint() != before


def test_every_registered_method_is_benchmarked_once_and_the_makefile_lists_them():
    """The headline rows (adabn and both self-training baselines among them) and the default's ablations
    are the registry, and the Makefile runs the same list."""
    import os

    assert {"adabn", "pseudo_label", "self_training_balanced", "emodna_literal", "emodna"} <= set(ab.METHODS)
    assert sorted(ab.METHODS + ab.ABLATIONS) == sorted(methods.METHODS)
    makefile = open(os.path.join(ab.ROOT, "Makefile")).read()
    listed = makefile.split("ACCURACY_METHODS = ", 1)[1].split("\n", 1)[0].split(",")
    assert listed == list(ab.METHODS + ab.ABLATIONS)


def test_archived_folders_are_reported_never_run_into(tmp_path):
    proc = subprocess.run([sys.executable, os.path.join(ab.ROOT, "benchmarks", "accuracy_benchmark.py"),
                           f"--setting_dir={tmp_path}", "--tasks=c2b", "--methods=emodna"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "--report_only" in proc.stderr


def test_every_committed_run_names_its_folder():
    """Each committed results.json (archived ones included) says the method and argv of the folder it
    sits in, so the folder's command reproduces it; a selection's grid points and refit
    (<method>/seed<S>/grid/<point>/, .../refit/) belong to the method above their seed folder."""
    import glob
    import json
    import os

    paths = glob.glob(os.path.join(ab.ROOT, "benchmarks", "runs", "**", "results.json"), recursive=True)
    assert paths
    for path in paths:
        parts = path.split(os.sep)
        seed_at = max(i for i, p in enumerate(parts) if p.startswith("seed"))
        method = parts[seed_at - 1]
        with open(path) as f:
            result = json.load(f)
        assert result["method"] == method, path
        if "argv" in result:  # one early run predates the field
            assert f"--config=configs/cross_corpus.py:{result['task']},{method}" in result["argv"], path
