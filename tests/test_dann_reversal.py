"""DANN ramps only its gradient reversal: the discriminator's loss weight stays constant, so the
encoder sees -s times the discriminator's gradient (not -s^2) and the discriminator learns at full
weight from the first step."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from emodna_jax.model import layers
from emodna_jax.train import parallel, schedules, step_functions, train_state, train_step
from tests import helpers


def _gradients_at(step, fns, state, batch):
    """The gradient of the total loss at `state.step = step` (plain SGD with rate 1: params - new)."""
    state = state.replace(step=np.asarray(step, state.step.dtype))
    new, _ = fns.train(fns.backend.replicate(state), batch, adapt=False)
    new = jax.device_get(fns.backend.unreplicate(new))
    return jax.tree.map(lambda a, b: np.asarray(a, np.float64) - np.asarray(b, np.float64),
                        state.params, new.params)


def _split(grads):
    """(discriminator leaves, encoder leaves) as flat vectors."""
    flat = jax.tree_util.tree_flatten_with_path(grads)[0]
    name = lambda path: "/".join(str(getattr(k, "key", k)) for k in path)  # noqa: E731
    disc = np.concatenate([v.ravel() for p, v in flat if "domain_" in name(p)])
    enc = np.concatenate([v.ravel() for p, v in flat if "encoder" in name(p)])
    return disc, enc


def test_dann_encoder_gradient_scales_by_s_and_discriminator_weight_is_constant():
    config = helpers.tiny_config("dann", num_devices=1)
    assert config.loss.corpus_align == "dann"
    backend = parallel.create_backend(config.backend, num_devices=1)
    fns = step_functions.make_step_functions(config, num_classes=3, backend=backend)
    fns.tx = optax.sgd(1.0)
    state = train_state.create_train_state(config, fns.model, fns.tx, feature_shape=helpers.TINY_SHAPE)
    state = jax.device_get(state)
    batch = helpers.two_domain_batch(np.random.default_rng(0), devices=1, per_device=8)
    steps = (0, 2, 4)
    ramps = [float(schedules.alignment_weight(np.asarray(k), num_steps=config.num_steps)) for k in steps]
    assert ramps[0] == 0.0 and 0.3 < ramps[1] < ramps[2] < 0.9
    (d0, e0), (d1, e1), (d2, e2) = [_split(_gradients_at(k, fns, state, batch)) for k in steps]
    # The discriminator's gradient does not depend on the ramp (its loss weight is constant) ...
    assert np.abs(d0).max() > 1e-6
    np.testing.assert_allclose(d1, d0, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(d2, d0, rtol=1e-4, atol=1e-7)
    # ... and the encoder's gradient is cls + s * (reversed DANN part): linear in s, not quadratic.
    part1, part2 = e1 - e0, e2 - e0
    assert np.linalg.norm(part1) > 1e-6
    ratio = np.dot(part2, part1) / np.dot(part1, part1)
    np.testing.assert_allclose(ratio, ramps[2] / ramps[1], rtol=1e-3)  # s^2 would give about 2.7
    np.testing.assert_allclose(part2, part1 * ramps[2] / ramps[1], rtol=1e-3, atol=1e-7)


def test_corpus_alignment_weight_ramps_mmd_but_not_dann():
    config = helpers.tiny_config("dann", num_devices=1)
    settings = step_functions.make_step_functions(
        config, num_classes=3, backend=parallel.create_backend(config.backend, num_devices=1)).settings
    assert float(train_step.corpus_alignment_weight(0.25, settings)) == config.loss.corpus_align_weight
    mmd = helpers.tiny_config("mmd", num_devices=1)
    settings = step_functions.make_step_functions(
        mmd, num_classes=3, backend=parallel.create_backend(mmd.backend, num_devices=1)).settings
    assert float(train_step.corpus_alignment_weight(0.25, settings)) == 0.25 * mmd.loss.corpus_align_weight


def test_gradient_reversal_is_identity_forward_and_reversed_scaled_backward():
    x = jnp.array([1.0, -2.0, 3.0])
    np.testing.assert_array_equal(layers.gradient_reversal(x, 0.3), x)
    grad = jax.grad(lambda v: jnp.sum(layers.gradient_reversal(v, 0.3) * jnp.array([1.0, 2.0, 3.0])))(x)
    np.testing.assert_allclose(grad, [-0.3, -0.6, -0.9], rtol=1e-6)
    # A traced coefficient works too (the step passes the ramp's value).
    grad = jax.jit(jax.grad(lambda v, c: jnp.sum(layers.gradient_reversal(v, c)), argnums=0))(x, 2.0)
    np.testing.assert_allclose(grad, [-2.0, -2.0, -2.0])
