"""The whole workflow on the smoke config, in process: train -> checkpoints -> results.json ->
eval; resuming after a signal and after a crash; a NaN stop. The CLI itself is in
test_workflow_cli.py.

The synthetic corpora (affect, the default front end) are built once per session (tests/fixtures_data.py).
"""

import json
import os
import shutil
import signal
import threading
import time

import jax
import numpy as np
import pytest

from configs import default
from emodna_jax.audio import features, input_pipeline
from emodna_jax.eval import evaluation
from emodna_jax.train import checkpointing, run_logging, trainer
from emodna_jax.workflows import inference

METRICS = ("uar", "war", "per_class_recall", "confusion")


# Every run here has the same shapes: the session's persistent compilation cache (shared with the
# train.py processes of test_workflow_cli.py and test_workflow_multiprocess.py) makes every run after
# the first of a config load its compiled steps.
pytestmark = pytest.mark.usefixtures("compilation_cache")


@pytest.fixture(scope="module")
def data_dir(synthetic_affect_dir):
    """The session's synthetic corpora with the default front end built."""
    return synthetic_affect_dir


def smoke_config(data_dir, **overrides):
    """configs/default.py:smoke on the session's synthetic corpora, checkpoints every 3 steps."""
    c = default.get_config("smoke")
    c.data_dir = data_dir
    c.checkpoint_every = 3
    c.plots = False
    for key, value in overrides.items():
        c[key] = value
    return c


def final_state(config, workdir, step=None):
    """The state saved in `workdir` (latest step unless `step`), as host numpy leaves."""
    _, data, fns = trainer.setup(config)
    ckpt = checkpointing.Checkpointer(os.path.join(workdir, "checkpoints"))
    state, metadata = ckpt.restore(trainer.init_state(config, fns, data), step=step)
    ckpt.close()
    return state, metadata


def assert_same_state(a, b):
    leaves_a, tree_a = jax.tree.flatten_with_path(a)[0], jax.tree.structure(a)
    leaves_b = jax.tree.leaves(b)
    assert tree_a == jax.tree.structure(b)
    for (path, x), y in zip(leaves_a, leaves_b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=jax.tree_util.keystr(path))


def read_json(path):
    with open(path) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def uninterrupted(data_dir, tmp_path_factory):
    """One whole run with the target monitor, never interrupted (pictures: test_workflow_cli.py)."""
    workdir = str(tmp_path_factory.mktemp("uninterrupted"))
    config = smoke_config(data_dir, monitor_target_every=6)
    results = trainer.train_and_evaluate(config, workdir)
    return config, workdir, results


def test_run_writes_results_logs_and_checkpoints(uninterrupted):
    config, workdir, results = uninterrupted
    on_disk = read_json(os.path.join(workdir, "results.json"))
    assert on_disk == json.loads(json.dumps(results))
    for key in ("task", "method", "seed", "steps", "source", "target", "classes", "train_loss",
                "train_seconds", "wall_seconds", "examples_per_s", "label_free", "prediction_histogram",
                "devices", "argv") + METRICS:
        assert key in on_disk, key
    assert on_disk["steps"] == 12 and on_disk["classes"] == default.SHARED_CLASSES.split(",")
    confusion = np.asarray(on_disk["confusion"])
    assert confusion.shape == (5, 5) and confusion.sum() == on_disk["num_target_examples"] == 200
    assert on_disk["war"] == pytest.approx(100 * np.trace(confusion) / confusion.sum())
    assert list(on_disk["prediction_histogram"].values()) == list(confusion.sum(0))
    assert on_disk["devices"].startswith("4 x cpu (pmap)")
    assert np.isfinite(on_disk["train_loss"]) and on_disk["examples_per_s"] > 0
    centroid = on_disk["centroid"]  # the target relabelled by its own class centroids
    assert 0 <= centroid["uar"] <= 100 and np.asarray(centroid["confusion"]).sum() == 200
    assert sum(centroid["prediction_histogram"].values()) == 200
    assert os.path.exists(os.path.join(workdir, "config.json"))
    assert not os.path.exists(os.path.join(workdir, "confusion.png"))  # config.plots=False
    scalars = run_logging.read_scalars(os.path.join(workdir, "logs"))
    assert set(scalars["loss/total"]) == {4, 8, 12}
    for name in ("loss/cls", "loss/corpus_align", "loss/decoupling", "loss/class_align",
                 "pseudo/confident_fraction", "pseudo/thresholds/angry", "pseudo/confident_per_class/sad",
                 "monitor/target_prediction_hist/fear", "monitor/z_e_norm", "monitor/target_uar"):
        assert name in scalars, name
    assert scalars["loss/total"][12] == pytest.approx(on_disk["train_loss"])
    monitors = on_disk["train_monitors"]
    for name in ("loss/cls", "loss/total", "pseudo/confident_fraction"):
        assert monitors[name] == pytest.approx(scalars[name][12]), name
    assert "pseudo/thresholds" not in monitors  # vectors stay in the logs
    ckpt = checkpointing.Checkpointer(os.path.join(workdir, "checkpoints"))
    assert ckpt.all_steps() == [9, 12]  # max_checkpoints = 2
    ckpt.close()


