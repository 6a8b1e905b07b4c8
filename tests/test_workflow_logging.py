"""Run logging: JSON reports, TensorBoard scalars, the progress line and the non-finite check."""

import json
import math

import numpy as np
import pytest

from emodna_jax.train import run_logging


def test_write_json_handles_numpy_and_non_finite(tmp_path):
    path = tmp_path / "a" / "r.json"
    run_logging.write_json(str(path), {"uar": np.float32(41.5), "confusion": np.eye(2, dtype=np.int64),
                                       "loss": float("nan"), "names": ("x", "y")})
    assert json.loads(path.read_text()) == {"uar": 41.5, "confusion": [[1, 0], [0, 1]], "loss": None,
                                            "names": ["x", "y"]}


def test_metric_writer_flattens_class_vectors_and_writes_events(tmp_path):
    writer = run_logging.MetricWriter(str(tmp_path / "logs"))
    writer.set_class_names(["angry", "sad", "happy"])
    writer.write(4, {"loss/total": np.float32(1.25), "pseudo/thresholds": np.array([0.7, 0.8, 0.9]),
                     "monitor/other": np.array([1.0, 2.0])})
    writer.write(8, {"loss/total": 0.5})
    writer.write(8, {"monitor/target_uar": 33.0})  # a second write at the same step merges
    writer.flush()
    assert writer.history[4]["pseudo/thresholds/sad"] == pytest.approx(0.8)
    assert writer.history[4]["monitor/other/1"] == 2.0
    assert writer.history[8] == {"loss/total": 0.5, "monitor/target_uar": 33.0}
    scalars = run_logging.read_scalars(str(tmp_path / "logs"))
    writer.close()
    assert scalars["loss/total"] == {4: 1.25, 8: 0.5}
    assert scalars["pseudo/thresholds/happy"][4] == pytest.approx(0.9)
    assert scalars["monitor/target_uar"] == {8: 33.0}


def test_disabled_writer_keeps_history_but_writes_no_file(tmp_path):
    writer = run_logging.MetricWriter(str(tmp_path / "logs"), enabled=False)
    writer.write(1, {"loss/total": 1.0})
    writer.close()
    assert writer.history == {1: {"loss/total": 1.0}}
    assert not (tmp_path / "logs").exists()


def test_progress_line_has_step_rate_eta_and_loss_parts():
    progress = run_logging.ProgressLine(100, start_step=20)
    line = progress.format(40, {"loss/total": 1.5, "loss/cls": 1.0, "loss/decoupling": 0.25,
                                "pseudo/confident_fraction": 0.5})
    assert "step  40/100" in line and "steps/s" in line and "ETA" in line
    assert "loss 1.5000" in line and "cls 1.0000" in line and "decoupling 0.2500" in line
    assert "confident 50%" in line


def test_check_finite_names_the_step_and_every_loss_part():
    run_logging.check_finite(3, {"loss/total": 1.0, "loss/cls": 0.5, "monitor/z_e_norm": float("nan")})
    with pytest.raises(FloatingPointError) as info:
        run_logging.check_finite(7, {"loss/total": float("nan"), "loss/cls": 0.5, "loss/corpus_align": float("inf"),
                                     "monitor/grad_norm": 2.0})
    message = str(info.value)
    assert "step 7" in message
    for part in ("loss/total=nan", "loss/cls=0.5", "loss/corpus_align=inf", "monitor/grad_norm=2"):
        assert part in message
    assert info.value.step == 7 and math.isnan(info.value.parts["loss/total"])
    with pytest.raises(FloatingPointError, match="grad_norm"):
        run_logging.check_finite(2, {"loss/total": 1.0, "monitor/grad_norm": float("nan")})


def test_write_json_puts_number_lists_on_one_line(tmp_path):
    path = tmp_path / "r.json"
    obj = {"confusion": np.arange(6).reshape(2, 3), "x": [1.5e-7, None, -2], "names": ["a", "b"], "e": []}
    run_logging.write_json(str(path), obj)
    text = path.read_text()
    assert "[0, 1, 2]" in text and "[1.5e-07, null, -2]" in text
    assert json.loads(text) == {"confusion": [[0, 1, 2], [3, 4, 5]], "x": [1.5e-7, None, -2], "names": ["a", "b"],
                                "e": []}


def test_pseudo_label_tally_counts_the_whole_run_against_hand_values():
    tally = run_logging.PseudoLabelTally(3, target_labels=np.array([0, 1, 2, 2, -1, 1]))
    tally.update(np.array([0, -1, 2, 1]), np.array([0, 1, 2, 3]))  # 3 confident, 2 right
    tally.update(np.array([[1, 2]]), np.array([[4, 5]]))  # example 4 unlabelled; 5 wrong
    r = tally.report(["a", "b", "c"])
    assert r["confident_share_run"] == pytest.approx(5 / 6)
    assert r["confident_share_per_class"] == pytest.approx({"a": 1 / 6, "b": 2 / 6, "c": 2 / 6})
    assert r["pseudo_label_precision_run"] == pytest.approx(100 * 2 / 4)
    resumed = run_logging.PseudoLabelTally(3, target_labels=np.array([0, 1, 2, 2, -1, 1]))
    resumed.restore(json.loads(json.dumps(tally.state())))  # as checkpoint metadata carries it
    assert resumed.report(["a", "b", "c"]) == r
    assert "83.3% of 6 target examples confident" in tally.summary_line(["a", "b", "c"])
    nothing = run_logging.PseudoLabelTally(3).report(["a", "b", "c"])
    assert nothing["confident_share_run"] is None and nothing["pseudo_label_precision_run"] is None
    none_passed = run_logging.PseudoLabelTally(3, target_labels=np.zeros(4, int))
    none_passed.update(np.full(4, -1), np.arange(4))
    r = none_passed.report(["a", "b", "c"])
    assert r["confident_share_run"] == 0.0 and r["pseudo_label_precision_run"] is None


