"""Per-corpus BatchNorm (config.model.batch_norm = "per_corpus"): each corpus is normalised by its
own statistics in training, and inference picks the corpus' running statistics."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emodna_jax.model import models
from tests import helpers

MOMENTUM = 0.9


def _halves(seed=0):
    rng = np.random.default_rng(seed)
    source = rng.normal(2.0, 3.0, (5, 7, 4)).astype(np.float32)
    target = rng.normal(-1.0, 0.5, (3, 7, 4)).astype(np.float32)
    return source, target


def test_training_normalises_each_corpus_by_its_own_statistics_and_updates_its_own_row():
    source, target = _halves()
    x = jnp.concatenate([source, target])
    bn = models.CorpusBatchNorm(use_running_average=False, momentum=MOMENTUM, axis_name=None, num_source=5)
    variables = bn.init(jax.random.PRNGKey(0), x)
    # Non-trivial scale and bias, shared by both corpora.
    variables = {"params": {"scale": jnp.arange(1.0, 5.0), "bias": jnp.arange(4.0) - 1.0},
                 "batch_stats": variables["batch_stats"]}
    y, mutated = bn.apply(variables, x, mutable=["batch_stats"])
    plain = nn.BatchNorm(use_running_average=False, momentum=MOMENTUM)
    for part, rows in ((source, slice(0, 5)), (target, slice(5, 8))):
        expect, _ = plain.apply(variables | {"batch_stats": {"mean": jnp.zeros(4), "var": jnp.ones(4)}},
                                jnp.asarray(part), mutable=["batch_stats"])
        np.testing.assert_allclose(y[rows], expect, rtol=1e-5, atol=1e-5)
    stats = mutated["batch_stats"]
    for row, part in enumerate((source, target)):
        flat = part.reshape(-1, 4)
        np.testing.assert_allclose(stats["mean"][row], (1 - MOMENTUM) * flat.mean(0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(stats["var"][row], MOMENTUM + (1 - MOMENTUM) * flat.var(0), rtol=1e-5)


def test_inference_uses_the_running_statistics_of_the_chosen_stream():
    x = jnp.asarray(_halves()[0])
    stats = {"mean": jnp.stack([jnp.full(4, 1.0), jnp.full(4, -2.0)]),
             "var": jnp.stack([jnp.full(4, 4.0), jnp.full(4, 0.25)])}
    params = {"scale": jnp.ones(4), "bias": jnp.zeros(4)}
    for stream, (mean, std) in ((models.SOURCE_STREAM, (1.0, 2.0)), (models.TARGET_STREAM, (-2.0, 0.5))):
        bn = models.CorpusBatchNorm(use_running_average=True, momentum=MOMENTUM, axis_name=None, stream=stream)
        y = bn.apply({"params": params, "batch_stats": stats}, x)
        np.testing.assert_allclose(y, (x - mean) / np.sqrt(std**2 + 1e-5), rtol=1e-5)


def test_training_forward_needs_the_split():
    x = jnp.ones((4, 3, 2))
    bn = models.CorpusBatchNorm(use_running_average=False, momentum=MOMENTUM, axis_name=None)
    with pytest.raises(ValueError, match="num_source"):
        bn.init(jax.random.PRNGKey(0), x)


@pytest.mark.parametrize("batch_norm,independent", [("per_corpus", True), ("shared", False)])
def test_source_outputs_ignore_the_target_rows_only_with_per_corpus_statistics(batch_norm, independent):
    """The whole model in a training forward: with per-corpus statistics the source half's outputs do
    not depend on what the target half holds; with shared statistics they do (the test can fail)."""
    config = helpers.tiny_config("emodna", **{"model.batch_norm": batch_norm})
    model = models.create_model(config, num_classes=3, num_corpora=2, axis_name=None)
    rng = np.random.default_rng(1)
    source = rng.normal(size=(4,) + helpers.TINY_SHAPE).astype(np.float32)
    target_a = rng.normal(size=(4,) + helpers.TINY_SHAPE).astype(np.float32)
    target_b = 3.0 * target_a + 5.0
    variables = model.init({"params": jax.random.PRNGKey(0)}, jnp.asarray(source), train=False)

    def source_z(target, key):
        out, _ = model.apply(variables, jnp.concatenate([source, target]), train=True, use_dropout=False,
                             num_source=4, mutable=["batch_stats"])
        return np.asarray(out[key][:4])

    same = np.allclose(source_z(target_a, "z_e"), source_z(target_b, "z_e"), rtol=1e-5, atol=1e-5)
    assert same == independent
    # The corpus encoder keeps joint statistics either way: it must see what tells the corpora apart.
    assert not np.allclose(source_z(target_a, "z_c"), source_z(target_b, "z_c"), rtol=1e-5, atol=1e-5)


def test_split_zero_is_plain_batch_norm_over_the_joint_batch():
    source, target = _halves(3)
    x = jnp.concatenate([source, target])
    bn = models.CorpusBatchNorm(use_running_average=False, momentum=MOMENTUM, axis_name=None, num_source=5)
    variables = bn.init(jax.random.PRNGKey(0), x)
    y, mutated = bn.apply(variables, x, 0.0, mutable=["batch_stats"])
    plain = nn.BatchNorm(use_running_average=False, momentum=MOMENTUM)
    expect, plain_stats = plain.apply({"params": variables["params"],
                                       "batch_stats": {"mean": jnp.zeros(4), "var": jnp.ones(4)}},
                                      x, mutable=["batch_stats"])
    np.testing.assert_allclose(y, expect, rtol=1e-4, atol=1e-4)
    for row in range(2):
        np.testing.assert_allclose(mutated["batch_stats"]["mean"][row], plain_stats["batch_stats"]["mean"],
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(mutated["batch_stats"]["var"][row], plain_stats["batch_stats"]["var"],
                                   rtol=1e-5)


def test_target_only_batch_gets_what_the_target_half_of_a_joint_batch_gets():
    """num_source=0 (the pseudo-label forward of per-corpus models): the same outputs and target row
    of running statistics as the target half of a joint batch; the source row does not move."""
    source, target = _halves(5)
    joint = models.CorpusBatchNorm(use_running_average=False, momentum=MOMENTUM, axis_name=None, num_source=5)
    alone = models.CorpusBatchNorm(use_running_average=False, momentum=MOMENTUM, axis_name=None, num_source=0)
    x = jnp.concatenate([source, target])
    variables = joint.init(jax.random.PRNGKey(0), x)
    variables = {"params": {"scale": jnp.arange(1.0, 5.0), "bias": jnp.arange(4.0) - 1.0},
                 "batch_stats": {"mean": jnp.full((2, 4), 0.5), "var": jnp.full((2, 4), 2.0)}}
    y_joint, s_joint = joint.apply(variables, x, mutable=["batch_stats"])
    y_alone, s_alone = alone.apply(variables, jnp.asarray(target), mutable=["batch_stats"])
    np.testing.assert_allclose(y_alone, y_joint[5:], rtol=1e-5, atol=1e-5)
    for name in ("mean", "var"):
        np.testing.assert_allclose(s_alone["batch_stats"][name][models.TARGET_STREAM],
                                   s_joint["batch_stats"][name][models.TARGET_STREAM], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(s_alone["batch_stats"][name][models.SOURCE_STREAM],
                                      variables["batch_stats"][name][models.SOURCE_STREAM])


@pytest.mark.parametrize("shared_blocks", [0, 1])
def test_pseudo_label_forward_on_the_target_half_matches_the_joint_batch(shared_blocks):
    """What train_step.emotion_probs relies on for per-corpus models: the emotion encoder on the
    target rows alone gives the target logits of the joint-batch forward."""
    config = helpers.tiny_config("emodna", **{"model.shared_blocks": shared_blocks})
    assert config.model.batch_norm == "per_corpus"
    model = models.create_model(config, num_classes=3, num_corpora=2, axis_name=None)
    x = jax.random.normal(jax.random.PRNGKey(6), (8,) + helpers.TINY_SHAPE).at[5:].mul(3.0)
    variables = model.init({"params": jax.random.PRNGKey(0)}, x, train=False)
    e_model, e_vars = models.emotion_encoder_view(model, variables)
    full, _ = model.apply(variables, x, train=True, use_dropout=False, num_source=5, mutable=["batch_stats"])
    alone, _ = e_model.apply(e_vars, x[5:], train=True, use_dropout=False, num_source=0, mutable=["batch_stats"])
    np.testing.assert_allclose(alone["logits_e"], full["logits_e"][5:], rtol=1e-5, atol=1e-5)


def test_one_row_per_source_corpus_with_more_than_two_corpora():
    """num_corpora = 3 (two sources with one corpus id each, config.multi_source="per_corpus"): the
    interleaved source rows of each corpus are normalised by that corpus' statistics alone and update
    its own row; the target gets row 2, the last; at inference `source_corpus` picks each row's
    statistics, and TARGET_STREAM names the target's row. A source corpus absent from the batch keeps
    its running row."""
    rng = np.random.default_rng(1)
    parts = [rng.normal(m, s, (n, 7, 4)).astype(np.float32) for m, s, n in ((2.0, 3.0, 3), (-4.0, 0.5, 3),
                                                                          (1.0, 1.5, 2))]
    order = np.array([0, 3, 1, 4, 2, 5])  # source rows interleaved: corpus 0, 1, 0, 1, 0, 1
    source = np.concatenate(parts[:2])[order]
    corpus = jnp.asarray(np.array([0, 0, 0, 1, 1, 1])[order])
    x = jnp.concatenate([source, parts[2]])
    bn = models.CorpusBatchNorm(use_running_average=False, momentum=MOMENTUM, axis_name=None, num_source=6,
                                num_corpora=3, source_corpus=corpus)
    variables = bn.init(jax.random.PRNGKey(0), x)
    assert variables["batch_stats"]["mean"].shape == (3, 4)
    params = {"scale": jnp.arange(1.0, 5.0), "bias": jnp.arange(4.0) - 1.0}
    y, mutated = bn.apply({"params": params, "batch_stats": variables["batch_stats"]}, x, mutable=["batch_stats"])
    plain = nn.BatchNorm(use_running_average=False, momentum=MOMENTUM)
    fresh = {"params": params, "batch_stats": {"mean": jnp.zeros(4), "var": jnp.ones(4)}}
    for k, rows in ((0, np.flatnonzero(np.asarray(corpus) == 0)), (1, np.flatnonzero(np.asarray(corpus) == 1)),
                    (2, np.arange(6, 8))):
        expect, _ = plain.apply(fresh, jnp.asarray(parts[k]), mutable=["batch_stats"])
        np.testing.assert_allclose(np.asarray(y)[rows], expect, rtol=1e-4, atol=1e-4)  # rows in corpus order
        flat = parts[k].reshape(-1, 4)
        np.testing.assert_allclose(mutated["batch_stats"]["mean"][k], (1 - MOMENTUM) * flat.mean(0), rtol=1e-5,
                                   atol=1e-6)
        np.testing.assert_allclose(mutated["batch_stats"]["var"][k], MOMENTUM + (1 - MOMENTUM) * flat.var(0),
                                   rtol=1e-5)
    # Only corpus 0 in the batch: row 1 keeps its value.
    only = models.CorpusBatchNorm(use_running_average=False, momentum=MOMENTUM, axis_name=None, num_source=3,
                                  num_corpora=3, source_corpus=jnp.zeros(3, jnp.int32))
    _, kept = only.apply({"params": params, "batch_stats": mutated["batch_stats"]},
                         jnp.concatenate([parts[0], parts[2]]), mutable=["batch_stats"])
    np.testing.assert_array_equal(kept["batch_stats"]["mean"][1], mutated["batch_stats"]["mean"][1])
    # Inference: each row by its own corpus' running statistics; the target stream is row 2.
    stats = {"mean": jnp.asarray([[1.0] * 4, [-2.0] * 4, [5.0] * 4]), "var": jnp.asarray([[4.0] * 4, [0.25] * 4,
                                                                                      [1.0] * 4])}
    z = jnp.asarray(parts[2][:2])
    infer = models.CorpusBatchNorm(use_running_average=True, momentum=MOMENTUM, axis_name=None, num_corpora=3,
                                   source_corpus=jnp.asarray([1, 0]))
    out = infer.apply({"params": {"scale": jnp.ones(4), "bias": jnp.zeros(4)}, "batch_stats": stats}, z)
    np.testing.assert_allclose(out[0], (z[0] + 2.0) / np.sqrt(0.25 + 1e-5), rtol=1e-5)
    np.testing.assert_allclose(out[1], (z[1] - 1.0) / np.sqrt(4.0 + 1e-5), rtol=1e-5)
    target = models.CorpusBatchNorm(use_running_average=True, momentum=MOMENTUM, axis_name=None, num_corpora=3)
    out = target.apply({"params": {"scale": jnp.ones(4), "bias": jnp.zeros(4)}, "batch_stats": stats}, z)
    np.testing.assert_allclose(out, (z - 5.0) / np.sqrt(1.0 + 1e-5), rtol=1e-5)