def test_eval_reproduces_the_results_exactly(uninterrupted, tmp_path):
    config, workdir, results = uninterrupted
    evaluated = inference.evaluate_workdir(workdir, plots=False)  # plotting is tested above
    on_disk = read_json(os.path.join(workdir, "eval", "synthetic_b_train.json"))
    assert on_disk["step"] == 12
    for key in METRICS:
        assert on_disk[key] == json.loads(json.dumps(results[key])), key
        assert evaluated[key] == results[key]
    assert on_disk["label_free"] == results["label_free"]
    assert on_disk["centroid"] == json.loads(json.dumps(results["centroid"]))


def test_a_run_saved_before_newer_config_fields_still_evaluates(uninterrupted, tmp_path):
    """config.json of an older version lacks options added since: they take today's defaults."""
    _, workdir, results = uninterrupted
    older = tmp_path / "older_run"
    shutil.copytree(workdir, older, ignore=shutil.ignore_patterns("eval"))
    saved = read_json(older / "config.json")
    del saved["pseudo"]["agreement"], saved["model"]["shared_blocks"]
    (older / "config.json").write_text(json.dumps(saved))
    with pytest.raises((AttributeError, KeyError), match="agreement|shared_blocks"):  # no defaults in the library
        inference.evaluate_workdir(str(older), plots=False)
    evaluated = inference.evaluate_workdir(str(older), plots=False, defaults=default.get_config())
    assert evaluated["uar"] == results["uar"] and evaluated["step"] == 12


def test_predicting_files_matches_the_eval_stream(uninterrupted, tmp_path):
    """A practitioner's path (audio file -> features -> the speaker's statistics -> model) gives the
    probabilities the eval stream gives for the same recordings."""
    import soundfile as sf

    from emodna_jax.audio import synthetic_speech

    config, workdir, _ = uninterrupted
    assert config.normalization == "speaker"  # the default
    utterances = synthetic_speech.corpus_utterances("b")
    speaker = utterances[0].speaker.name
    wanted = [u for u in utterances if u.speaker.name == speaker][::12]  # 5 of one target speaker
    folder = tmp_path / "audio"
    rate = features.get_feature_config(config.features).sample_rate  # as the builder synthesised them
    for utt in wanted:
        path = folder / utt.file
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), synthetic_speech.synthesize(utt, sample_rate=rate), rate, subtype="FLOAT")
    with pytest.raises(ValueError, match="not a speaker of the target corpus"):
        inference.predict_files(workdir, str(folder), output=str(tmp_path / "p.csv"), speaker="nobody")
    unknown = inference.predict_files(workdir, str(folder), output=str(tmp_path / "p.csv"))
    rows = inference.predict_files(workdir, str(folder), output=str(tmp_path / "p.csv"), speaker=speaker)
    assert len(unknown) == len(rows) == len(wanted)
    probs = lambda rs: np.array([[r[n] for n in config.classes.split(",")] for r in rs])  # noqa: E731
    assert np.abs(probs(unknown) - probs(rows)).max() > 1e-4  # corpus statistics are not the speaker's
    _, data, fns, state = inference.load_run(workdir)
    predictions = evaluation.predict(fns, state, data.eval_batches("target"))
    by_file = {e.file: p for e, p in zip(data.eval_examples("target"), predictions.probs)}
    for row in rows:
        expected = by_file[os.path.relpath(row["file"], folder)]
        got = np.array([row[n] for n in data.class_names])
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
        assert row["prediction"] == data.class_names[int(expected.argmax())]
    with open(tmp_path / "p.csv") as f:
        assert f.readline().strip() == ("file,segment,start_s,end_s,prediction," + ",".join(data.class_names)
                                        + ",note")  # short files: one row each, segment "all"
    assert "centroid_prediction" not in rows[0]  # 4 files: too few to label by their own centroids


