"""The pure pseudo-label math on hand-made probabilities, and which configs make pseudo-labels at all."""

import jax
import ml_collections
import numpy as np
import pytest

from emodna_jax.method import pseudo_labelling, thresholds

PROBS = np.array([[0.9, 0.05, 0.05], [0.5, 0.3, 0.2], [0.1, 0.8, 0.1], [0.2, 0.1, 0.7]], np.float32)


def _pseudo_labels(**kwargs):
    """pseudo_labels with a fixed threshold of 0.6 on one device (a vmapped axis of size 1)."""
    args = dict(threshold_state=thresholds.init_thresholds(3), kind="fixed", tau_min=0.0, fixed_threshold=0.6,
                ema=0.9, distribution_alignment=False, axis_name="batch", **kwargs)
    arrays = {k: v[None] for k, v in args.items() if isinstance(v, np.ndarray)}
    fn = lambda a: pseudo_labelling.pseudo_labels(**{**args, **a})  # noqa: E731
    return jax.tree.map(lambda v: np.asarray(v[0]), jax.vmap(fn, axis_name="batch")(arrays))


def test_fixed_threshold_keeps_the_rows_whose_top_probability_reaches_it():
    out = _pseudo_labels(probs=PROBS)
    np.testing.assert_array_equal(out.labels, [0, 0, 1, 2])
    np.testing.assert_array_equal(out.confident, [1, 0, 1, 1])  # 0.5 < 0.6
    np.testing.assert_allclose(out.tau, [0.6, 0.6, 0.6])
    np.testing.assert_allclose(out.probs, PROBS)
    assert out.monitors == {}


def test_a_table_and_a_strong_view_each_keep_only_the_rows_that_name_the_same_class():
    table = np.eye(3, dtype=np.float32)[[0, 2, 1, 0]]  # agrees on rows 0 and 2
    strong = np.eye(3, dtype=np.float32)[[0, 0, 0, 2]]  # agrees on rows 0, 1 and 3
    out = _pseudo_labels(probs=PROBS, table_probs=table, strong_probs=strong)
    np.testing.assert_array_equal(out.labels, [0, 0, 1, 2])  # the labels stay the head's
    np.testing.assert_array_equal(out.confident, [1, 0, 0, 0])
    np.testing.assert_allclose(out.monitors["pseudo/centroid_agreement_batch"], 0.5)
    np.testing.assert_allclose(out.monitors["pseudo/agreement"], 0.75)


@pytest.mark.parametrize("threshold,decoupling,class_align,class_weight,expected", [
    ("freematch", 0.1, "prototype", 1.0, True),
    ("freematch", 0.1, "none", 0.0, True),        # the decoupling loss alone consumes them
    ("freematch", 0.0, "prototype", 1.0, True),   # class-level alignment alone
    ("freematch", 0.0, "none", 1.0, False),       # a weight on an alignment that is off consumes nothing
    ("freematch", 0.0, "prototype", 0.0, False),
    ("none", 1.0, "prototype", 1.0, False),       # no rule, no pseudo-label
])
def test_makes_pseudo_labels_needs_a_rule_and_a_consumer(threshold, decoupling, class_align, class_weight, expected):
    loss = ml_collections.ConfigDict(
        {"decoupling_weight": decoupling, "class_align": class_align, "class_align_weight": class_weight})
    pseudo = ml_collections.ConfigDict({"threshold": threshold})
    assert pseudo_labelling.makes_pseudo_labels(loss, pseudo) is expected
    frozen = ml_collections.FrozenConfigDict  # the step's settings hold the sections frozen
    assert pseudo_labelling.makes_pseudo_labels(frozen(loss), frozen(pseudo)) is expected
