"""Adaptive thresholds: FreeMatch with a floor, FlexMatch, fixed and class-balanced quantile."""

import jax.numpy as jnp
import numpy as np

from emodna_jax.method import thresholds


def probs_batch():
    return jnp.array([[0.9, 0.05, 0.05], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8]])


def test_freematch_update_and_floor_match_numpy():
    probs = probs_batch()
    state = thresholds.init_thresholds(3)
    sums = thresholds.batch_statistics(probs=probs, mask=jnp.ones(4), fixed_threshold=0.95)
    state = thresholds.update_thresholds(state, sums=sums, ema=0.5)
    p = np.asarray(probs)
    g = 0.5 / 3 + 0.5 * p.max(1).mean()
    pk = 0.5 / 3 + 0.5 * p.mean(0)
    np.testing.assert_allclose(state.global_confidence, g, rtol=1e-6)
    np.testing.assert_allclose(state.class_confidence, pk, rtol=1e-6)
    tau = thresholds.class_thresholds(state, kind="freematch", tau_min=0.0, fixed_threshold=0.95)
    np.testing.assert_allclose(tau, g * pk / pk.max(), rtol=1e-6)
    floored = thresholds.class_thresholds(state, kind="freematch", tau_min=0.7, fixed_threshold=0.95)
    np.testing.assert_allclose(floored, np.maximum(0.7, g * pk / pk.max()), rtol=1e-6)


def test_masked_examples_do_not_move_the_statistics():
    probs = probs_batch()
    mask = jnp.array([1.0, 1.0, 0.0, 0.0])
    a = thresholds.batch_statistics(probs=probs, mask=mask, fixed_threshold=0.5)
    b = thresholds.batch_statistics(probs=probs[:2], mask=jnp.ones(2), fixed_threshold=0.5)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-6)


def test_confident_mask_uses_threshold_of_predicted_class():
    tau = jnp.array([0.85, 0.5, 0.9])
    pseudo, confident = thresholds.confident_mask(probs=probs_batch(), thresholds=tau, mask=jnp.ones(4))
    np.testing.assert_array_equal(pseudo, [0, 0, 1, 2])
    np.testing.assert_array_equal(confident, [1, 0, 1, 0])


def test_quantile_keeps_top_fraction_of_every_predicted_class():
    probs = jnp.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4], [0.45, 0.55]])
    tau = thresholds.quantile_thresholds(probs=probs, mask=jnp.ones(5), fraction=0.5)
    np.testing.assert_allclose(tau, [0.8, 0.55], rtol=1e-6)  # class 0: top ceil(2)=2 of 4; class 1: 1 of 1
    _, confident = thresholds.confident_mask(probs=probs, thresholds=tau, mask=jnp.ones(5))
    np.testing.assert_array_equal(confident, [1, 1, 0, 0, 1])
    none_predicted = thresholds.quantile_thresholds(probs=probs[:4], mask=jnp.ones(4), fraction=0.5)
    assert np.isinf(none_predicted[1])


def test_flexmatch_lowers_thresholds_of_hard_classes():
    state = thresholds.init_thresholds(2)
    sums = thresholds.batch_statistics(
        probs=jnp.array([[0.99, 0.01], [0.97, 0.03], [0.4, 0.6]]), mask=jnp.ones(3), fixed_threshold=0.95)
    state = thresholds.update_thresholds(state, sums=sums, ema=0.0)
    tau = thresholds.class_thresholds(state, kind="flexmatch", tau_min=0.0, fixed_threshold=0.95)
    np.testing.assert_allclose(tau[0], 0.95, rtol=1e-6)  # best-learnt class keeps the base threshold
    assert tau[1] < 0.1  # nothing confident yet for class 1


def test_schedule_tied_ema():
    assert abs(thresholds.schedule_tied_ema(400) - (1 - 1 / 40)) < 1e-12


def test_distribution_alignment_matches_numpy_and_is_identity_at_the_prior():
    probs = probs_batch()
    running = jnp.array([0.5, 0.3, 0.2])
    aligned = thresholds.align_distribution(probs=probs, running_mean=running)
    p = np.asarray(probs) * (1 / 3) / np.asarray(running)
    np.testing.assert_allclose(aligned, p / p.sum(1, keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(aligned.sum(-1), 1.0, rtol=1e-6)
    # The over-predicted class 0 loses mass on every row; the neglected class 2 gains it.
    assert np.all(np.asarray(aligned)[:, 0] < np.asarray(probs)[:, 0])
    assert np.all(np.asarray(aligned)[:, 2] > np.asarray(probs)[:, 2])
    same = thresholds.align_distribution(probs=probs, running_mean=jnp.full(3, 1 / 3))
    np.testing.assert_allclose(same, probs, rtol=1e-6)
    prior = jnp.array([0.2, 0.3, 0.5])
    np.testing.assert_allclose(thresholds.align_distribution(probs=probs, running_mean=prior, prior=prior),
                               probs, rtol=1e-6)


def test_distribution_alignment_turns_a_neglected_class_into_confident_pseudo_labels():
    """Row 1 is predicted as the over-predicted class 0 below the threshold; aligned, it flips to the
    neglected class 1 above it."""
    probs = jnp.array([[0.55, 0.4, 0.05]])
    running = jnp.array([0.7, 0.1, 0.2])
    tau = jnp.full(3, 0.7)
    pseudo, confident = thresholds.confident_mask(probs=probs, thresholds=tau, mask=jnp.ones(1))
    assert (int(pseudo[0]), float(confident[0])) == (0, 0.0)
    aligned = thresholds.align_distribution(probs=probs, running_mean=running)
    pseudo, confident = thresholds.confident_mask(probs=aligned, thresholds=tau, mask=jnp.ones(1))
    assert (int(pseudo[0]), float(confident[0])) == (1, 1.0)
