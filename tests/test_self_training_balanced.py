"""`self_training_balanced` (class-balanced self-training) trains, and its pseudo-labels are the most
confident fraction of each predicted class: the confident share follows the quantile schedule."""

import numpy as np

from emodna_jax.train import parallel, step_functions
from tests import helpers


def test_balanced_self_training_admits_the_scheduled_fraction_of_the_target():
    steps, warmup = 12, 2
    config = helpers.tiny_config("self_training_balanced", num_steps=steps, **{
        "pseudo.warmup_steps": warmup, "pseudo.quantile_start": 0.2, "pseudo.quantile_end": 0.6})
    backend = parallel.create_backend("pmap", num_devices=1)
    fns = step_functions.make_step_functions(config, num_classes=3, backend=backend)
    state = fns.init_state(config, helpers.TINY_SHAPE)
    rng = np.random.default_rng(0)
    history = []
    for step in range(steps):
        batch = helpers.two_domain_batch(rng, devices=1, per_device=40, num_classes=3, shift=0.5)
        state, metrics = fns.train(state, batch, adapt=fns.is_adapting(step))
        history.append(backend.host_outputs(metrics, replicated=True))
    assert all(np.isfinite(float(m["loss/total"])) for m in history)
    adapting = history[warmup:]
    assert all(np.isfinite(float(m["loss/class_align"])) for m in adapting)
    share = np.array([float(m["pseudo/confident_fraction"]) for m in adapting])
    # fraction = 0.2 -> 0.6 over adaptation; ceil() per predicted class keeps a little more, ties too.
    fraction = 0.2 + 0.4 * np.clip(np.arange(len(adapting)) / (steps - warmup), 0, 1)
    assert np.all(share >= fraction - 1e-6), (share, fraction)
    assert np.all(share <= fraction + 3 / 40 + 0.05), (share, fraction)
    assert share[-1] > share[0] + 0.2
