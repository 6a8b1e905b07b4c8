"""The synthetic corpora: deterministic audio, right fields, emotion in prosody, a real domain gap."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from emodna_jax.audio import labels, synthetic_speech as ss


def test_same_seed_same_audio_and_order_independent():
    utts = ss.corpus_utterances("b", seed=3)
    first = ss.synthesize(utts[17])
    for u in utts[:3]:  # generating others in between must not change utterance 17
        ss.synthesize(u)
    again = ss.synthesize(ss.corpus_utterances("b", seed=3)[17])
    np.testing.assert_array_equal(first, again)
    other_seed = ss.synthesize(ss.corpus_utterances("b", seed=4)[17])
    assert first.shape != other_seed.shape or not np.allclose(first, other_seed)
    assert first.dtype == np.float32 and np.all(np.isfinite(first))
    assert 2.0 <= len(first) / 22050 <= 4.5 and np.abs(first).max() <= 0.95


def test_utterance_table():
    for corpus in ss.CORPUS_NAMES:
        utts = ss.corpus_utterances(corpus)
        assert len(utts) == 200
        assert ss.class_counts(utts) == {c: 40 for c in ss.CLASSES}
        speakers = {u.speaker.name: u.speaker.gender for u in utts}
        assert speakers == {f"{corpus}f1": "female", f"{corpus}f2": "female",
                            f"{corpus}m1": "male", f"{corpus}m2": "male"}
        assert len({u.file for u in utts}) == 200
        assert all(u.file.startswith(f"{u.speaker.name}/{u.emotion}_") for u in utts)
    with pytest.raises(ValueError, match="unknown synthetic corpus 'd'"):
        ss.corpus_utterances("d")


def test_speakers_differ_between_corpora_and_by_gender():
    for corpus in ss.CORPUS_NAMES:
        f0 = {s.gender: [] for s in ss.make_speakers(corpus)}
        for s in ss.make_speakers(corpus):
            f0[s.gender].append(s.f0_hz)
        assert min(f0["female"]) > max(f0["male"])  # speaker variation stays within a gender's range
    assert ss.make_speakers("a") != ss.make_speakers("b")


def test_emotion_effect_on_loudness_is_the_same_in_every_corpus():
    """Prosody is the emotion carrier: angry utterances are louder than neutral, neutral than sad,
    on average, in all three corpora (despite their different channels and gains)."""
    for corpus in ss.CORPUS_NAMES:
        utts = ss.corpus_utterances(corpus, per_speaker_and_class=3)
        level = {c: [] for c in ss.CLASSES}
        for u in utts:
            x = ss.synthesize(u)
            level[u.emotion].append(10 * np.log10(np.mean(x.astype(np.float64) ** 2)))
        mean = {c: np.mean(v) for c, v in level.items()}
        assert mean["angry"] > mean["neutral"] + 3 > mean["sad"] + 6, (corpus, mean)


def _load(data_dir, split):
    from data.synthetic import synthetic_dataset_builder

    builder = synthetic_dataset_builder.Builder(config="mfcc39", data_dir=data_dir)
    ds = builder.as_dataset(split=split).batch(256)
    out = {}
    for batch in ds.as_numpy_iterator():
        for k, v in batch.items():
            out.setdefault(k, []).append(v)
    return {k: np.concatenate(v) for k, v in out.items()}


def test_builder_fields(synthetic_data_dir):
    for corpus in ss.CORPUS_NAMES:
        d = _load(synthetic_data_dir, corpus)
        assert d["features"].shape == (200, 188, 39) and d["features"].dtype == np.float32
        assert np.all(np.isfinite(d["features"]))
        files = [f.decode() for f in d["file"]]
        names = [labels.LABEL_NAMES[i] for i in d["label"]]
        # The label, the speaker and the corpus agree with the generator's table, file by file.
        table = {u.file: u for u in ss.corpus_utterances(corpus)}
        assert sorted(files) == sorted(table)
        for f, name, spk, gender, corp in zip(files, names, d["speaker"], d["gender"], d["corpus"]):
            assert name == table[f].emotion
            assert spk.decode() == table[f].speaker.name and gender.decode() == table[f].speaker.gender
            assert corp.decode() == f"synthetic_{corpus}"
        assert sorted(set(names)) == sorted(ss.CLASSES)


def _mean_features(d):
    return d["features"].mean(1)


def test_domain_gap_and_imperfect_transfer(synthetic_data_dir):
    data = {c: _load(synthetic_data_dir, c) for c in ss.CORPUS_NAMES}
    # The corpus is trivially predictable from utterance-mean MFCCs: a real domain gap.
    x = np.concatenate([_mean_features(data[c]) for c in ss.CORPUS_NAMES])
    corpus_id = np.repeat(np.arange(3), 200)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    assert cross_val_score(clf, x, corpus_id, cv=3).mean() > 0.95

    # Emotion: a source-only classifier transfers above chance but far from perfectly, and worse
    # than within the source corpus (held-out speakers).
    def standardised(d):  # per-corpus statistics, no labels (the pipeline's default)
        f = d["features"]
        return ((f - f.mean((0, 1))) / f.std((0, 1))).mean(1)

    xa, ya = standardised(data["a"]), data["a"]["label"]
    spk = data["a"]["speaker"]
    held = np.isin(spk, [b"af2", b"am2"])
    within = clf.fit(xa[~held], ya[~held]).predict(xa[held])
    within_uar = balanced_accuracy_score(ya[held], within)
    clf.fit(xa, ya)
    for target in ("b", "c"):
        uar = balanced_accuracy_score(data[target]["label"], clf.predict(standardised(data[target])))
        assert 0.3 < uar < 0.85, (target, uar)
    assert 0.45 < within_uar < 0.95, within_uar
