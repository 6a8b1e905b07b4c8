"""The Emo-DNA step learns on an in-memory two-domain toy problem, and its phases behave."""

import numpy as np

from emodna_jax.train import parallel, step_functions
from tests import helpers

NUM_CLASSES = 3


def train(config, steps, seed=0):
    backend = parallel.create_backend("pmap", num_devices=1)
    fns = step_functions.make_step_functions(config, num_classes=NUM_CLASSES, backend=backend)
    state = fns.init_state(config, helpers.TINY_SHAPE)
    rng = np.random.default_rng(seed)
    history = []
    for step in range(steps):
        batch = helpers.two_domain_batch(rng, devices=1, per_device=32, num_classes=NUM_CLASSES, shift=0.5)
        state, metrics = fns.train(state, batch, adapt=fns.is_adapting(step))
        history.append(backend.host_outputs(metrics, replicated=True))
    return backend.unreplicate(state), history


def test_emodna_lowers_its_loss_and_target_pseudo_labels_become_confident():
    steps = 60
    # TIM-Net: the tiny MLP is already confident when warm-up ends, so confidence has no room to grow.
    config = helpers.tiny_config("emodna", num_steps=steps, **{
        "model.backbone": "timnet", "pseudo.warmup_steps": 10, "pseudo.tau_min": 0.7, "learning_rate": 1e-2})
    state, history = train(config, steps)
    total = np.array([float(m["loss/total"]) for m in history])
    cls = np.array([float(m["loss/cls"]) for m in history])
    assert np.all(np.isfinite(total))
    assert cls[-10:].mean() < 0.6 * cls[:5].mean()
    assert total[-10:].mean() < total[:5].mean()
    # Warm-up steps make no pseudo-label at all; adaptation steps report them.
    assert "pseudo/confident_fraction" not in history[9]
    confident = np.array([float(m["pseudo/confident_fraction"]) for m in history[10:]])
    assert confident[-10:].mean() > 0.3
    assert confident[-10:].mean() > 1.5 * confident[:5].mean()
    # Every emotion prototype got set, and they separate (the classes are learnable here).
    assert float(history[-1]["monitor/max_prototype_cosine"]) < 0.9
    assert np.all(np.linalg.norm(np.asarray(state.prototypes.emotion)[0], axis=-1) > 0.99)


def test_warmup_step_ignores_targets_for_pseudo_labels_and_keeps_thresholds():
    config = helpers.tiny_config("emodna", **{"pseudo.warmup_steps": 5})
    state, history = train(config, 2)
    np.testing.assert_allclose(np.asarray(state.thresholds.class_confidence)[0], 1.0 / NUM_CLASSES)
    assert "loss/class_align" not in history[-1]


def test_source_only_has_no_corpus_encoder_and_only_the_classification_loss():
    config = helpers.tiny_config("source_only")
    state, history = train(config, 2)
    assert set(k for k in history[-1] if k.startswith("loss/")) == {"loss/cls", "loss/total"}
    np.testing.assert_allclose(float(history[-1]["loss/cls"]), float(history[-1]["loss/total"]))
    assert not any("corpus_classifier" in k for k in state.params)


def test_shared_trunk_trains_with_every_emodna_loss():
    # Adapting from step 0: every loss acts in the one compiled step (the warm-up is a branch of it).
    config = helpers.tiny_config("emodna", **{"model.backbone": "timnet", "model.dilations": 3,
                                              "model.shared_blocks": 1, "pseudo.warmup_steps": 0})
    backend = parallel.create_backend("pmap", num_devices=1)
    fns = step_functions.make_step_functions(config, num_classes=NUM_CLASSES, backend=backend)

    def kernel(params):
        return np.asarray(params["shared_trunk"]["block_0"]["CausalConv_0"]["taps"]["kernel"])

    before = kernel(fns.init_state(config, helpers.TINY_SHAPE).params)
    np.testing.assert_array_equal(before, kernel(fns.init_state(config, helpers.TINY_SHAPE).params))
    state, history = train(config, 3)
    assert {"loss/decoupling", "loss/corpus_align", "loss/class_align"} <= set(history[-1])
    assert all(np.isfinite(float(v)) for k, v in history[-1].items() if k.startswith("loss/"))
    assert not np.allclose(before, kernel(state.params))


