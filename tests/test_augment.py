"""The strong view of augment.py: masks where it says, per-example keys, device-split invariance."""

import jax
import jax.numpy as jnp
import numpy as np

from emodna_jax.audio import augment


def batch(n=6, frames=40, coeffs=10):
    return jax.random.normal(jax.random.PRNGKey(1), (n, frames, coeffs)) + 3.0  # no zero entries


def test_without_noise_and_shift_the_view_zeroes_one_time_span_and_one_coefficient_band():
    x = batch()
    keys = augment.example_keys(jax.random.PRNGKey(0), first_index=0, count=x.shape[0])
    view = np.asarray(augment.strong_view(keys, x, shift=0.0, time_mask=0.25, freq_mask=0.3, noise=0.0))
    widths = []
    for original, v in zip(np.asarray(x), view):
        zero = v == 0
        rows, cols = zero.all(axis=1), zero.all(axis=0)
        # Every zero lies in a fully zeroed frame or a fully zeroed coefficient; the rest is untouched.
        np.testing.assert_array_equal(zero, rows[:, None] | cols[None, :])
        np.testing.assert_array_equal(v[~zero], original[~zero])
        for mask, limit in ((rows, 10), (cols, 3)):  # int(0.25 * 40), int(0.3 * 10)
            idx = np.flatnonzero(mask)
            assert len(idx) <= limit
            if len(idx):
                assert idx[-1] - idx[0] + 1 == len(idx)  # one contiguous span
        widths.append(rows.sum())
    assert len(set(widths)) > 1  # the span width is drawn per example


def test_a_view_depends_on_its_example_key_only():
    """Split the batch as 3 devices would (first_index per device): the same views as one device."""
    x = batch()
    key = jax.random.PRNGKey(5)
    whole = augment.strong_view(augment.example_keys(key, first_index=0, count=6), x)
    parts = [augment.strong_view(augment.example_keys(key, first_index=2 * d, count=2), x[2 * d: 2 * d + 2])
             for d in range(3)]
    np.testing.assert_allclose(np.concatenate(parts), whole, rtol=1e-6)
    other = augment.strong_view(augment.example_keys(jax.random.PRNGKey(6), first_index=0, count=6), x)
    assert not np.allclose(other, whole)


def test_shift_rolls_the_frames_and_noise_has_the_asked_scale():
    x = batch(n=1, frames=50, coeffs=4)
    keys = augment.example_keys(jax.random.PRNGKey(3), first_index=0, count=1)
    view = np.asarray(augment.strong_view(keys, x, shift=0.2, time_mask=0.0, freq_mask=0.0, noise=0.0))[0]
    rolls = [r for r in range(-10, 11) if np.allclose(np.roll(np.asarray(x)[0], r, axis=0), view)]
    assert len(rolls) == 1
    big = jnp.zeros((64, 100, 8))
    keys = augment.example_keys(jax.random.PRNGKey(4), first_index=0, count=64)
    noisy = augment.strong_view(keys, big, shift=0.0, time_mask=0.0, freq_mask=0.0, noise=0.1)
    assert abs(float(jnp.std(noisy)) - 0.1) < 0.005
