"""Per-speaker normalisation with its minimum (config.normalization_min_per_speaker): speakers with
few recordings, each speaking one emotion, fall back to corpus statistics and keep their emotion;
speakers with enough recordings get their own statistics; the report names the fallback."""

import numpy as np
import pytest

from configs import default
from emodna_jax.audio import normalization
from emodna_jax.train import config_checks
from emodna_jax.audio import input_pipeline as ip
from emodna_jax.audio import labels

F = 2


def one_emotion_speakers(rng, *, n_small=6, per_small=4, n_large=2, per_large=10):
    """Features [N, 1, F] (T = 1, utterance functionals): coefficient 0 is +3 for "angry", -3 for
    "sad"; every speaker adds its own offset to both coefficients. Small speakers (below the
    minimum) each speak ONE emotion; large speakers speak both, alternating. Returns
    (features, emotion [N] in {0, 1}, speakers [N])."""
    xs, ys, ss = [], [], []
    for i in range(n_small + n_large):
        small = i < n_small
        n = per_small if small else per_large
        emotion = np.full(n, i % 2) if small else np.arange(n) % 2
        x = rng.normal(size=(n, 1, F)) + rng.normal(scale=2.0, size=(1, 1, F))
        x[:, 0, 0] += np.where(emotion == 0, 3.0, -3.0)
        xs.append(x)
        ys.append(emotion)
        ss += [f"{'small' if small else 'large'}{i}"] * n
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys), np.array(ss, dtype=object)


def class_gap(x, emotion, keep):
    """Difference of the class means of coefficient 0 over the examples `keep`."""
    v = x[keep, 0, 0]
    return v[emotion[keep] == 0].mean() - v[emotion[keep] == 1].mean()


def test_single_emotion_speakers_below_the_minimum_keep_their_emotion():
    x, y, spk = one_emotion_speakers(np.random.default_rng(0))
    small = np.char.startswith(spk.astype(str), "small")
    guarded = normalization.fit("speaker", x, spk, min_per_speaker=5)
    erased = normalization.fit("speaker", x, spk, min_per_speaker=1)
    assert sorted(guarded.fallback_speakers) == [f"small{i}" for i in range(6)]
    assert sorted(guarded.by_speaker) == ["large6", "large7"]
    assert len(guarded.speakers) == 8  # every id stays known (inference accepts a fallback speaker)
    xg, xe = normalization.apply(guarded, x, spk), normalization.apply(erased, x, spk)
    # Without the minimum each one-emotion speaker's mean IS its emotion, and subtracting it leaves
    # both classes at mean 0 exactly: the emotion is gone.
    assert abs(class_gap(xe, y, small)) < 1e-5
    # With the fallback the small speakers share the corpus' statistics: the +-3 gap survives (in
    # units of the corpus std), and a threshold at the midpoint separates most of them.
    mean, std = normalization.corpus_stats(x)
    np.testing.assert_allclose(class_gap(xg, y, small), class_gap(x, y, small) / std[0], rtol=1e-5)
    assert class_gap(xg, y, small) > 1.0
    mid = xg[small, 0, 0].mean()
    assert np.mean((xg[small, 0, 0] > mid) == (y[small] == 0)) > 0.8
    # Speakers above the minimum get their own statistics: mean 0, std 1, the numpy values.
    for s in ("large6", "large7"):
        own = x[spk == s].astype(np.float64)
        np.testing.assert_allclose(xg[spk == s], (own - own.mean((0, 1))) / own.std((0, 1)),
                                   rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(xg[spk == s].reshape(-1, F).mean(0), 0.0, atol=1e-5)
    # ... and the small ones exactly the corpus statistics.
    np.testing.assert_allclose(xg[small], (x[small] - mean) / std, rtol=1e-5, atol=1e-5)


def test_statistics_over_one_frame_and_many_frames_agree():
    """T = 1 (functionals) and the same numbers spread over T = 3 frames give the same statistics."""
    x = np.random.default_rng(1).normal(size=(12, 1, F))
    m1, s1 = normalization.corpus_stats(x)
    m3, s3 = normalization.corpus_stats(x.reshape(4, 3, F))
    np.testing.assert_allclose(m1, x[:, 0].mean(0))
    np.testing.assert_allclose((m1, s1), (m3, s3))
    with pytest.raises(ValueError, match="1 frame per example"):
        normalization.fit("utterance", x)


def test_one_speaker_id_for_the_whole_corpus_gets_corpus_statistics():
    x = np.random.default_rng(2).normal(size=(30, 1, F)) * 2 + 1
    stats = normalization.fit("speaker", x, np.array(["unknown"] * 30, dtype=object), min_per_speaker=20)
    assert stats.by_speaker == {} and stats.fallback_speakers == ()
    np.testing.assert_allclose(normalization.apply(stats, x, np.array(["unknown"] * 30)),
                               normalization.apply(normalization.fit("corpus", x), x))
    assert "one speaker id" in normalization.describe(stats, "mine")["text"]


def _corpus(name, x, y, spk):
    names = ["angry", "sad"]
    return ip.CorpusArrays(name, x, np.array([labels.LABEL_NAMES.index(names[v]) for v in y]),
                           spk, np.array([f"{name}/{i}.wav" for i in range(len(y))], dtype=object))


def test_task_data_reports_which_statistics_each_corpus_got():
    rng = np.random.default_rng(3)
    src = _corpus("src", *one_emotion_speakers(rng, n_small=0, n_large=3, per_large=8))
    tgt = _corpus("tgt", *one_emotion_speakers(rng, n_small=4, per_small=3, n_large=1, per_large=8))
    c = default.get_config()
    c.source, c.target, c.classes = "src", "tgt", "angry,sad"
    c.batch_size, c.eval_batch_size, c.normalization = 4, 4, "speaker"
    c.normalization_min_per_speaker = 5
    data = ip.create_task_data(c, num_devices=1, load_fn=lambda name, config, split: {"src": src, "tgt": tgt}[name])
    s_report, t_report = data.normalization_report
    assert s_report["per_speaker"] == ["large0", "large1", "large2"] and s_report["corpus_fallback"] == []
    assert t_report["corpus_fallback"] == ["small0", "small1", "small2", "small3"]
    assert t_report["text"] == ("target tgt: per-speaker statistics for 1 speaker(s); 4 speaker(s) with "
                                "fewer than 5 recordings fell back to corpus statistics "
                                "(small0, small1, small2, small3)")
    # The target's small speakers were standardised by the target's corpus statistics.
    small = np.char.startswith(tgt.speakers.astype(str), "small")
    mean, std = normalization.corpus_stats(tgt.features)
    np.testing.assert_allclose(data.target.features[small], (tgt.features[small] - mean) / std,
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("minimum", [1, 0, -3])
def test_config_check_refuses_a_minimum_below_two(minimum):
    c = default.get_config()
    c.normalization_min_per_speaker = minimum
    with pytest.raises(config_checks.ConfigError, match="normalization_min_per_speaker"):
        config_checks.validate(c)
