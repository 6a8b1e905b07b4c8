"""Label-free validators (emodna_jax/eval/validators.py) against hand-computed values on tiny cases."""

import math

import numpy as np
import pytest

from emodna_jax.eval import validators


def test_source_uar_is_macro_recall():
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7]])
    # class 0: 1 of 2 right (50 %), class 1: 2 of 2 (100 %)
    assert validators.source_uar(probs=probs, labels=np.array([0, 0, 1, 1])) == pytest.approx(75.0)


def test_source_neg_ce_by_hand():
    probs = np.array([[0.8, 0.2], [0.5, 0.5]])
    expected = (math.log(0.8) + math.log(0.5)) / 2
    assert validators.source_neg_ce(probs=probs, labels=np.array([0, 1])) == pytest.approx(expected)


def test_iwcv_by_hand():
    value = validators.iwcv(losses=np.array([1.0, 2.0, 3.0]), weights=np.array([0.5, 1.0, 1.5]))
    assert value == pytest.approx(-(0.5 + 2.0 + 4.5) / 3)


def test_dev_by_hand():
    # L = w * l = [1, 2, 6, 16], mean 6.25; mean w = 2; Var(w) = 6/3 = 2; Cov(L, w) = 29/3;
    # eta = -29/6; R = 6.25 + eta * 2 - eta = 6.25 - 29/6.
    value = validators.dev(losses=np.array([1.0, 2.0, 3.0, 4.0]), weights=np.array([1.0, 1.0, 2.0, 4.0]))
    assert value == pytest.approx(-(6.25 - 29 / 6))
    # mean(w) = 1 exactly: the control variate adds nothing and DEV equals IWCV
    losses, weights = np.array([1.0, 5.0, 2.0]), np.array([0.5, 1.0, 1.5])
    assert validators.dev(losses=losses, weights=weights) == pytest.approx(
        validators.iwcv(losses=losses, weights=weights))


def test_dev_with_equal_distributions_is_plain_source_risk():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(40, 3))
    probs = rng.dirichlet(np.ones(4), size=10)
    labels = rng.integers(0, 4, size=10)
    # the same sample as source and target: the classifier's optimum is beta = 0, so every w = 1
    weights = validators.density_ratios(source_features=features, target_features=features,
                                        eval_features=rng.normal(size=(10, 3)))
    np.testing.assert_allclose(weights, 1.0, atol=1e-6)
    losses = validators.cross_entropy(probs=probs, labels=labels)
    assert validators.dev(losses=losses, weights=weights) == pytest.approx(
        validators.source_neg_ce(probs=probs, labels=labels), abs=1e-6)


def test_density_ratios_recover_a_known_gaussian_ratio():
    # p_s = N(0, 1), p_t = N(1, 1): log p_t/p_s = x - 1/2, which logistic regression can represent
    rng = np.random.default_rng(1)
    source, target = rng.normal(size=(4000, 1)), rng.normal(1.0, 1.0, size=(2000, 1))
    at = np.array([[-1.0], [0.0], [0.5], [1.5]])
    weights = validators.density_ratios(source_features=source, target_features=target, eval_features=at)
    np.testing.assert_allclose(np.log(weights), at[:, 0] - 0.5, atol=0.1)


def test_snd_by_hand():
    rep = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    # temperature 1: rows 0 and 1 see similarities (1, 0): entropy of softmax(1, 0); row 2 sees (0, 0)
    p = math.e / (math.e + 1)
    h = -(p * math.log(p) + (1 - p) * math.log(1 - p))
    assert validators.snd(representation=rep, temperature=1.0) == pytest.approx((2 * h + math.log(2)) / 3)
    # the paper's temperature: identical predictions reach the maximum log(N - 1)
    same = np.tile([[0.2, 0.8]], (4, 1))
    assert validators.snd(representation=same) == pytest.approx(math.log(3))


def test_information_maximization_by_hand():
    assert validators.information_maximization(probs=np.eye(2)) == pytest.approx(math.log(2))
    assert validators.information_maximization(probs=np.full((3, 2), 0.5)) == pytest.approx(0.0)
    probs = np.array([[0.9, 0.1], [0.3, 0.7]])
    h = lambda q: -sum(v * math.log(v) for v in q)  # noqa: E731
    assert validators.information_maximization(probs=probs) == pytest.approx(
        h([0.6, 0.4]) - (h([0.9, 0.1]) + h([0.3, 0.7])) / 2)


def test_score_all_prefers_the_better_model_and_needs_no_target_label():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, size=30)
    good = np.full((30, 3), 0.05)
    good[np.arange(30), labels] = 0.9
    bad = np.full((30, 3), 1 / 3)
    feats = rng.normal(size=(30, 4))
    kwargs = dict(target_features=feats, source_val_labels=labels, source_val_features=feats,
                  source_train_features=rng.normal(size=(50, 4)))
    s_good = validators.score_all(target_probs=good, source_val_probs=good, **kwargs)
    s_bad = validators.score_all(target_probs=bad, source_val_probs=bad, **kwargs)
    assert set(s_good) == set(validators.VALIDATORS)
    for name in ("source_uar", "source_neg_ce", "iwcv", "dev", "information_maximization"):
        assert s_good[name] > s_bad[name], name
    # without held-out source speakers the source-based validators are None, the others unchanged
    alone = validators.score_all(target_probs=good, target_features=feats)
    assert alone["dev"] is None and alone["information_maximization"] == s_good["information_maximization"]


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="labels"):
        validators.cross_entropy(probs=np.eye(2), labels=np.array([0, 2]))
    with pytest.raises(ValueError, match="alike"):
        validators.dev(losses=np.ones(3), weights=np.ones(2))