def test_agreement_keeps_only_pseudo_labels_that_the_strong_view_repeats():
    """target_pseudo_labels with agreement: the same pseudo-labels, and confident = confident without
    agreement AND argmax of the strong view (recomputed here from augment.py) = the pseudo-label."""
    import jax
    import jax.numpy as jnp

    from emodna_jax.audio import augment
    from emodna_jax.model import models
    from emodna_jax.train import train_state, train_step

    config = helpers.tiny_config("emodna", **{"pseudo.distribution_alignment": True})
    model = models.create_model(config, num_classes=NUM_CLASSES, num_corpora=2, axis_name="batch")
    state = train_state.create_train_state(config, model, train_state.create_optimizer(config),
                                           feature_shape=helpers.TINY_SHAPE)
    rng = np.random.default_rng(0)
    batch = helpers.two_domain_batch(rng, devices=1, per_device=16, num_classes=NUM_CLASSES, shift=0.5)
    x = jnp.concatenate([batch["source"]["features"][0], batch["target"]["features"][0]])
    outputs = {}
    for agreement in (False, True):
        config.pseudo.agreement = agreement
        settings = train_step.StepSettings.from_config(config, num_classes=NUM_CLASSES, num_corpora=2)

        def pseudo_fn(s, v, settings=settings):
            strong = train_step.strong_view(s, v[16:], "batch")
            return train_step.target_pseudo_labels(s, v, 16, model=model, settings=settings, strong=strong)

        outputs[agreement] = jax.tree.map(lambda a: a[0], jax.vmap(pseudo_fn, axis_name="batch")(
            jax.tree.map(lambda a: a[None], state), x[None]))
    probs, pseudo, plain, thresholds_state, _, _ = outputs[False]
    _, pseudo_agree, confident, _, _, monitors = outputs[True]
    np.testing.assert_array_equal(pseudo_agree, pseudo)
    key = jax.random.fold_in(jax.random.fold_in(state.rng, state.step), train_step.AUGMENT_STREAM)
    strong = augment.strong_view(augment.example_keys(key, first_index=0, count=16), x[16:])
    e_model, e_vars = models.emotion_encoder_view(model.clone(axis_name=None), {
        "params": state.params, "batch_stats": state.batch_stats})
    out, _ = e_model.apply(e_vars, strong, train=True, use_dropout=False, num_source=0, mutable=["batch_stats"])
    from emodna_jax.method import thresholds
    strong_probs = thresholds.align_distribution(probs=jax.nn.softmax(out["logits_e"]),
                                                 running_mean=thresholds_state.class_confidence)
    agrees = np.asarray(strong_probs.argmax(-1) == pseudo, np.float32)
    np.testing.assert_array_equal(confident, np.asarray(plain) * agrees)
    np.testing.assert_allclose(monitors["pseudo/agreement"], agrees.mean(), rtol=1e-6)
    assert 0 < agrees.mean() < 1  # the strong view changes some predictions on this toy, not all


