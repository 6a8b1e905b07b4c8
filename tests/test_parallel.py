"""A seed means one run on any device count: 1 device and 4 forced devices give the same losses and
parameters, for both backends, WITH dropout on (each example's masks come from its position in the
global batch). One case per distinct code path of the step, chosen by config switches, not per method
name (docs/method.md, parallelism). The adaptation step runs every line of the warm-up step and more
(the warm-up is its branch without pseudo-labels), so only the default case also compiles a warm-up
step; the others adapt from step 0: one compiled step per backend instead of two."""

import functools

import jax
import numpy as np
import pytest

from configs import default
from emodna_jax.train import parallel, step_functions
from tests import helpers

NUM_CLASSES = 3
PER_DEVICE = 2
STEPS = 3  # the default case: step 0 is warm-up, steps 1-2 adapt (warmup_steps = 1 in the tiny config)
DROPOUT = default.get_config().model.dropout_rate  # the default's dropout, as it runs


def run(config, backend_name: str, devices: int, batches, num_corpora: int = 2):
    backend = parallel.create_backend(backend_name, num_devices=devices)
    fns = step_functions.make_step_functions(config, num_classes=NUM_CLASSES, num_corpora=num_corpora,
                                             backend=backend)
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


def make_batches(seed=0, labeller_probs=False):
    rng = np.random.default_rng(seed)
    batches = [helpers.two_domain_batch(rng, devices=4, per_device=PER_DEVICE, num_classes=NUM_CLASSES)
               for _ in range(STEPS)]
    if labeller_probs:  # the host's centroid table, sharded with its rows
        for batch in batches:
            batch["target"]["labeller_probs"] = rng.dirichlet(
                np.ones(NUM_CLASSES), size=(4, PER_DEVICE)).astype(np.float32)
    return batches


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


# (method, overrides): every distinct path of the step, switches that combine tested together (each
# case compiles one step per backend, the default two: about 5-30 s on 2 idle cores).
CASES = {
    # The default: TIM-Net, per-corpus BN, FreeMatch, prototype alignment, MMD (also on 4 pmap devices).
    "emodna": ("emodna", {}),
    # Gradient reversal head, shared BN, shared trunk, no corpus encoder.
    "dann_shared_bn_trunk": ("dann", {"model.batch_norm": "shared", "model.shared_blocks": 1}),
    "centroid_lmmd_quantile_ema_diversity": ("emodna", {
        "pseudo.labeller": "centroid", "loss.class_align": "lmmd", "pseudo.threshold": "quantile",
        "loss.diversity_weight": 0.5}),
    "flexmatch_coral_agreement_consistency_ema": ("emodna", {
        "pseudo.threshold": "flexmatch", "loss.corpus_align": "coral", "pseudo.distribution_alignment": True,
        "pseudo.agreement": True, "loss.consistency_weight": 0.5, "pseudo.teacher": "ema"}),
    "mlp": ("emodna", {"model.backbone": "mlp", "model.hidden_dim": 8}),
    "mlp_shared_bn_consistency": ("emodna", {"model.backbone": "mlp", "model.hidden_dim": 8,
                                             "model.batch_norm": "shared", "loss.consistency_weight": 0.5}),
    "linear_source_only": ("source_only", {"model.backbone": "linear"}),
}


def case_config(case):
    method, overrides = CASES[case]
    adapt_only = {} if case == "emodna" else {"pseudo.warmup_steps": 0}
    return helpers.tiny_config(method, **{"model.dropout_rate": DROPOUT, **adapt_only, **overrides})


@functools.cache
def run_case(case, backend_name, devices):
    """run() of a case, once per module (test_dropout_acts_in_the_step reuses the default's)."""
    config = case_config(case)
    return run(config, backend_name, devices, make_batches(labeller_probs=config.pseudo.labeller != "head"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_one_device_equals_four_with_dropout_on(case):
    """1 pmap device and 4 shard_map devices agree (the same body under both backends); for the
    default also 4 pmap devices, whose replicas must stay identical."""
    config = case_config(case)
    assert config.model.dropout_rate > 0
    assert config.pseudo.warmup_steps == (1 if case == "emodna" else 0)
    one = run_case(case, "pmap", 1)
    assert np.all(np.isfinite(one[1]))
    assert_same(one, run_case(case, "shard_map", 4))
    if case == "emodna":
        assert_same(one, run_case(case, "pmap", 4))


def test_dropout_acts_in_the_step():
    """The invariance above is not dropout doing nothing: the first step's loss with dropout off
    differs from the default case's (dropout on)."""
    on = run_case("emodna", "pmap", 1)
    off = run(helpers.tiny_config("emodna", **{"model.dropout_rate": 0.0}), "pmap", 1, make_batches()[:1])
    assert abs(on[1][0] - off[1][0]) > 1e-4


@pytest.mark.parametrize("overrides", [{"loss.corpus_align": "dann"}, {"loss.corpus_align_per_source": True}],
                         ids=["dann", "mmd_per_source"])
def test_multi_source_step_one_device_equals_four(overrides):
    """Two sources with one corpus id each and the target (config.multi_source="per_corpus", D = 3):
    the source batch alternates corpora 0 and 1 (source_pool's balanced stream), the target is 2. The
    corpus classifier, the DANN discriminator, the corpus bank and the per-corpus BatchNorm statistics
    have 3 rows, and 1 pmap device equals 4 shard_map devices, the corpus prototypes included."""
    # Adapting from step 0: one compiled step per backend (the warm-up is a branch of it).
    config = helpers.tiny_config("emodna", **{"model.dropout_rate": DROPOUT, "pseudo.warmup_steps": 0,
                                              **overrides})
    assert config.model.batch_norm == "per_corpus"
    batches = make_batches()
    for batch in batches:
        positions = np.arange(4 * PER_DEVICE).reshape(4, PER_DEVICE)
        batch["source"]["corpus"] = (positions % 2).astype(np.int32)
        batch["target"]["corpus"] = np.full((4, PER_DEVICE), 2, np.int32)
    one = run(config, "pmap", 1, batches, num_corpora=3)
    assert np.all(np.isfinite(one[1]))
    params = one[0].params
    assert params["corpus_classifier"]["kernel"].shape[-1] == 3
    if "domain_classifier" in params:
        assert params["domain_classifier"]["kernel"].shape[-1] == 3
    assert {leaf.shape[-2] for leaf in jax.tree.leaves(one[0].batch_stats)} == {3}  # a row per corpus
    corpus_bank = np.asarray(one[0].prototypes.corpus)
    assert corpus_bank.shape[0] == 3 and np.all(np.linalg.norm(corpus_bank, axis=-1) > 0.5)  # each row set
    four = run(config, "shard_map", 4, batches, num_corpora=3)
    assert_same(one, four)
    np.testing.assert_allclose(corpus_bank, four[0].prototypes.corpus, atol=2e-5)
