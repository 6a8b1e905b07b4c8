"""The command-line contract: train.py and eval.py as a user runs them, in fresh processes."""

import csv
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METRICS = ("uar", "war", "per_class_recall", "confusion")


def run(script, *args, env, check=True):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, script), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.mark.parametrize("flag,expected", [
    ("--config.loss.temperature=0", "[train] refused: config.loss.temperature=0.0 must be > 0"),
    ("--config.target=atlantis", "[train] refused: config.target='atlantis' is an unknown corpus"),
    ("--config.batch_size=18", "[train] refused: config.batch_size=18 is not divisible by the 4 devices"),
])
def test_train_refuses_an_impossible_config(flag, expected, subprocess_env, tmp_path):
    proc = run("train.py", "--config=configs/default.py:smoke", flag, f"--workdir={tmp_path}",
               env=subprocess_env, check=False)
    assert proc.returncode != 0
    assert expected in proc.stderr, proc.stderr[-2000:]


def test_config_is_locked_against_typos(subprocess_env, tmp_path):
    proc = run("train.py", "--config=configs/default.py:smoke", "--config.num_stepz=3",
               f"--workdir={tmp_path}", env=subprocess_env, check=False)
    assert proc.returncode != 0 and "num_stepz" in proc.stderr


def test_train_then_eval_then_predict(synthetic_affect_dir, subprocess_env, tmp_path):
    workdir = str(tmp_path / "run")
    train = run("train.py", "--config=configs/default.py:smoke", f"--config.data_dir={synthetic_affect_dir}",
                f"--workdir={workdir}", env=subprocess_env)
    assert "[train] step 12/12" in train.stdout and "target UAR" in train.stdout
    for name in ("results.json", "confusion.png", "embeddings.png", "curves.png"):
        assert os.path.getsize(os.path.join(workdir, name)) > 100, name
    with open(os.path.join(workdir, "results.json")) as f:
        results = json.load(f)

    evaluated = run("eval.py", f"--workdir={workdir}", "--noplots", env=subprocess_env)
    assert f"UAR {results['uar']:.2f}" in evaluated.stdout
    with open(os.path.join(workdir, "eval", "synthetic_b_train.json")) as f:
        report = json.load(f)
    for key in METRICS:
        assert report[key] == results[key], key
    assert os.listdir(os.path.join(workdir, "eval")) == ["synthetic_b_train.json"]  # --noplots

    import soundfile as sf

    from emodna_jax.audio import synthetic_speech

    folder = tmp_path / "recordings"
    folder.mkdir()
    for i, utt in enumerate(synthetic_speech.corpus_utterances("c")[::70]):
        sf.write(str(folder / f"clip{i}.wav"), synthetic_speech.synthesize(utt, sample_rate=16000), 16000)
    predicted = run("eval.py", f"--workdir={workdir}", f"--predict={folder}", env=subprocess_env)
    assert "clip0.wav" in predicted.stdout and "prediction" in predicted.stdout
    with open(os.path.join(workdir, "predictions.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [os.path.basename(r["file"]) for r in rows] == ["clip0.wav", "clip1.wav", "clip2.wav"]
    for row in rows:
        probs = [float(row[c]) for c in results["classes"]]
        assert abs(sum(probs) - 1) < 1e-5 and row["prediction"] == results["classes"][probs.index(max(probs))]


def test_method_flag_is_applied_before_the_users_flags(subprocess_env, tmp_path):
    """train.py --config.method=NAME: NAME's settings, then the user's flags. Both answers come from
    config_checks before any data is read: source_only makes no pseudo-label, so a centroid labeller
    is refused there, and accepted with the method the config file names."""
    refused = run("train.py", "--config=configs/default.py:smoke,pseudo_label", "--config.method=source_only",
                  "--config.pseudo.labeller=centroid", "--config.log_every=0", f"--workdir={tmp_path / 'a'}",
                  env=subprocess_env, check=False)
    assert refused.returncode != 0 and "config.pseudo.labeller='centroid'" in refused.stderr, refused.stderr
    passes_that = run("train.py", "--config=configs/default.py:smoke,source_only", "--config.method=pseudo_label",
                      "--config.pseudo.labeller=centroid", "--config.log_every=0", f"--workdir={tmp_path / 'b'}",
                      env=subprocess_env, check=False)
    assert "config.log_every=0" in passes_that.stderr, passes_that.stderr  # the next check down
    unknown = run("train.py", "--config=configs/default.py", "--config.method=emodna_floor_0_7",
                  f"--workdir={tmp_path / 'c'}", env=subprocess_env, check=False)
    assert unknown.returncode != 0 and "'emodna_floor_0_7' is not a method" in unknown.stderr