def test_split_example_outputs_keeps_per_example_vectors_out_of_the_logs():
    scalars, examples = run_logging.split_example_outputs(
        {"loss/total": 1.0, "examples/pseudo_label": np.array([1, -1]), "examples/target_index": np.arange(2)})
    assert scalars == {"loss/total": 1.0} and set(examples) == {"pseudo_label", "target_index"}


def _memory_corpus(name, n, seed):
    """Five classes whose class lives in the mean of coefficient 0; features [n, 16, 5]."""
    from emodna_jax.audio import input_pipeline, labels
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 5
    x = rng.normal(size=(n, 16, 5)).astype(np.float32)
    x[:, :, 0] += 2.0 * (y[:, None] - 2)
    names = ["angry", "fear", "happy", "neutral", "sad"]
    return input_pipeline.CorpusArrays(
        name, x, np.array([labels.LABEL_NAMES.index(names[k]) for k in y]),
        np.array([f"{name}{i % 2}" for i in range(n)], dtype=object),
        np.array([f"{name}/{i}.wav" for i in range(n)], dtype=object))


def test_smoke_run_reports_pseudo_labels_over_the_whole_run_and_the_normalisation(
        tmp_path, monkeypatch, capsys):
    """A tiny in-memory run on 2 devices: the run-long tally holds every adaptation step's target
    examples (not the last batch), its per-class counts equal the step's own psum-ed counts, its
    precision equals the one recomputed from the labels, and results.json names the normalisation."""
    import functools

    from emodna_jax.audio import input_pipeline
    from emodna_jax.train import trainer
    from tests import helpers

    corpora = {"synthetic_a": _memory_corpus("a", 40, 0), "synthetic_b": _memory_corpus("b", 40, 1)}
    monkeypatch.setattr(input_pipeline, "create_task_data", functools.partial(
        input_pipeline.create_task_data, load_fn=lambda name, config, split: corpora[name]))
    calls, original = [], run_logging.PseudoLabelTally.update
    monkeypatch.setattr(run_logging.PseudoLabelTally, "update", lambda self, p, i=None: (
        calls.append((np.asarray(p).copy(), np.asarray(i).copy())), original(self, p, i))[-1])
    c = helpers.tiny_config("pseudo_label", num_steps=6, batch_size=8, eval_batch_size=8, log_every=1,
                            checkpoint_every=100, plots=False, normalization="speaker", num_devices=2)
    c.pseudo.warmup_steps = 0  # one phase, one compile: every step adapts
    results = trainer.train_and_evaluate(c, str(tmp_path / "run"))
    on_disk = json.loads((tmp_path / "run" / "results.json").read_text())
    assert len(calls) == 6  # every step adapts, each with 8 target examples
    assert on_disk["pseudo_label_counts_run"]["seen"] == 6 * 8
    assert on_disk["confident_share_run"] == pytest.approx(results["confident_share_run"])
    assert on_disk["confident_share_run"] > 0  # tiny_config lets pseudo-labels through
    shares = on_disk["confident_share_per_class"]
    assert list(shares) == ["angry", "fear", "happy", "neutral", "sad"]
    assert sum(shares.values()) == pytest.approx(on_disk["confident_share_run"])
    # The per-example labels the host tallied agree with the counts the step psum-ed itself.
    history = run_logging.read_scalars(str(tmp_path / "run" / "logs"))
    for k, name in enumerate(shares):
        from_step = sum(history[f"pseudo/confident_per_class/{name}"].values())
        assert shares[name] * 48 == pytest.approx(from_step)
    # Precision recomputed from the recorded (pseudo-label, index) pairs and the target labels.
    labels = np.arange(40) % 5  # _memory_corpus' classes, in config.classes order
    pseudo = np.concatenate([p.reshape(-1) for p, _ in calls])
    index = np.concatenate([i.reshape(-1) for _, i in calls])
    # The gathered indices are the batches' own, in the order of their devices and slots.
    data = input_pipeline.create_task_data(c, num_devices=2)
    for step, (_, i) in enumerate(calls):
        np.testing.assert_array_equal(i.reshape(-1), data.train_batch(step)["target"]["index"].reshape(-1))
    ok = pseudo >= 0
    assert on_disk["pseudo_label_precision_run"] == pytest.approx(100 * np.mean(pseudo[ok] == labels[index[ok]]))
    # Normalisation: 20 recordings per speaker is at the default minimum of 20: per speaker.
    assert [r["text"] for r in on_disk["normalization"]] == [
        "source synthetic_a: per-speaker statistics for 2 speaker(s)",
        "target synthetic_b: per-speaker statistics for 2 speaker(s)"]
    out = capsys.readouterr().out
    assert "normalisation source synthetic_a: per-speaker" in out and "pseudo-labels over the run" in out
    for field in ("uar", "war", "train_monitors", "label_free", "centroid"):  # existing fields stay
        assert field in on_disk
