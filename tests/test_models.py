"""The TIM-Net-style encoder: causal convolution, shapes, encoders present per method."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emodna_jax.model import models
from tests import helpers


def test_causal_conv_matches_numpy_and_never_looks_ahead():
    conv = models.CausalConv(features=2, kernel_size=2, dilation=3)
    x = jax.random.normal(jax.random.PRNGKey(0), (1, 10, 3))
    params = conv.init(jax.random.PRNGKey(1), x)
    y = conv.apply(params, x)
    kernel = np.asarray(params["params"]["taps"]["kernel"])  # [2*3, 2]: tap x[t-3] then x[t]
    bias = np.asarray(params["params"]["taps"]["bias"])
    xn = np.asarray(x[0])
    shifted = np.concatenate([np.zeros((3, 3)), xn[:-3]])
    expect = shifted @ kernel[:3] + xn @ kernel[3:] + bias
    np.testing.assert_allclose(y[0], expect, rtol=1e-5, atol=1e-5)
    # Changing the future never changes the past.
    x2 = x.at[0, 6:].set(100.0)
    np.testing.assert_allclose(conv.apply(params, x2)[0, :6], y[0, :6], rtol=1e-6)


def test_output_shapes_and_encoders_per_method():
    x = jnp.ones((4,) + helpers.TINY_SHAPE)
    for method, has_corpus, has_domain in [("emodna", True, False), ("source_only", False, False),
                                           ("dann", False, True)]:
        model = models.create_model(helpers.tiny_config(method), num_classes=3, num_corpora=2, axis_name=None)
        variables = model.init({"params": jax.random.PRNGKey(0)}, x, train=False)
        out = model.apply(variables, x, train=False)
        assert out["z_e"].shape == (4, 8) and out["logits_e"].shape == (4, 3)
        assert ("z_c" in out) == has_corpus and ("logits_domain" in out) == has_domain
        if has_corpus:
            assert out["logits_c"].shape == (4, 2)
            # Separate weights: the two encoders differ.
            assert not np.allclose(out["z_e"], out["z_c"])


def test_backward_direction_sees_the_future():
    """Bidirectional: the embedding of a prefix changes when only the last frames change."""
    model = models.create_model(helpers.tiny_config("source_only"), num_classes=3, num_corpora=2,
                                axis_name=None)
    x = jax.random.normal(jax.random.PRNGKey(2), (2,) + helpers.TINY_SHAPE)
    variables = model.init({"params": jax.random.PRNGKey(0)}, x, train=False)
    a = model.apply(variables, x, train=False)["z_e"]
    b = model.apply(variables, x.at[:, -2:].add(3.0), train=False)["z_e"]
    assert not np.allclose(a, b)


@pytest.mark.parametrize("method", ["emodna", "emodna_literal"])  # per-corpus and shared BatchNorm
def test_emotion_encoder_view_gives_the_same_emotion_outputs(method):
    """The pseudo-label forward may run the emotion encoder alone: per-member BatchNorm makes its
    z_e and logits_e exactly those of the full model, in training and in inference mode."""
    model = models.create_model(helpers.tiny_config(method), num_classes=3, num_corpora=2, axis_name=None)
    x = jax.random.normal(jax.random.PRNGKey(3), (6,) + helpers.TINY_SHAPE)
    variables = model.init({"params": jax.random.PRNGKey(0)}, x, train=False)
    e_model, e_vars = models.emotion_encoder_view(model, variables)
    assert not e_model.with_corpus_encoder
    for train in (True, False):
        split = {"num_source": 4} if train else {}
        full, _ = model.apply(variables, x, train=train, use_dropout=False, mutable=["batch_stats"], **split)
        alone, _ = e_model.apply(e_vars, x, train=train, use_dropout=False, mutable=["batch_stats"], **split)
        assert "z_c" not in alone
        np.testing.assert_allclose(alone["logits_e"], full["logits_e"], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(alone["z_e"], full["z_e"], rtol=1e-6, atol=1e-6)


def _tile_members(tree, times: int):
    """Trunk leaves [2, ...] (one per direction) repeated for every encoder: [2 * times, ...]."""
    return jax.tree.map(lambda a: jnp.concatenate([a] * times), tree)


@pytest.mark.parametrize("batch_norm", ["shared", "per_corpus"])
def test_shared_trunk_is_two_encoders_whose_lower_blocks_hold_the_same_weights(batch_norm):
    """model.shared_blocks = s: the emotion and corpus encoders share their input projection and
    lower s blocks. The same function as separate encoders whose lower blocks are copies of the trunk,
    in training and in inference mode, with fewer parameters."""
    config = helpers.tiny_config("emodna", **{"model.backbone": "timnet", "model.dilations": 3,
                                              "model.batch_norm": batch_norm})
    separate = models.create_model(config, num_classes=3, num_corpora=2, axis_name=None)
    config.model.shared_blocks = 2
    shared = models.create_model(config, num_classes=3, num_corpora=2, axis_name=None)
    x = jax.random.normal(jax.random.PRNGKey(4), (6,) + helpers.TINY_SHAPE)
    v_shared = shared.init({"params": jax.random.PRNGKey(0)}, x, train=False)
    v_separate = separate.init({"params": jax.random.PRNGKey(1)}, x, train=False)
    assert set(v_shared["params"]["shared_trunk"]) == {"input_projection", "block_0", "block_1"}
    assert set(v_shared["params"]["temporal_stacks"]) == {"block_2"}
    count = lambda v: sum(a.size for a in jax.tree.leaves(v["params"]))  # noqa: E731
    assert count(v_shared) < count(v_separate)

    copied = {}
    for collection, tree in v_separate.items():
        tree = dict(tree)
        stacks = dict(_tile_members(v_shared[collection]["shared_trunk"], 2))
        stacks.update(v_shared[collection]["temporal_stacks"])
        tree["temporal_stacks"] = stacks
        for name in tree:
            if name != "temporal_stacks":
                tree[name] = v_shared[collection][name]
        copied[collection] = tree
    for train in (True, False):
        split = {"num_source": 4} if train else {}
        a, _ = shared.apply(v_shared, x, train=train, mutable=["batch_stats"], **split)
        b, _ = separate.apply(copied, x, train=train, mutable=["batch_stats"], **split)
        # With per-corpus BatchNorm the trunk keeps the emotion path's per-corpus training statistics,
        # which the separate corpus encoder's lower blocks do not use: there only the emotion outputs
        # are the same function in training.
        keys = ("z_e", "logits_e") if batch_norm == "per_corpus" and train else ("z_e", "logits_e", "z_c",
                                                                                  "logits_c")
        for key in keys:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-5, err_msg=f"{key} train={train}")
    assert not np.allclose(a["z_e"], a["z_c"])

    # The pseudo-label forward (emotion encoder alone) keeps the whole trunk and matches too.
    e_model, e_vars = models.emotion_encoder_view(shared, v_shared)
    alone, _ = e_model.apply(e_vars, x, train=True, num_source=4, mutable=["batch_stats"])
    full, _ = shared.apply(v_shared, x, train=True, num_source=4, mutable=["batch_stats"])
    np.testing.assert_allclose(alone["logits_e"], full["logits_e"], rtol=1e-6, atol=1e-6)