def test_head_and_centroid_keeps_only_head_pseudo_labels_the_centroid_table_repeats():
    """pseudo.labeller='head_and_centroid': the head's probabilities, pseudo-labels and thresholds,
    and confident = the head-only confident mask AND (argmax of labeller_probs = the pseudo-label)."""
    import jax
    import jax.numpy as jnp
    import pytest

    from emodna_jax.model import models
    from emodna_jax.train import train_state, train_step

    config = helpers.tiny_config("emodna", **{"pseudo.threshold": "freematch"})  # floor 0: most rows pass
    model = models.create_model(config, num_classes=NUM_CLASSES, num_corpora=2, axis_name="batch")
    state = train_state.create_train_state(config, model, train_state.create_optimizer(config),
                                           feature_shape=helpers.TINY_SHAPE)
    batch = helpers.two_domain_batch(np.random.default_rng(0), devices=1, per_device=16,
                                     num_classes=NUM_CLASSES, shift=0.5)
    x = jnp.concatenate([batch["source"]["features"][0], batch["target"]["features"][0]])

    def run(labeller, table=None):
        config.pseudo.labeller = labeller
        settings = train_step.StepSettings.from_config(config, num_classes=NUM_CLASSES, num_corpora=2)
        fn = lambda s, v, t: train_step.target_pseudo_labels(  # noqa: E731
            s, v, 16, model=model, settings=settings, labeller_probs=t)
        out = jax.vmap(fn, axis_name="batch")(jax.tree.map(lambda a: a[None], state), x[None],
                                              None if table is None else table[None])
        return jax.tree.map(lambda a: a[0], out)

    probs, pseudo, confident, _, tau, _ = run("head")
    assert float(confident.mean()) > 0.5  # tau_min = 0 in tiny configs: the head admits most rows
    agree = np.arange(16) % 2 == 0  # the table names the head's class on even rows, another on odd
    named = np.where(agree, np.asarray(pseudo), (np.asarray(pseudo) + 1) % NUM_CLASSES)
    table = np.full((16, NUM_CLASSES), 0.1, np.float32)
    table[np.arange(16), named] = 0.8
    probs_b, pseudo_b, confident_b, _, tau_b, monitors = run("head_and_centroid", jnp.asarray(table))
    np.testing.assert_allclose(probs_b, probs, rtol=1e-6)
    np.testing.assert_array_equal(pseudo_b, pseudo)
    np.testing.assert_allclose(tau_b, tau, rtol=1e-6)
    np.testing.assert_array_equal(confident_b, np.asarray(confident) * agree)
    assert 0 < float(confident_b.sum()) < float(confident.sum())  # the table removed some, kept some
    np.testing.assert_allclose(monitors["pseudo/centroid_agreement_batch"], 0.5)
    with pytest.raises(ValueError, match="labeller_probs"):
        run("head_and_centroid")


def test_consistency_adds_its_weighted_kl_to_the_total_and_nothing_else():
    """One step of the same batch with the consistency weight 0 and 2: every other loss part is the
    same, the KL is positive (the strong view changes predictions), and the totals differ by 2 x it."""
    parts = {}
    for weight in (0.0, 2.0):
        config = helpers.tiny_config("emodna", **{"loss.consistency_weight": weight})
        _, history = train(config, 1)
        parts[weight] = {k: float(v) for k, v in history[0].items() if k.startswith("loss/")}
    assert "loss/consistency" not in parts[0.0]
    kl = parts[2.0].pop("loss/consistency")
    assert kl > 0
    np.testing.assert_allclose(parts[2.0]["loss/total"], parts[0.0]["loss/total"] + 2.0 * kl, rtol=1e-5)
    for name in parts[0.0]:
        if name != "loss/total":
            np.testing.assert_allclose(parts[2.0][name], parts[0.0][name], rtol=1e-5, err_msg=name)


def test_agreement_and_consistency_share_one_strong_view():
    """With both on, the step builds the strong view once: the agreement monitor and every loss part
    but the total are those of agreement alone, and the KL is that of consistency alone."""
    runs = {}
    for agreement, weight in ((True, 0.0), (True, 2.0), (False, 2.0)):
        config = helpers.tiny_config("emodna", **{
            "loss.consistency_weight": weight, "pseudo.agreement": agreement, "pseudo.warmup_steps": 0})
        _, history = train(config, 1)  # one adaptation step
        runs[agreement, weight] = {k: float(v) for k, v in history[0].items()
                                   if k.startswith("loss/") or k == "pseudo/agreement"}
    both, alone = runs[True, 2.0], runs[True, 0.0]
    assert 0 < both["pseudo/agreement"] < 1  # the view changes some predictions, not all
    np.testing.assert_allclose(both.pop("loss/consistency"), runs[False, 2.0]["loss/consistency"], rtol=1e-6)
    for name in alone:
        if name != "loss/total":
            np.testing.assert_allclose(both[name], alone[name], rtol=1e-5, err_msg=name)


