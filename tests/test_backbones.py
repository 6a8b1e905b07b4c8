"""The mlp and linear backbones, dropout that does not depend on the device split, the BatchNorm
momentum tied to the schedule, and the config checks of the model fields."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import default
from emodna_jax.audio import features
from emodna_jax.model import models
from emodna_jax.train import config_checks
from emodna_jax.train.config_checks import ConfigError
from tests import helpers


def _model(method="emodna", **overrides):
    return models.create_model(helpers.tiny_config(method, **overrides), num_classes=3, num_corpora=2,
                               axis_name=None)


def test_linear_backbone_decision_function_is_affine_in_the_input():
    """backbone=linear is a logistic-regression probe: logits(a x1 + (1-a) x2) = a logits(x1) +
    (1-a) logits(x2), in training and in inference mode (no BatchNorm, no dropout, no hidden layer)."""
    model = _model("emodna", **{"model.backbone": "linear", "model.dropout_rate": 0.5})
    x1, x2 = jax.random.normal(jax.random.PRNGKey(0), (2, 6) + helpers.TINY_SHAPE)
    variables = model.init({"params": jax.random.PRNGKey(1)}, x1, train=False)
    assert "batch_stats" not in variables or not jax.tree.leaves(variables["batch_stats"])
    # Only the two projections and the heads: no hidden layer.
    assert set(variables["params"]["encoders"]) == {"projection"}
    for train in (False, True):
        f = lambda x: model.apply(variables, x, train=train, num_source=3,  # noqa: E731
                                  rngs={"dropout": jax.random.PRNGKey(2)})["logits_e"]
        for a in (0.3, 2.5):
            np.testing.assert_allclose(f(a * x1 + (1 - a) * x2), a * f(x1) + (1 - a) * f(x2),
                                       rtol=1e-4, atol=1e-4)
    # ... and not constant, and a nonlinear model would fail the same check.
    f = lambda x: model.apply(variables, x, train=False)["logits_e"]  # noqa: E731
    assert not np.allclose(f(x1), f(x2))
    mlp = _model("emodna", **{"model.backbone": "mlp", "model.hidden_dim": 8})
    v = mlp.init({"params": jax.random.PRNGKey(1)}, x1, train=False)
    g = lambda x: mlp.apply(v, x, train=True, num_source=3, use_dropout=False,  # noqa: E731
                            mutable=["batch_stats"])[0]["logits_e"]
    assert not np.allclose(g(0.3 * x1 + 0.7 * x2), 0.3 * g(x1) + 0.7 * g(x2), atol=1e-3)


@pytest.mark.parametrize("backbone", ["mlp", "linear"])
def test_mlp_backbone_shapes_encoders_and_pooling(backbone):
    x = jax.random.normal(jax.random.PRNGKey(3), (4,) + helpers.TINY_SHAPE)
    for method, has_corpus, has_domain in [("emodna", True, False), ("source_only", False, False),
                                           ("dann", False, True)]:
        model = _model(method, **{"model.backbone": backbone, "model.hidden_dim": 8})
        variables = model.init({"params": jax.random.PRNGKey(0)}, x, train=False)
        out = model.apply(variables, x, train=False)
        assert out["z_e"].shape == (4, 8) and out["logits_e"].shape == (4, 3)
        assert ("z_c" in out) == has_corpus and ("logits_domain" in out) == has_domain
        if has_corpus:
            assert not np.allclose(out["z_e"], out["z_c"])  # separate weights
        # Frames are averaged first: a [B, T, F] input equals its one-frame mean.
        pooled = model.apply(variables, x.mean(axis=1, keepdims=True), train=False)
        np.testing.assert_allclose(pooled["logits_e"], out["logits_e"], rtol=1e-5, atol=1e-5)
    layers = {"hidden_0", "hidden_1", "projection"} if backbone == "mlp" else {"projection"}
    assert set(variables["params"]["encoders"]) >= layers


@pytest.mark.parametrize("backbone,batch_norm", [("mlp", "per_corpus"), ("mlp", "shared"), ("linear", "shared")])
def test_emotion_encoder_view_gives_the_same_emotion_outputs(backbone, batch_norm):
    model = _model("emodna", **{"model.backbone": backbone, "model.hidden_dim": 8, "model.batch_norm": batch_norm})
    x = jax.random.normal(jax.random.PRNGKey(4), (6,) + helpers.TINY_SHAPE)
    variables = model.init({"params": jax.random.PRNGKey(0)}, x, train=False)
    e_model, e_vars = models.emotion_encoder_view(model, variables)
    assert jax.tree.leaves(e_vars["params"]["encoders"])[0].shape[0] == 1
    for train in (True, False):
        split = {"num_source": 4} if train else {}
        full, _ = model.apply(variables, x, train=train, use_dropout=False, mutable=["batch_stats"], **split)
        alone, _ = e_model.apply(e_vars, x, train=train, use_dropout=False, mutable=["batch_stats"], **split)
        assert "z_c" not in alone
        np.testing.assert_allclose(alone["logits_e"], full["logits_e"], rtol=1e-6, atol=1e-6)


def test_example_dropout_mask_depends_on_the_example_id_only():
    """Split a batch in two (two devices) and each example keeps its mask; spatial masks are shared
    over time; kept values are scaled by 1 / keep; about `rate` of the channels drop."""
    layer = models.ExampleDropout(0.25, deterministic=False, broadcast_dims=(-2,))
    x = jnp.ones((8, 5, 64))
    ids = jnp.arange(8) + 100
    rngs = {"dropout": jax.random.PRNGKey(7)}
    whole = layer.apply({}, x, ids, rngs=rngs)
    halves = jnp.concatenate([layer.apply({}, x[:4], ids[:4], rngs=rngs),
                              layer.apply({}, x[4:], ids[4:], rngs=rngs)])
    np.testing.assert_array_equal(whole, halves)
    # Rows swapped with their ids: the masks move with the examples.
    np.testing.assert_array_equal(layer.apply({}, x[::-1], ids[::-1], rngs=rngs), whole[::-1])
    np.testing.assert_array_equal(whole, whole[:, :1, :].repeat(5, axis=1))  # one mask per channel
    np.testing.assert_allclose(np.unique(np.asarray(whole)), [0.0, 1.0 / 0.75], rtol=1e-6)
    assert 0.15 < float((whole == 0).mean()) < 0.35
    assert not np.array_equal(whole[0], whole[1])  # examples differ
    # Deterministic (or rate 0): the identity, no key needed.
    np.testing.assert_array_equal(models.ExampleDropout(0.25, deterministic=True).apply({}, x, ids), x)


def test_global_example_ids_are_positions_in_the_global_batch():
    """Device d holds source rows d*bs.. and target rows d*bt..; ids number the global batch [source;
    target], so they are the same on 1 and 4 devices."""
    per_device = jax.pmap(lambda _: models.global_example_ids(2, 3, "i"), axis_name="i")(jnp.zeros(4))
    one = np.asarray(models.global_example_ids(8, 12, None))
    per_device = np.asarray(per_device)  # [4 devices, 2 + 3]
    source = per_device[:, :2].reshape(-1)
    target = per_device[:, 2:].reshape(-1)
    np.testing.assert_array_equal(np.concatenate([source, target]), one)
    np.testing.assert_array_equal(one, np.arange(20))


@pytest.mark.parametrize("num_steps", [1, 10, 12, 50, 200, 1000, 5000])
def test_tied_bn_momentum_leaves_under_1e4_of_the_initial_statistics(num_steps):
    m = models.batch_norm_momentum(0.0, num_steps)
    assert 0.0 <= m <= 0.99
    assert m ** num_steps < 1e-4
    if num_steps == 200:
        assert m == pytest.approx(0.95)
        assert 0.99 ** 200 > 0.13  # the fixed momentum: 13 % of the start left
    if num_steps >= 1000:
        assert m == 0.99  # the cap
    assert models.batch_norm_momentum(0.9, num_steps) == 0.9  # an explicit momentum is kept


def test_default_config_ties_the_momentum_and_the_model_gets_it():
    config = default.get_config()
    assert config.model.bn_momentum == 0.0
    model = models.create_model(config, num_classes=3, num_corpora=2, axis_name=None)
    assert model.bn_momentum == pytest.approx(1 - 10 / config.num_steps)
    # The running mean after num_steps updates on data of mean 5: the start (0) weighs < 1e-4.
    m, stat = model.bn_momentum, 0.0
    for _ in range(config.num_steps):
        stat = m * stat + (1 - m) * 5.0
    assert abs(stat - 5.0) < 5e-4


def _smoke(**overrides):
    return helpers.set_fields(default.get_config("smoke"), overrides)


@pytest.mark.parametrize("overrides,expected", [
    ({"model.backbone": "transformer"}, ["config.model.backbone='transformer'", "timnet, mlp, linear"]),
    ({"model.backbone": "mlp", "model.shared_blocks": 1}, ["config.model.shared_blocks=1", "backbone=timnet"]),
    ({"model.backbone": "linear", "model.shared_blocks": 1}, ["config.model.shared_blocks=1"]),
    ({"model.backbone": "mlp", "model.hidden_dim": 0}, ["config.model.hidden_dim=0"]),
    ({"model.backbone": "mlp", "model.num_layers": 0}, ["config.model.num_layers=0", "backbone=linear"]),
    ({"model.bn_momentum": 1.0}, ["config.model.bn_momentum=1.0", "0 ties it"]),
    ({"model.bn_momentum": -0.5}, ["config.model.bn_momentum=-0.5"]),
])
def test_model_refusals_name_the_field(overrides, expected):
    with pytest.raises(ConfigError) as error:
        config_checks.validate(_smoke(**overrides))
    for text in expected:
        assert text in str(error.value)


def test_backbone_configs_pass():
    for backbone in ("auto",) + models.BACKBONES:  # TIM-Net over a frame front end
        config_checks.validate(_smoke(features="affect_frames", **{"model.backbone": backbone}))
    for backbone in ("auto", "mlp", "linear"):  # the default one-frame front end
        config_checks.validate(_smoke(**{"model.backbone": backbone}))
    config_checks.validate(_smoke(**{"model.backbone": "linear", "model.num_layers": 0}))


def test_timnet_over_one_frame_functionals_is_refused_with_the_backbone_to_use(monkeypatch):
    one_frame = dataclasses.replace(features.get_feature_config("mfcc39"), name="functionals_test",
                                    num_samples=100, hop_length=512)
    assert one_frame.shape[0] == 1
    monkeypatch.setitem(features.FEATURE_CONFIGS, one_frame.name, one_frame)
    monkeypatch.setattr(config_checks, "FEATURES", tuple(config_checks.FEATURES) + (one_frame.name,))
    with pytest.raises(ConfigError) as error:
        config_checks.validate(_smoke(features=one_frame.name, **{"model.backbone": "timnet"}))
    assert "--config.model.backbone=mlp" in str(error.value)
    assert "config.features='functionals_test'" in str(error.value)
    config_checks.validate(_smoke(features=one_frame.name, **{"model.backbone": "mlp"}))
    config_checks.validate(_smoke(features=one_frame.name))  # "auto" picks the MLP


def test_auto_backbone_follows_the_front_end():
    assert models.resolve_backbone("auto", 1) == "mlp"
    assert models.resolve_backbone("auto", 188) == "timnet"
    assert models.resolve_backbone("linear", 188) == "linear"
    assert models.backbone_of(_smoke()) == "mlp"  # the default front end `affect` is one frame
    assert models.backbone_of(_smoke(features="mfcc39")) == "timnet"  # the authors' front end


@pytest.mark.parametrize("backbone", ["linear", "mlp"])
def test_backbone_learns_the_toy_problem_through_the_trainer(backbone):
    """The class lives in the frame mean of one coefficient (helpers.two_domain_batch), which both a
    linear probe and the MLP can read: source cross-entropy falls (label smoothing 0.1 keeps it > 0.2)."""
    from emodna_jax.train import parallel, step_functions  # noqa: PLC0415 (heavy, only here)
    config = helpers.tiny_config("source_only", num_steps=40, learning_rate=1e-2,
                                 **{"model.backbone": backbone, "model.hidden_dim": 16})
    backend = parallel.create_backend("pmap", num_devices=1)
    fns = step_functions.make_step_functions(config, num_classes=3, backend=backend)
    state = fns.init_state(config, helpers.TINY_SHAPE)
    rng = np.random.default_rng(0)
    cls = []
    for step in range(config.num_steps):
        batch = helpers.two_domain_batch(rng, devices=1, per_device=32, num_classes=3)
        state, metrics = fns.train(state, batch, adapt=fns.is_adapting(step))
        cls.append(float(backend.host_outputs(metrics, replicated=True)["loss/cls"]))
    assert np.all(np.isfinite(cls))
    assert np.mean(cls[-5:]) < min(0.6, 0.8 * np.mean(cls[:2]))
