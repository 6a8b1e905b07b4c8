"""Label-free diagnostics: numbers against a hand computation, and the behaviour they are read for."""

import math

import numpy as np
import pytest

from emodna_jax.eval import diagnostics


def _snd_by_hand(probs, t=0.05):
    """A plain double loop over examples (no vectorisation shared with the implementation)."""
    n = len(probs)
    u = [p / math.sqrt(sum(v * v for v in p)) for p in probs]
    total = 0.0
    for i in range(n):
        sims = [sum(a * b for a, b in zip(u[i], u[j])) / t for j in range(n) if j != i]
        z = sum(math.exp(s) for s in sims)
        total += -sum(math.exp(s) / z * math.log(math.exp(s) / z) for s in sims)
    return total / n


def _dirichlet(rng, n, k, alpha):
    return rng.dirichlet(np.full(k, alpha), size=n)


def test_snd_matches_a_hand_computation():
    probs = _dirichlet(np.random.default_rng(0), 9, 4, 1.0)
    assert diagnostics.soft_neighborhood_density(probs=probs) == pytest.approx(_snd_by_hand(probs), rel=1e-10)
    # Row chunking does not change the number.
    assert diagnostics.soft_neighborhood_density(probs=probs, chunk=2) == pytest.approx(
        _snd_by_hand(probs), rel=1e-10)
    # A tiny case computed on paper: two examples, each has one neighbour -> entropy 0.
    assert diagnostics.soft_neighborhood_density(probs=probs[:2]) == 0.0


def test_snd_prefers_grouped_predictions_to_scattered_ones():
    """SND rewards density, not confidence: predictions in K tight groups score higher than
    predictions scattered over the simplex even when the scattered ones are MORE confident."""
    rng = np.random.default_rng(1)
    n, k = 200, 5
    labels = rng.integers(0, k, n)
    grouped = np.full((n, k), 0.1)
    grouped[np.arange(n), labels] = 0.6
    grouped = np.abs(grouped + rng.normal(0, 0.005, (n, k)))
    grouped /= grouped.sum(1, keepdims=True)
    scattered = _dirichlet(rng, n, k, 0.3)
    assert diagnostics.mean_prediction_entropy(scattered) < diagnostics.mean_prediction_entropy(grouped) - 0.3
    snd_grouped = diagnostics.soft_neighborhood_density(probs=grouped)
    snd_scattered = diagnostics.soft_neighborhood_density(probs=scattered)
    assert snd_grouped > snd_scattered + 0.3, (snd_grouped, snd_scattered)
    # Each grouped example's neighbourhood is its own group of about n/k - 1 near-equal neighbours.
    assert snd_grouped == pytest.approx(math.log(n / k - 1), abs=0.05)


def test_snd_collapse_reaches_its_maximum():
    """The documented caveat: identical predictions (here all uniform) give log(N-1), the largest
    value, so SND is read next to the prediction histogram."""
    uniform = np.full((50, 5), 0.2)
    assert diagnostics.soft_neighborhood_density(probs=uniform) == pytest.approx(math.log(49), rel=1e-12)


def test_mean_prediction_entropy_and_histogram_by_hand():
    probs = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    expected = np.mean([0.0, math.log(2), -(0.2 * math.log(0.2) + 0.3 * math.log(0.3) + 0.5 * math.log(0.5)),
                        math.log(3)])
    assert diagnostics.mean_prediction_entropy(probs) == pytest.approx(expected, rel=1e-12)
    # argmax ties go to the first class (numpy's argmax): rows -> 0, 0, 2, 0
    np.testing.assert_allclose(diagnostics.prediction_histogram(probs), [0.75, 0.0, 0.25])
    confident = np.eye(3)[[0, 1, 2, 1]]
    assert diagnostics.mean_prediction_entropy(confident) == 0.0
    assert diagnostics.mean_prediction_entropy(np.full((4, 3), 1 / 3)) == pytest.approx(math.log(3))


def test_diagnostics_refuse_too_few_examples():
    with pytest.raises(ValueError, match="at least 2"):
        diagnostics.soft_neighborhood_density(probs=np.ones((1, 3)) / 3)
    with pytest.raises(ValueError):
        diagnostics.prediction_histogram(np.zeros((0, 3)))