def test_centroid_labeller_pseudo_labels_are_the_given_assignments():
    """With pseudo.labeller='centroid' the step's pseudo-labels are the argmax of the batch's
    `labeller_probs`, not the head's, and the thresholds act on those probabilities."""
    import jax
    import pytest

    config = helpers.tiny_config("emodna", **{"pseudo.labeller": "centroid"})
    backend = parallel.create_backend("pmap", num_devices=1)
    fns = step_functions.make_step_functions(config, num_classes=NUM_CLASSES, backend=backend)
    state = fns.init_state(config, helpers.TINY_SHAPE)
    batch = helpers.two_domain_batch(np.random.default_rng(0), devices=1, per_device=12,
                                     num_classes=NUM_CLASSES)
    given = np.full((1, 12, NUM_CLASSES), 0.05, np.float32)
    given[0, np.arange(12), np.arange(12) % NUM_CLASSES] = 0.9
    batch["target"]["labeller_probs"] = given
    _, metrics = fns.train(state, batch, adapt=True)
    metrics = backend.host_outputs(metrics, replicated=True)
    # tau_min = 0 in tiny configs: every example passes, four of each class.
    np.testing.assert_allclose(metrics["pseudo/confident_fraction"], 1.0)
    np.testing.assert_allclose(metrics["pseudo/confident_per_class"], [4, 4, 4])
    assert np.isfinite(float(metrics["loss/class_align"]))
    del batch["target"]["labeller_probs"]
    with pytest.raises(ValueError, match="labeller_probs"):
        jax.block_until_ready(fns.train(state, batch, adapt=True))


def test_per_source_corpus_alignment_is_the_mean_of_one_term_per_source():
    """loss.corpus_align_per_source with D = 3 (two sources with one corpus id each): MMD and CORAL
    are the mean of each source corpus' term against the target, each equal to the loss on that
    corpus' rows alone; without the option, or with D = 2, the pooled sources' term."""
    import jax
    import jax.numpy as jnp

    from emodna_jax.method import losses
    from emodna_jax.train import train_step

    rng = np.random.default_rng(0)
    z_s = rng.normal(size=(6, 4)).astype(np.float32)
    z_s[1::2] += 2.0  # corpus 1 sits apart from corpus 0
    z_t = rng.normal(size=(5, 4)).astype(np.float32)
    ids = np.array([0, 1] * 3 + [2] * 5, np.int32)
    for kind in ("mmd", "coral"):
        def value(per_source, num_corpora, kind=kind):
            config = helpers.tiny_config("emodna", **{"loss.corpus_align": kind,
                                                      "loss.corpus_align_per_source": per_source})
            settings = train_step.StepSettings.from_config(config, num_classes=NUM_CLASSES, num_corpora=num_corpora)
            one = lambda a: jnp.asarray(a)[None]  # noqa: E731  (a device axis of one)
            return float(jax.vmap(lambda s, t, c: train_step.corpus_alignment(
                {}, s, t, c, None, settings), axis_name="batch")(one(z_s), one(z_t), one(ids))[0])

        def alone(rows):
            fn = losses.mmd_loss if kind == "mmd" else losses.coral_loss
            extra = {"bandwidth_multipliers": helpers.tiny_config().loss.mmd_bandwidths} if kind == "mmd" else {}
            return float(fn(source=jnp.asarray(z_s[rows]), target=jnp.asarray(z_t), source_mask=jnp.ones(len(rows)),
                            target_mask=jnp.ones(5), **extra))

        expected = 0.5 * (alone(np.arange(0, 6, 2)) + alone(np.arange(1, 6, 2)))
        np.testing.assert_allclose(value(True, 3), expected, rtol=1e-5)
        pooled = alone(np.arange(6))
        np.testing.assert_allclose(value(False, 3), pooled, rtol=1e-6)
        np.testing.assert_allclose(value(True, 2), pooled, rtol=1e-6)  # one source corpus: the option is moot
        assert abs(expected - pooled) > 1e-3
