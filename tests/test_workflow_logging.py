"""Run logging: JSON reports, TensorBoard scalars, the progress line and the non-finite check."""

import json
import math

import numpy as np
import pytest

from emodna_jax import run_logging


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
