"""The benchmark's run commands: every folder's runs get the base config it was started from."""

from benchmarks import accuracy_benchmark as ab


def test_runs_get_the_folder_base_unless_a_setting_overrides_it():
    plain = ab.train_command("c2b", "emodna", 1, "w", [], "/d")
    assert "--config.normalization=corpus" in plain and "--config.seed=1" in plain
    assert "--config.data_dir=/d" in plain
    speaker = ab.train_command("c2b", "emodna", 0, "w", ["normalization=speaker", "num_steps=5"], "")
    assert "--config.normalization=speaker" in speaker and "--config.num_steps=5" in speaker
    assert "--config.normalization=corpus" not in speaker
    assert ab.setting_name([]) == "default"
    assert ab.setting_name(["normalization=speaker"]) == "normalization-speaker"


def test_every_benchmarked_name_is_a_method_and_every_committed_run_names_its_folder():
    """The default --methods, the ablations and the Makefile's list name methods that exist (a renamed
    method cannot silently start fresh runs), and each committed results.json says the method and
    argv of the folder it sits in (so the folder's command reproduces it)."""
    import glob
    import json
    import os

    from emodna_jax import methods

    makefile = open(os.path.join(ab.ROOT, "Makefile")).read()
    listed = makefile.split("ACCURACY_METHODS = ", 1)[1].split("\n", 1)[0].split(",")
    for name in (*ab.METHODS, *ab.ABLATIONS, *listed):
        assert name in methods.METHODS, name
    paths = glob.glob(os.path.join(ab.ROOT, "benchmarks", "runs", "**", "results.json"), recursive=True)
    assert paths
    for path in paths:
        method = path.split(os.sep)[-3]
        with open(path) as f:
            result = json.load(f)
        assert result["method"] == method, path
        if "argv" in result:  # one early run predates the field
            assert f"--config=configs/cross_corpus.py:{result['task']},{method}" in result["argv"], path
