"""1 device and 4 forced devices give the same losses and parameters, for both backends and every
method config (DESIGN §5)."""

import jax
import numpy as np
import pytest

from emodna_jax import methods, parallel, step_functions
from tests import helpers

NUM_CLASSES = 3
PER_DEVICE = 2
STEPS = 3  # step 0 is warm-up, steps 1-2 adapt (warmup_steps = 1 in the tiny config)


def run(config, backend_name: str, devices: int, batches):
    backend = parallel.create_backend(backend_name, num_devices=devices)
    fns = step_functions.make_step_functions(config, num_classes=NUM_CLASSES, backend=backend)
    state = fns.init_state(config, helpers.TINY_SHAPE)
    totals = []
    for step, batch in enumerate(batches):
        state, metrics = fns.train(state, helpers.reshard(batch, devices), adapt=fns.is_adapting(step))
        totals.append(float(backend.host_outputs(metrics, replicated=True)["loss/total"]))
    if backend.name == "pmap":
        # Each device saw different examples, yet every replica must hold the same state.
        for leaf in jax.tree.leaves(jax.device_get(state)):
            for replica in range(1, devices):
                np.testing.assert_array_equal(leaf[0], leaf[replica])
        state = backend.unreplicate(state)
    return backend.host_outputs(state, replicated=False), totals


def make_batches(seed=0):
    rng = np.random.default_rng(seed)
    return [helpers.two_domain_batch(rng, devices=4, per_device=PER_DEVICE, num_classes=NUM_CLASSES)
            for _ in range(STEPS)]


def assert_same(a, b):
    state_a, totals_a = a
    state_b, totals_b = b
    np.testing.assert_allclose(totals_a, totals_b, rtol=2e-4, atol=2e-5)
    flat_a, tree_a = jax.tree.flatten(state_a.params)
    flat_b, tree_b = jax.tree.flatten(state_b.params)
    assert tree_a == tree_b
    for x, y in zip(flat_a, flat_b):
        np.testing.assert_allclose(x, y, rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(state_a.prototypes.emotion, state_b.prototypes.emotion, atol=2e-5)


# The previous default's variants run the same code paths as the current ones (d differs).
@pytest.mark.parametrize("method", sorted(set(methods.METHODS) - set(methods.PREVIOUS_DEFAULT_VARIANTS)))
def test_one_device_equals_four(method):
    """Every method: 1 pmap device and 4 shard_map devices agree (the same body under both backends);
    for Emo-DNA also 4 pmap devices, whose replicas must stay identical."""
    config = helpers.tiny_config(method)
    batches = make_batches()
    if config.pseudo.labeller != "head":  # the host's centroid table, sharded with its rows
        rng = np.random.default_rng(1)
        for batch in batches:
            batch["target"]["labeller_probs"] = rng.dirichlet(
                np.ones(NUM_CLASSES), size=(4, PER_DEVICE)).astype(np.float32)
    one = run(config, "pmap", 1, batches)
    assert np.all(np.isfinite(one[1]))
    assert_same(one, run(config, "shard_map", 4, batches))
    if method == "emodna":
        assert_same(one, run(config, "pmap", 4, batches))


@pytest.mark.parametrize("variant", [
    # Options that combine are tested together (each compile costs seconds on 2 cores).
    {"loss.class_align": "lmmd", "pseudo.threshold": "quantile", "pseudo.teacher": "ema",
     "loss.diversity_weight": 0.5},
    {"pseudo.threshold": "flexmatch", "loss.corpus_align": "coral", "pseudo.distribution_alignment": True,
     "pseudo.agreement": True},
])
def test_options_one_device_equals_four(variant):
    config = helpers.tiny_config("emodna", **variant)
    batches = make_batches(2)
    assert_same(run(config, "pmap", 1, batches), run(config, "shard_map", 4, batches))
