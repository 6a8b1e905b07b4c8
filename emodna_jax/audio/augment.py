"""A strong view of standardised features for weak/strong pseudo-label agreement (FixMatch-style).

Pure functions of (keys, features): each example has its own key, so the view of an example does not
depend on how the global batch is split across devices. On [T, F] features (frames x coefficients,
already standardised per corpus), one view is, in order:

  time shift   roll by up to `shift` * T frames, either way;
  time mask    one span of up to `time_mask` * T frames set to 0 (the corpus mean);
  freq mask    one band of up to `freq_mask` * F coefficients set to 0;
  noise        additive Gaussian noise of standard deviation `noise`.

These are SpecAugment's masks (Park et al. 2019) applied to MFCCs, the augmentations of the weak/strong
view agreement asked for in the method issue; the sizes are this project's a-priori choice.
"""

import jax
import jax.numpy as jnp


def example_keys(key: jax.Array, *, first_index: jax.Array, count: int) -> jax.Array:
    """[count] keys for the examples first_index .. first_index + count - 1 of the global batch."""
    indices = first_index + jnp.arange(count)
    return jax.vmap(lambda i: jax.random.fold_in(key, i))(indices)


def _span_mask(key: jax.Array, length: int, max_fraction: float) -> jax.Array:
    """[length] float mask, 0 on one random span of 0 .. max_fraction * length positions, else 1."""
    max_width = int(max_fraction * length)
    if max_width < 1:
        return jnp.ones((length,), jnp.float32)
    k_width, k_start = jax.random.split(key)
    width = jax.random.randint(k_width, (), 0, max_width + 1)
    start = jax.random.randint(k_start, (), 0, length - width + 1)
    positions = jnp.arange(length)
    return jnp.where((positions >= start) & (positions < start + width), 0.0, 1.0)


def strong_view_one(key: jax.Array, x: jax.Array, *, shift: float, time_mask: float, freq_mask: float,
                    noise: float) -> jax.Array:
    """The strong view of one example x [T, F] -> [T, F]."""
    frames, coeffs = x.shape
    k_shift, k_time, k_freq, k_noise = jax.random.split(key, 4)
    max_shift = int(shift * frames)
    if max_shift > 0:
        x = jnp.roll(x, jax.random.randint(k_shift, (), -max_shift, max_shift + 1), axis=0)
    x = x * _span_mask(k_time, frames, time_mask)[:, None] * _span_mask(k_freq, coeffs, freq_mask)[None, :]
    return x + noise * jax.random.normal(k_noise, x.shape, x.dtype)


def strong_view(keys: jax.Array, x: jax.Array, *, shift: float = 0.1, time_mask: float = 0.2,
                freq_mask: float = 0.15, noise: float = 0.1) -> jax.Array:
    """Strong views of a batch: keys [B] (see `example_keys`), x [B, T, F] -> [B, T, F]."""
    return jax.vmap(lambda k, v: strong_view_one(k, v, shift=shift, time_mask=time_mask,
                                                 freq_mask=freq_mask, noise=noise))(keys, x)
