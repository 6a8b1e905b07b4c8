"""Prototype banks: EMA of normalised features, absent rows kept, zero-safe."""

import jax
import jax.numpy as jnp
import numpy as np

from emodna_jax.method import prototypes


def test_first_update_sets_mean_direction_and_absent_rows_stay():
    feats = jnp.array([[3.0, 0.0], [0.0, 2.0], [0.0, -5.0]])
    sums, counts = prototypes.class_sums(
        features=feats, labels=jnp.array([0, 0, 2]), mask=jnp.ones(3), num_rows=3)
    np.testing.assert_allclose(counts, [2, 0, 1])
    bank = prototypes.update_bank(jnp.zeros((3, 2)), sums=sums, counts=counts, momentum=0.9)
    np.testing.assert_allclose(bank[0], [2 ** -0.5, 2 ** -0.5], rtol=1e-6)  # mean of (1,0),(0,1)
    np.testing.assert_allclose(bank[1], [0.0, 0.0])  # absent: keeps its (zero) row
    np.testing.assert_allclose(bank[2], [0.0, -1.0], rtol=1e-6)


def test_ema_update_matches_numpy():
    bank = np.array([[1.0, 0.0]])
    feats = np.array([[0.0, 4.0], [0.0, 1.0]])
    sums, counts = prototypes.class_sums(
        features=jnp.asarray(feats), labels=jnp.array([0, 0]), mask=jnp.array([1.0, 0.0]), num_rows=1)
    new = prototypes.update_bank(jnp.asarray(bank), sums=sums, counts=counts, momentum=0.75)
    expect = 0.75 * bank[0] + 0.25 * np.array([0.0, 1.0])  # only the unmasked example counts
    np.testing.assert_allclose(new[0], expect / np.linalg.norm(expect), rtol=1e-6)


def test_zero_features_give_finite_values_and_gradients():
    def f(z):
        sums, counts = prototypes.class_sums(features=z, labels=jnp.array([0, 1]), mask=jnp.ones(2),
                                             num_rows=2)
        return prototypes.update_bank(jnp.zeros((2, 3)), sums=sums, counts=counts, momentum=0.5).sum()

    z = jnp.zeros((2, 3))
    assert np.isfinite(f(z))
    assert np.all(np.isfinite(jax.grad(f)(z)))


def test_max_cosine_ignores_empty_rows():
    bank = jnp.array([[1.0, 0.0], [0.6, 0.8], [0.0, 0.0]])
    np.testing.assert_allclose(prototypes.max_cosine(bank), 0.6, rtol=1e-6)
    assert float(prototypes.max_cosine(jnp.zeros((3, 2)))) == -1.0
