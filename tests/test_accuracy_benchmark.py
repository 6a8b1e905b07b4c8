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
