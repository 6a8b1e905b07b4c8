"""Centroid labelling of the target (transductive.py): label-free, numpy."""

import numpy as np
import pytest

from emodna_jax.method import transductive


def clusters(wrong: int, seed: int = 0):
    """Three well-separated feature clusters of 50; the head gives the right class a 0.6 share,
    except for the first `wrong` examples of class 0, which it calls class 2."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(3, 8)) * 3
    labels = np.repeat(np.arange(3), 50)
    features = centers[labels] + rng.normal(size=(150, 8))
    probs = np.full((150, 3), 0.2)
    probs[np.arange(150), labels] = 0.6
    probs[:wrong] = [0.1, 0.1, 0.8]
    return probs / probs.sum(1, keepdims=True), features, labels


def test_zero_rounds_returns_the_head():
    probs, features, _ = clusters(wrong=15)
    assert transductive.centroid_probs(probs=probs, features=features, rounds=0) is probs


def test_centroids_correct_a_head_that_errs_on_part_of_a_cluster():
    probs, features, labels = clusters(wrong=15)
    assert np.mean(probs.argmax(1) == labels) == pytest.approx(0.9)
    refined = transductive.centroid_probs(probs=probs, features=features)
    assert refined.shape == probs.shape
    np.testing.assert_allclose(refined.sum(1), 1.0, rtol=1e-5)
    assert np.mean(refined.argmax(1) == labels) == 1.0


def test_labels_do_not_depend_on_feature_scale_or_example_order():
    probs, features, _ = clusters(wrong=15, seed=1)
    base = transductive.centroid_probs(probs=probs, features=features).argmax(1)
    scaled = transductive.centroid_probs(probs=probs, features=features * 7.5 + 0.0).argmax(1)
    order = np.random.default_rng(2).permutation(len(probs))
    shuffled = transductive.centroid_probs(probs=probs[order], features=features[order]).argmax(1)
    np.testing.assert_array_equal(base, scaled)
    np.testing.assert_array_equal(base[order], shuffled)


def test_a_class_that_loses_every_example_keeps_a_finite_centroid():
    probs, features, _ = clusters(wrong=0)
    probs = np.concatenate([probs, np.zeros((150, 1))], axis=1)  # a 4th class nobody is near
    refined = transductive.centroid_probs(probs=probs, features=features, rounds=3)
    assert np.all(np.isfinite(refined))


def test_mismatched_inputs_are_refused():
    probs, features, _ = clusters(wrong=0)
    with pytest.raises(ValueError, match="one per example"):
        transductive.centroid_probs(probs=probs, features=features[:10])
    with pytest.raises(ValueError, match="rounds=-1"):
        transductive.centroid_probs(probs=probs, features=features, rounds=-1)
