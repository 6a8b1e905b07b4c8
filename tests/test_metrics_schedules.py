"""Metrics from summed confusion counts, and the schedules as pure functions of the step."""

import numpy as np
import pytest

from emodna_jax.eval import metrics
from emodna_jax.train import schedules


def test_confusion_uar_war_by_hand():
    labels = np.array([0, 0, 0, 1, 2, 2, 1, 9])
    preds = np.array([0, 1, 0, 1, 2, 0, 1, 9])
    mask = np.array([1, 1, 1, 1, 1, 1, 1, 0])  # the last is padding (and out of range): not counted
    conf = metrics.confusion_matrix(labels=labels, predictions=preds, mask=mask, num_classes=3)
    np.testing.assert_array_equal(conf, [[2, 1, 0], [0, 2, 0], [1, 0, 1]])
    out = metrics.summarize(conf, ["a", "b", "c"])
    assert out["uar"] == pytest.approx(100 * (2 / 3 + 1 + 1 / 2) / 3)
    assert out["war"] == pytest.approx(100 * 5 / 7)
    assert out["per_class_recall"]["c"] == pytest.approx(50.0)


def test_confusion_sums_exactly_over_batches_and_skips_absent_classes_in_uar():
    rng = np.random.default_rng(0)
    labels, preds = rng.integers(0, 2, 50), rng.integers(0, 3, 50)  # class 2 never a true label
    whole = metrics.confusion_matrix(labels=labels, predictions=preds, mask=np.ones(50), num_classes=3)
    parts = sum(metrics.confusion_matrix(labels=labels[i:i + 7], predictions=preds[i:i + 7],
                                         mask=np.ones(len(labels[i:i + 7])), num_classes=3)
                for i in range(0, 50, 7))
    np.testing.assert_array_equal(whole, parts)
    out = metrics.summarize(whole, ["a", "b", "c"])
    assert out["per_class_recall"]["c"] is None
    recalls = [out["per_class_recall"][k] for k in "ab"]
    assert out["uar"] == pytest.approx(np.mean(recalls))


def test_confusion_rejects_out_of_range_labels():
    with pytest.raises(ValueError, match="outside 0..2"):
        metrics.confusion_matrix(labels=[3], predictions=[0], mask=[1], num_classes=3)


def test_schedules():
    assert float(schedules.alignment_weight(0, num_steps=100)) == 0.0
    assert float(schedules.alignment_weight(100, num_steps=100)) == pytest.approx(2 / (1 + np.exp(-10)) - 1)
    assert 0 < float(schedules.alignment_weight(10, num_steps=100)) < float(schedules.alignment_weight(20, num_steps=100))
    # Class-level: zero through the warm-up, then the same ramp over the remaining steps.
    assert float(schedules.class_alignment_weight(19, warmup_steps=20, num_steps=120)) == 0.0
    assert float(schedules.class_alignment_weight(20, warmup_steps=20, num_steps=120)) == 0.0
    assert float(schedules.class_alignment_weight(70, warmup_steps=20, num_steps=120)) == pytest.approx(
        float(schedules.dann_ramp(0.5)))
    lr = schedules.learning_rate_schedule(base_lr=1e-3, warmup_steps=10, num_steps=100)
    assert float(lr(0)) == 0.0 and float(lr(10)) == pytest.approx(1e-3) and float(lr(100)) == pytest.approx(0.0)