def test_a_large_enough_set_of_files_also_gets_centroid_labels(uninterrupted, tmp_path, monkeypatch):
    import soundfile as sf

    from emodna_jax.audio import synthetic_speech

    _, workdir, _ = uninterrupted
    folder = tmp_path / "audio"
    folder.mkdir()
    for i, utt in enumerate(synthetic_speech.corpus_utterances("b")[::20][:10]):
        sf.write(str(folder / f"{i:02d}.wav"), synthetic_speech.synthesize(utt, sample_rate=22050), 22050)
    monkeypatch.setattr(inference, "CENTROID_MIN_PER_CLASS", 2)  # 10 files, 5 classes
    rows = inference.predict_files(workdir, str(folder), output=str(tmp_path / "p.csv"))
    names = read_json(os.path.join(workdir, "results.json"))["classes"]
    assert len(rows) == 10 and all(row["centroid_prediction"] in names for row in rows)
    own = inference.predict_files(workdir, str(folder), output=str(tmp_path / "own.csv"), speaker="self")
    probs = lambda rs: np.array([[r[n] for n in names] for r in rs])  # noqa: E731
    assert len(own) == 10 and np.abs(probs(own) - probs(rows)).max() > 1e-4  # the files' own statistics
    with open(tmp_path / "p.csv") as f:
        assert f.readline().strip().endswith(",centroid_prediction")


def _patch_batches(monkeypatch, at_step, action):
    """Makes the input pipeline call `action(batch)` when it builds the batch of step `at_step`
    (in the prefetch thread, up to 2 steps before the trainer takes it)."""
    original = input_pipeline.TaskData.train_batch

    def train_batch(self, step):
        batch = original(self, step)
        return action(batch) if step == at_step else batch

    monkeypatch.setattr(input_pipeline.TaskData, "train_batch", train_batch)


def _crash_at_step_7_and_resume(config, workdir, monkeypatch):
    """Crashes the run of `config` in `workdir` while the batch of step 7 is built (after the step-6
    checkpoint), then runs the same config again; returns the resumed run's results."""
    def crash(batch):
        raise RuntimeError("simulated crash")

    with monkeypatch.context() as patch:
        _patch_batches(patch, 7, crash)
        with pytest.raises(RuntimeError, match="simulated crash"):
            trainer.train_and_evaluate(config, workdir)
    assert checkpointing.Checkpointer(os.path.join(workdir, "checkpoints")).latest_step() == 6
    return trainer.train_and_evaluate(config, workdir)


def test_interrupted_runs_end_with_the_same_parameters(uninterrupted, data_dir, tmp_path, monkeypatch):
    """SIGTERM during warm-up, then a crash during adaptation, each followed by the same command:
    the final state equals the uninterrupted run's, leaf for leaf, bit for bit."""
    config, reference_dir, reference = uninterrupted
    config = smoke_config(data_dir)  # the same run, without plots and monitor
    workdir = str(tmp_path / "run")

    def terminate(batch):
        os.kill(os.getpid(), signal.SIGTERM)
        return batch

    with monkeypatch.context() as patch:
        _patch_batches(patch, 3, terminate)
        with pytest.raises(SystemExit, match=r"stopped by signal 15 after step \d+; run the same command"):
            trainer.train_and_evaluate(config, workdir)
    stopped_at = checkpointing.Checkpointer(os.path.join(workdir, "checkpoints")).latest_step()
    assert 1 <= stopped_at <= 4  # the step that was running when the signal came, checkpointed
    assert not os.path.exists(os.path.join(workdir, "results.json"))

    resumed = _crash_at_step_7_and_resume(config, workdir, monkeypatch)
    for key in METRICS + ("train_loss",):
        assert resumed[key] == reference[key], key
    state, metadata = final_state(config, workdir)
    reference_state, _ = final_state(config, reference_dir)
    assert int(state.step) == 12 and metadata["step"] == 12
    assert_same_state(state, reference_state)

    # Started again once finished, the run trains nothing and reports the same numbers.
    again = trainer.train_and_evaluate(config, workdir)
    for key in METRICS + ("train_loss",):
        assert again[key] == reference[key], key
    assert again["examples_per_s"] is None  # no step was timed


