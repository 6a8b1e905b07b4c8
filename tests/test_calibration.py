"""Confidence floors calibrated on held-out labelled data (calibration.py): numpy, no JAX."""

import numpy as np
import pytest

from emodna_jax import calibration


def floor(confidence, correct, precision=0.8, min_count=1):
    return calibration.precision_floor(confidence=np.array(confidence), correct=np.array(correct),
                                       precision=precision, min_count=min_count)


def test_floor_is_the_lowest_confidence_of_the_largest_precise_top_set():
    # Ranked: 0.9 R, 0.8 R, 0.7 W, 0.6 R, 0.5 R, 0.4 W. Top-5 accuracy 4/5 = 0.8 qualifies; top-6 is 4/6.
    confidence = [0.5, 0.9, 0.4, 0.7, 0.6, 0.8]
    correct = [True, True, False, False, True, True]
    assert floor(confidence, correct) == pytest.approx(0.5)
    assert floor(confidence, correct, precision=0.9) == pytest.approx(0.8)  # only the top two reach it


def test_a_dip_does_not_stop_the_search_for_a_larger_set():
    # Top-3 (R, W, W) is at 1/3, yet the top-7 set recovers to 5/7 >= 0.7: the floor is its 7th.
    confidence = np.linspace(0.99, 0.3, 8)
    correct = [True, False, False, True, True, True, True, False]
    assert floor(confidence, correct, precision=0.7) == pytest.approx(confidence[6])


def test_ties_go_in_or_out_together():
    # Top-2 at 0.9 are right; the three tied at 0.7 hold two wrong, so they cannot be split off.
    confidence = [0.9, 0.9, 0.7, 0.7, 0.7]
    correct = [True, True, True, False, False]
    assert floor(confidence, correct, precision=0.75) == pytest.approx(0.9)  # 3/5 = 0.6 < 0.75
    assert floor(confidence, correct, precision=0.6) == pytest.approx(0.7)


def test_min_count_and_no_qualifying_set():
    confidence = [0.95, 0.9, 0.8, 0.7]
    correct = [True, False, False, False]
    assert floor(confidence, correct, precision=0.8, min_count=1) == pytest.approx(0.95)
    assert floor(confidence, correct, precision=0.8, min_count=2) == 1.0  # admit nothing


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="precision"):
        floor([0.5], [True], precision=0.0)
    with pytest.raises(ValueError, match="min_count"):
        floor([0.5], [True], min_count=0)
    with pytest.raises(ValueError, match="differ"):
        floor([0.5, 0.6], [True])
