"""Confidence floors calibrated on labelled held-out data (held-out source speakers, never the target).

A pseudo-label threshold says "trust the classifier above this confidence". `precision_floor` measures
where that trust is earned: on examples the model did not train on, the lowest confidence above which
its predictions are right at least a given share of the time. benchmarks/calibrate_floor.py applies it
to the held-out source speakers of finished runs to set `pseudo.tau_min`.
"""

import numpy as np


def precision_floor(*, confidence: np.ndarray, correct: np.ndarray, precision: float,
                    min_count: int) -> float:
    """The confidence of the least confident example in the largest most-confident set whose accuracy
    reaches `precision`.

    Examples are ranked by confidence, highest first; a set is a top-ranked prefix that ends between
    two distinct confidences (ties go in or out together) and holds at least `min_count` examples.

    Args:
      confidence: [N] the largest class probability of each prediction.
      correct: [N] bool, whether each prediction is right.
      precision: the accuracy the set must reach, in (0, 1].
      min_count: the fewest examples a set may have (a floor resting on two lucky examples says little).
    Returns:
      The floor, in (0, 1]; 1.0 when no set qualifies (no confidence is trustworthy: admit nothing).
    """
    confidence = np.asarray(confidence, np.float64).reshape(-1)
    correct = np.asarray(correct, bool).reshape(-1)
    if confidence.shape != correct.shape:
        raise ValueError(f"precision_floor: confidence {confidence.shape} and correct {correct.shape} differ")
    if not 0.0 < precision <= 1.0:
        raise ValueError(f"precision_floor: precision={precision} must lie in (0, 1]")
    if min_count < 1:
        raise ValueError(f"precision_floor: min_count={min_count} must be at least 1")
    order = np.argsort(-confidence, kind="stable")
    ranked, hits = confidence[order], correct[order]
    size = np.arange(1, len(ranked) + 1)
    accuracy = np.cumsum(hits) / size
    # A prefix may end at position i only where the next example is strictly less confident.
    ends = np.append(ranked[1:] < ranked[:-1], True)
    qualifies = ends & (size >= min_count) & (accuracy >= precision)
    if not qualifies.any():
        return 1.0
    return float(ranked[np.flatnonzero(qualifies)[-1]])