def test_nan_loss_stops_naming_step_and_parts_and_keeps_the_last_good_checkpoint(
        data_dir, tmp_path, monkeypatch):
    config = smoke_config(data_dir)
    workdir = str(tmp_path / "run")

    def poison(batch):
        batch["source"]["features"][0, 0, 0, 0] = np.nan
        return batch

    _patch_batches(monkeypatch, 7, poison)  # the 8th step, during adaptation
    threads_before = set(_input_threads())
    with pytest.raises(run_logging.NonFiniteLossError) as info:
        trainer.train_and_evaluate(config, workdir)
    message = str(info.value)
    assert info.value.step == 8 and "at step 8" in message
    for part in ("total", "cls", "corpus_id", "decoupling", "dec_emotion", "dec_corpus", "corpus_align",
                 "class_align"):
        assert f"loss/{part}=" in message, part
    assert "loss/cls=nan" in message
    assert f"last good checkpoint is step 6 in {os.path.join(workdir, 'checkpoints')}" in message
    ckpt = checkpointing.Checkpointer(os.path.join(workdir, "checkpoints"))
    assert ckpt.all_steps() == [3, 6]
    ckpt.close()
    state, metadata = final_state(config, workdir)
    assert int(state.step) == 6 and np.isfinite(metadata["train_loss"])
    for leaf in jax.tree.leaves(state.params):
        assert np.all(np.isfinite(leaf))
    assert not os.path.exists(os.path.join(workdir, "results.json"))
    # The exception's traceback (held by `info`) keeps the run's frame, not its input thread.
    deadline = time.monotonic() + 10
    while set(_input_threads()) - threads_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not set(_input_threads()) - threads_before


def _input_threads():
    return [t for t in threading.enumerate() if t.name == "emodna-input" and t.is_alive()]


def test_head_and_centroid_run_attaches_the_table_and_records_both_agreements(data_dir, tmp_path):
    """pseudo.labeller='head_and_centroid' end to end: the trainer builds the centroid table (its refresh
    monitors reach results.json) and the step reports how many batch rows the table agreed with."""
    config = default.get_config("smoke")
    config.pseudo.labeller = "head_and_centroid"
    config.data_dir, config.plots = data_dir, False
    monitors = trainer.train_and_evaluate(config, str(tmp_path / "run"))["train_monitors"]
    assert 0.0 <= monitors["pseudo/centroid_agreement_batch"] <= 1.0
    assert 0.0 <= monitors["pseudo/centroid_head_agreement"] <= 1.0


def test_centroid_labeller_run_records_its_monitors_and_resumes_exactly(data_dir, tmp_path, monkeypatch):
    """pseudo.labeller='centroid' end to end: the relabelling monitors reach results.json, and a crash
    after a refresh-aligned checkpoint resumes to the uninterrupted run's state, bit for bit."""
    config = default.get_config("smoke")
    config.pseudo.labeller = "centroid"
    config.data_dir, config.checkpoint_every, config.plots = data_dir, 3, False
    config.pseudo.centroid_every = 3  # warm-up ends at 4: tables at steps 4, 6, 9
    reference = trainer.train_and_evaluate(config, str(tmp_path / "reference"))
    agreement = reference["train_monitors"]["pseudo/centroid_head_agreement"]
    assert 0.0 <= agreement <= 1.0
    history = read_json(os.path.join(str(tmp_path / "reference"), "results.json"))
    assert history["train_monitors"]["pseudo/centroid_largest_class_share"] >= 0.2

    workdir = str(tmp_path / "run")
    resumed = _crash_at_step_7_and_resume(config, workdir, monkeypatch)
    assert resumed["uar"] == reference["uar"]
    assert_same_state(final_state(config, workdir)[0], final_state(config, str(tmp_path / "reference"))[0])
