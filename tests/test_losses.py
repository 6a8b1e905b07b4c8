"""Every loss against a value worked out in plain numpy, masks, gradients and jit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emodna_jax.method import losses

RNG = np.random.default_rng(0)


def np_normalize(v):
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-6)


def np_logsumexp(a):
    m = a.max(-1, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(-1, keepdims=True)))[..., 0]


def test_l2_normalize_value_and_finite_gradient_at_zero():
    v = np.array([[3.0, 4.0], [0.0, 0.0]], np.float32)
    np.testing.assert_allclose(losses.l2_normalize(v), [[0.6, 0.8], [0.0, 0.0]], atol=1e-6)
    grad = jax.grad(lambda x: losses.l2_normalize(x).sum())(jnp.zeros((3,)))
    assert np.all(np.isfinite(grad))
    # The naive form this replaces gives NaN here: the test would catch a regression to it.
    naive = jax.grad(lambda x: (x / jnp.maximum(jnp.linalg.norm(x), 1e-6)).sum())(jnp.zeros((3,)))
    assert np.any(np.isnan(naive))


def test_cross_entropy_with_label_smoothing_matches_numpy():
    logits = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]], np.float32)
    labels = np.array([0, 2])
    eps = 0.1
    logp = logits - np_logsumexp(logits)[:, None]
    target = np.full((2, 3), eps / 3)
    target[np.arange(2), labels] += 1 - eps
    expected = -(target * logp).sum(-1)
    got = losses.softmax_cross_entropy(logits=logits, labels=labels, label_smoothing=eps)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def _banks():
    emotion = np_normalize(RNG.normal(size=(3, 4))).astype(np.float32)
    emotion[2] = 0.0  # a class never seen yet: left out of every sum, and its examples do not count
    corpus = np_normalize(RNG.normal(size=(2, 4))).astype(np.float32)
    return emotion, corpus


def np_prototype_nll(z, y, positives, negatives, tau):
    u = np_normalize(z)
    banks = [positives] + negatives
    valid = np.concatenate([np.linalg.norm(b, axis=-1) > 0 for b in banks])
    logits = np.concatenate([u @ b.T for b in banks], axis=-1) / tau
    out = []
    for i in range(len(z)):
        row = logits[i][valid]
        out.append(np_logsumexp(row[None])[0] - logits[i, y[i]])
    return np.array(out)


def test_decoupling_loss_matches_numpy():
    p_e, p_c = _banks()
    z_e = RNG.normal(size=(4, 4)).astype(np.float32)
    z_c = RNG.normal(size=(4, 4)).astype(np.float32)
    y = np.array([0, 1, 2, 1])
    d = np.array([0, 0, 1, 1])
    mask = np.array([1.0, 1.0, 1.0, 0.0], np.float32)
    tau = 0.5
    out = losses.decoupling_loss(
        emotion_features=z_e, corpus_features=z_c, emotion_labels=y, corpus_labels=d,
        emotion_prototypes=p_e, corpus_prototypes=p_c, temperature=tau, emotion_mask=mask,
        corpus_mask=np.ones(4, np.float32))
    expected_e = np_prototype_nll(z_e, y, p_e, [p_c], tau)
    expected_c = np_prototype_nll(z_c, d, p_c, [p_e], tau)
    # Example 2's prototype is still zero and example 3 is masked: neither counts.
    np.testing.assert_array_equal(out.emotion_mask, [1, 1, 0, 0])
    np.testing.assert_allclose(out.emotion[:2], expected_e[:2], rtol=1e-5)
    np.testing.assert_array_equal(out.emotion[2:], 0.0)
    np.testing.assert_array_equal(out.corpus_mask, 1.0)
    np.testing.assert_allclose(out.corpus, expected_c, rtol=1e-5)
    # The emotion side pushes u from the corpus prototypes too: dropping them lowers the loss.
    alone = np_prototype_nll(z_e, y, p_e, [], tau)
    assert np.all(alone[:2] < expected_e[:2])


def test_class_alignment_matches_numpy_and_masked_equals_subset():
    p_e, _ = _banks()
    z = RNG.normal(size=(5, 4)).astype(np.float32)
    y = np.array([0, 1, 1, 0, 2])
    mask = np.array([1, 0, 1, 1, 1], np.float32)
    loss, counted = losses.class_alignment_loss(features=z, pseudo_labels=y, prototypes=p_e,
                                                temperature=0.2, mask=mask)
    np.testing.assert_array_equal(counted, [1, 0, 1, 1, 0])
    expected = np_prototype_nll(z, y, p_e, [], 0.2)
    np.testing.assert_allclose(np.asarray(loss)[counted > 0], expected[counted > 0], rtol=1e-5)
    keep = np.asarray(counted) > 0
    sub, _ = losses.class_alignment_loss(features=z[keep], pseudo_labels=y[keep], prototypes=p_e,
                                         temperature=0.2, mask=np.ones(keep.sum(), np.float32))
    np.testing.assert_allclose(np.sum(loss) / counted.sum(), np.mean(sub), rtol=1e-6)


def np_kernel(x, mask, mults):
    d2 = ((x[:, None] - x[None]) ** 2).sum(-1)
    pair = mask[:, None] * mask[None] * (1 - np.eye(len(x)))
    bw = (d2 * pair).sum() / pair.sum()
    return sum(np.exp(-d2 / (m * bw)) for m in mults)


MULTS = (0.25, 0.5, 1.0, 2.0, 4.0)


def test_mmd_matches_numpy_and_masked_equals_subset():
    s = RNG.normal(size=(4, 3)).astype(np.float32)
    t = (RNG.normal(size=(3, 3)) + 1.0).astype(np.float32)
    k = np_kernel(np.concatenate([s, t]), np.ones(7), MULTS)
    expected = k[:4, :4].mean() + k[4:, 4:].mean() - 2 * k[:4, 4:].mean()
    got = losses.mmd_loss(source=s, target=t, source_mask=np.ones(4), target_mask=np.ones(3),
                          bandwidth_multipliers=MULTS)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert got > 0
    s_pad = np.concatenate([s, 100 * np.ones((2, 3), np.float32)])
    masked = losses.mmd_loss(source=s_pad, target=t, source_mask=np.array([1, 1, 1, 1, 0, 0.0]),
                             target_mask=np.ones(3), bandwidth_multipliers=MULTS)
    np.testing.assert_allclose(masked, expected, rtol=1e-5)


def test_mmd_is_scale_invariant_and_alone_does_not_shrink_features():
    s = RNG.normal(size=(16, 4)).astype(np.float32)
    t = (RNG.normal(size=(16, 4)) * 1.5 + 0.5).astype(np.float32)
    ones = np.ones(16, np.float32)
    a = losses.mmd_loss(source=s, target=t, source_mask=ones, target_mask=ones)
    b = losses.mmd_loss(source=0.01 * s, target=0.01 * t, source_mask=ones, target_mask=ones)
    np.testing.assert_allclose(a, b, rtol=1e-4)
    # A linear encoder trained by MMD alone for 50 steps: the features must not collapse in scale
    # (with a stop-gradient on the bandwidth they shrink towards zero, docs/method.md §7.4).
    w = jnp.eye(4)
    loss = lambda w: losses.mmd_loss(source=s @ w, target=t @ w, source_mask=ones, target_mask=ones)  # noqa: E731
    norm0 = float(jnp.linalg.norm(s @ w, axis=-1).mean())
    for _ in range(50):
        w = w - 0.5 * jax.grad(loss)(w)
    assert float(loss(w)) < float(a)
    assert float(jnp.linalg.norm(s @ w, axis=-1).mean()) > 0.9 * norm0


def test_coral_matches_numpy():
    s = RNG.normal(size=(6, 3)).astype(np.float32)
    t = (RNG.normal(size=(5, 3)) * 2).astype(np.float32)
    expected = ((np.cov(s, rowvar=False) - np.cov(t, rowvar=False)) ** 2).sum() / (4 * 9)
    got = losses.coral_loss(source=s, target=t, source_mask=np.ones(6), target_mask=np.ones(5))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    masked = losses.coral_loss(source=np.concatenate([s, 9 * np.ones((1, 3), np.float32)]), target=t,
                               source_mask=np.array([1, 1, 1, 1, 1, 1, 0.0]), target_mask=np.ones(5))
    np.testing.assert_allclose(masked, expected, rtol=1e-5)


def test_lmmd_matches_numpy():
    s = RNG.normal(size=(4, 3)).astype(np.float32)
    t = RNG.normal(size=(3, 3)).astype(np.float32)
    ys = np.array([0, 0, 1, 1])
    q = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.5, 0.5, 0.0]], np.float32)
    k = np_kernel(np.concatenate([s, t]), np.ones(7), MULTS)
    per_class = []
    for c in range(2):  # class 2: no source example and no target mass -> left out
        ws = (ys == c) / (ys == c).sum()
        wt = q[:, c] / q[:, c].sum()
        w = np.concatenate([ws, -wt])
        per_class.append(w @ k @ w)
    got = losses.lmmd_loss(source=s, target=t, source_labels=ys, target_probs=q, source_mask=np.ones(4),
                           target_mask=np.ones(3), num_classes=3, bandwidth_multipliers=MULTS)
    np.testing.assert_allclose(got, np.mean(per_class), rtol=1e-5)


def test_diversity_is_zero_for_balanced_and_log_k_for_collapsed_predictions():
    uniform = np.eye(4, dtype=np.float32)
    collapsed = np.tile(np.array([[1.0, 0, 0, 0]], np.float32), (4, 1))
    assert abs(float(losses.diversity_loss(probs=uniform, mask=np.ones(4)))) < 1e-6
    np.testing.assert_allclose(losses.diversity_loss(probs=collapsed, mask=np.ones(4)), np.log(4), rtol=1e-6)
    # The mask matters: masking the three non-zero-class rows leaves a collapsed batch.
    np.testing.assert_allclose(losses.diversity_loss(probs=uniform, mask=np.array([1.0, 0, 0, 0])),
                               np.log(4), rtol=1e-6)


def test_consistency_is_the_kl_of_teacher_to_student_and_zero_when_they_agree():
    teacher = RNG.normal(size=(5, 4)).astype(np.float32)
    student = RNG.normal(size=(5, 4)).astype(np.float32)
    p = np.exp(teacher - np_logsumexp(teacher)[:, None])
    log_q = student - np_logsumexp(student)[:, None]
    want = np.sum(p * (np.log(p) - log_q), axis=-1)
    np.testing.assert_allclose(losses.consistency_loss(teacher_logits=teacher, student_logits=student),
                               want, rtol=1e-5, atol=1e-6)
    assert np.all(want > 0)
    # Agreeing predictions (logits equal up to a constant per row) cost nothing.
    np.testing.assert_allclose(
        losses.consistency_loss(teacher_logits=teacher, student_logits=teacher + 3.0), 0.0, atol=1e-6)


def _all_losses(z, zc, p_e, p_c, labels):
    n = z.shape[0]
    ones = jnp.ones(n)
    half = n // 2
    dec = losses.decoupling_loss(
        emotion_features=z, corpus_features=zc, emotion_labels=labels, corpus_labels=labels % 2,
        emotion_prototypes=p_e, corpus_prototypes=p_c, temperature=0.1, emotion_mask=ones,
        corpus_mask=ones)
    cls, _ = losses.class_alignment_loss(features=z, pseudo_labels=labels, prototypes=p_e,
                                         temperature=0.1, mask=ones)
    probs = jax.nn.softmax(z[:, :3])
    return (dec.emotion.sum() + dec.corpus.sum() + cls.sum()
            + losses.mmd_loss(source=z[:half], target=z[half:], source_mask=ones[:half], target_mask=ones[half:])
            + losses.coral_loss(source=z[:half], target=z[half:], source_mask=ones[:half], target_mask=ones[half:])
            + losses.lmmd_loss(source=z[:half], target=z[half:], source_labels=labels[:half],
                               target_probs=probs[half:], source_mask=ones[:half], target_mask=ones[half:],
                               num_classes=3)
            + losses.diversity_loss(probs=probs, mask=ones)
            + losses.consistency_loss(teacher_logits=z[:, :3], student_logits=zc[:, :3]).sum()
            + losses.softmax_cross_entropy(logits=z[:, :3], labels=labels, label_smoothing=0.1).sum())


@pytest.mark.parametrize("case", ["zero_features", "random", "absent_class"])
def test_every_loss_has_finite_gradients(case):
    z = jnp.asarray(RNG.normal(size=(6, 4)), jnp.float32)
    labels = jnp.array([0, 1, 2, 0, 1, 2])
    p_e, p_c = (jnp.asarray(b) for b in _banks())
    if case == "zero_features":
        z = jnp.zeros_like(z)
    if case == "absent_class":
        labels = jnp.array([0, 1, 0, 0, 1, 1])  # class 2 absent from the batch
    grads = jax.grad(_all_losses, argnums=(0, 1))(z, z[::-1], p_e, p_c, labels)
    for g in grads:
        assert np.all(np.isfinite(g)), case


def test_jit_equals_eager():
    z = jnp.asarray(RNG.normal(size=(6, 4)), jnp.float32)
    labels = jnp.array([0, 1, 2, 0, 1, 2])
    p_e, p_c = (jnp.asarray(b) for b in _banks())
    eager = _all_losses(z, z[::-1], p_e, p_c, labels)
    jitted = jax.jit(_all_losses)(z, z[::-1], p_e, p_c, labels)
    np.testing.assert_allclose(eager, jitted, rtol=1e-5)
