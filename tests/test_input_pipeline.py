"""The input pipeline: no target labels in training, exact eval coverage, resumable streams,
label-free normalisation and clear refusals. Tiny in-memory corpora, plus one synthetic-corpora run."""

import functools

import numpy as np
import pytest

from configs import default
from emodna_jax.audio import input_pipeline as ip
from emodna_jax.audio import labels

T, F = 6, 3
FIVE = ("angry", "fear", "happy", "neutral", "sad")


def make_corpus(name, label_names, *, speakers=("s1", "s2"), seed=0, offset=0.0):
    """Features [N, T, F] whose [0, 0] entry is the example number (so batches can be traced back),
    labels as indices into LABEL_NAMES, speakers round-robin."""
    rng = np.random.default_rng(seed)
    n = len(label_names)
    x = (rng.normal(size=(n, T, F)) * (1 + np.arange(F)) + offset).astype(np.float32)
    x[:, 0, 0] = np.arange(n)
    return ip.CorpusArrays(
        name, x, np.array([labels.LABEL_NAMES.index(c) for c in label_names], dtype=np.int64),
        np.array([speakers[i % len(speakers)] for i in range(n)], dtype=object),
        np.array([f"{name}/{i:03d}.wav" for i in range(n)], dtype=object))


def config(**overrides):
    c = default.get_config()
    c.source, c.target = "src", "tgt"
    c.batch_size, c.eval_batch_size, c.normalization = 8, 8, "none"
    for k, v in overrides.items():
        c[k] = v
    return c


def task(corpora, c=None, **kwargs):
    c = c or config()
    return ip.create_task_data(c, load_fn=lambda name, config, split: corpora[name], **kwargs)


def labelled(n, seed=0, **kw):
    names = [FIVE[i % 5] for i in range(n)]
    return make_corpus("src", names, seed=seed, **kw)


def source_ids(batch):
    """Example numbers (from the [0, 0] marker) of a raw (normalization none) batch [D, b, T, F]."""
    return batch["features"][..., 0, 0].astype(int)


def test_train_batch_keys_shapes_and_no_target_labels():
    corpora = {"src": labelled(23), "tgt": make_corpus("tgt", [FIVE[i % 5] for i in range(17)])}
    data = task(corpora, num_devices=4)
    batch = next(data.train_batches())
    assert set(batch) == {"source", "target"}
    assert set(batch["source"]) == {"features", "label", "corpus"}
    assert set(batch["target"]) == {"features", "corpus", "index"}  # no label key at all
    # "index" finds each target example in the split: same features as the split's row.
    np.testing.assert_array_equal(batch["target"]["features"], data.target.features[batch["target"]["index"]])
    assert batch["source"]["features"].shape == (4, 2, T, F)
    assert batch["source"]["features"].dtype == np.float32
    assert batch["source"]["label"].dtype == np.int32
    np.testing.assert_array_equal(batch["source"]["corpus"], 0)
    np.testing.assert_array_equal(batch["target"]["corpus"], 1)
    # Labels travel with their examples: label id k is class FIVE[k] of example number i.
    ids = source_ids(batch["source"])
    np.testing.assert_array_equal(batch["source"]["label"], ids % 5)


def test_target_stream_does_not_depend_on_target_labels():
    """Same target features with shuffled labels -> identical train batches (no leak via order)."""
    names = [FIVE[i % 5] for i in range(17)]
    shuffled = list(np.random.default_rng(1).permutation(names))
    streams = []
    for target_names in (names, shuffled):
        data = task({"src": labelled(23), "tgt": make_corpus("tgt", target_names)}, num_devices=2)
        it = data.train_batches()
        streams.append([next(it)["target"]["features"] for _ in range(5)])
    for a, b in zip(*streams):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("num_devices", [1, 4])
def test_eval_counts_every_example_once(num_devices):
    target = make_corpus("tgt", [FIVE[i % 5] for i in range(37)])
    data = task({"src": labelled(20), "tgt": target}, num_devices=num_devices)
    seen, seen_labels = [], []
    for batch in data.eval_batches("target"):
        assert batch["features"].shape[:2] == batch["mask"].shape == batch["label"].shape
        assert batch["features"].shape[0] == num_devices
        keep = batch["mask"].reshape(-1)
        seen.extend(source_ids(batch).reshape(-1)[keep])
        seen_labels.extend(batch["label"].reshape(-1)[keep])
        np.testing.assert_array_equal(batch["index"].reshape(-1)[keep], source_ids(batch).reshape(-1)[keep])
        assert np.all(batch["label"].reshape(-1)[~keep] == -1)
    assert seen == list(range(37))  # every example once, in eval_examples order
    assert seen_labels == [i % 5 for i in range(37)]
    examples = data.eval_examples("target")
    assert [e.file for e in examples] == [f"tgt/{i:03d}.wav" for i in range(37)]
    assert [e.label for e in examples] == seen_labels


@pytest.mark.parametrize("num_devices", [1, 4])
def test_eval_counts_every_example_once_on_real_devices(num_devices):
    """The eval batches through jax.pmap on 1 and on 4 (forced CPU) devices: per-class counts summed
    with psum over devices and batches equal the split's own counts, padding contributing nothing."""
    import jax
    import jax.numpy as jnp

    assert jax.local_device_count() >= num_devices  # tests/conftest.py forces 4 CPU devices
    target = make_corpus("tgt", [FIVE[i % 5] for i in range(37)] + ["unknown"] * 4)
    data = task({"src": labelled(20), "tgt": target}, config(eval_batch_size=12),
                num_devices=num_devices)

    @functools.partial(jax.pmap, axis_name="d", devices=jax.local_devices()[:num_devices])
    def counts(batch):
        onehot = jax.nn.one_hot(batch["label"], 5) * batch["mask"][:, None]  # -1 -> all zeros
        per_class = jax.lax.psum(onehot.sum(0), "d")
        return per_class, jax.lax.psum(batch["mask"].sum(), "d")

    total_per_class, total = np.zeros(5), 0
    for batch in data.eval_batches("target"):
        per_class, n = counts(batch)
        total_per_class += np.asarray(per_class[0])
        total += int(n[0])
    assert total == 41  # every example once, the unlabelled ones included
    np.testing.assert_array_equal(total_per_class, [8, 8, 7, 7, 7])  # 37 labelled, i % 5


def test_eval_split_across_processes_counts_every_example_once():
    corpora = {"src": labelled(20), "tgt": make_corpus("tgt", [FIVE[i % 5] for i in range(37)])}
    seen, lengths = [], set()
    for p in range(3):
        batches = list(task(corpora, config(batch_size=6, eval_batch_size=6), num_devices=2,
                            process_index=p, process_count=3).eval_batches("target"))
        lengths.add(len(batches))
        for b in batches:
            seen.extend(source_ids(b)[b["mask"]])
    assert len(lengths) == 1  # every process runs the same number of eval steps (collectives)
    assert sorted(seen) == list(range(37))


def test_resume_yields_the_tail_of_the_stream():
    corpora = {"src": labelled(11), "tgt": make_corpus("tgt", [FIVE[i % 5] for i in range(7)])}
    data = task(corpora, num_devices=2)
    it = data.train_batches(0)
    full = [next(it) for _ in range(9)]
    resumed_it = task(corpora, num_devices=2).train_batches(start_step=6)  # a fresh process
    for step in range(6, 9):
        resumed = next(resumed_it)
        for stream in ("source", "target"):
            for key in full[step][stream]:
                np.testing.assert_array_equal(resumed[stream][key], full[step][stream][key])
    # Each epoch of the source (11 examples, 8 per step) is a permutation: every example appears
    # exactly once in positions [0, 11), [11, 22), ...
    order = np.concatenate([source_ids(b["source"]).reshape(-1) for b in full])
    for e in range(len(order) // 11):
        assert sorted(order[11 * e:11 * (e + 1)]) == list(range(11))
    other_seed = task(corpora, config(seed=1), num_devices=2).train_batch(0)
    assert not np.array_equal(other_seed["source"]["features"], full[0]["source"]["features"])


def test_process_slices_make_the_single_process_batch():
    corpora = {"src": labelled(13), "tgt": make_corpus("tgt", [FIVE[i % 5] for i in range(9)])}
    whole = task(corpora, num_devices=2).train_batch(3)
    parts = [task(corpora, num_devices=1, process_index=p, process_count=2).train_batch(3) for p in range(2)]
    for stream in ("source", "target"):
        joined = np.concatenate([p[stream]["features"].reshape((-1, T, F)) for p in parts])
        np.testing.assert_array_equal(joined, whole[stream]["features"].reshape((-1, T, F)))


def test_corpus_normalization_matches_numpy_and_uses_train_speakers_only():
    src = labelled(20, offset=5.0, speakers=("s1", "s2", "s3", "s4"))
    tgt = make_corpus("tgt", ["unknown"] * 9, seed=3, offset=-2.0)
    data = task({"src": src, "tgt": tgt}, config(normalization="corpus", source_val_speakers="s4"),
                num_devices=1)
    train = src.speakers != "s4"
    frames = src.features[train].reshape(-1, F).astype(np.float64)
    mean, std = frames.mean(0), frames.std(0)
    np.testing.assert_allclose(data.source.features, (src.features[train] - mean) / std, rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(data.source_val.features, (src.features[~train] - mean) / std,
                               rtol=1e-5, atol=1e-5)  # held-out speakers use the training statistics
    t_frames = tgt.features.reshape(-1, F).astype(np.float64)
    np.testing.assert_allclose(data.target.features, (tgt.features - t_frames.mean(0)) / t_frames.std(0),
                               rtol=1e-5, atol=1e-5)
    utt = task({"src": src, "tgt": tgt}, config(normalization="utterance"), num_devices=1)
    x = src.features.astype(np.float64)
    np.testing.assert_allclose(utt.source.features, (x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True),
                               rtol=1e-5, atol=1e-5)


def test_speaker_normalization_standardises_each_speaker_by_its_own_frames():
    src = labelled(20, offset=5.0, speakers=("s1", "s2", "s3", "s4"))
    tgt = make_corpus("tgt", ["unknown"] * 9, speakers=("t1", "t2", "t3"), seed=3, offset=-2.0)
    tgt.features[tgt.speakers == "t2"] += 10.0  # one target speaker far from the others
    data = task({"src": src, "tgt": tgt}, config(normalization="speaker", source_val_speakers="s4",
                       normalization_min_per_speaker=2),
                num_devices=1)

    def own(arrays, speaker):
        x = arrays.features[arrays.speakers == speaker].astype(np.float64)
        frames = x.reshape(-1, F)
        return (x - frames.mean(0)) / frames.std(0)

    for speaker in ("t1", "t2", "t3"):
        np.testing.assert_allclose(data.target.features[tgt.speakers == speaker], own(tgt, speaker),
                                   rtol=1e-5, atol=1e-5)
    train = src.speakers != "s4"
    for speaker in ("s1", "s2", "s3"):
        np.testing.assert_allclose(data.source.features[src.speakers[train] == speaker], own(src, speaker),
                                   rtol=1e-5, atol=1e-5)
    # A held-out source speaker is standardised by its own frames, as a new corpus' speaker is.
    np.testing.assert_allclose(data.source_val.features, own(src, "s4"), rtol=1e-5, atol=1e-5)
    # Each speaker ends at mean 0 and std 1 per coefficient: the t2 offset is gone.
    t2 = data.target.features[tgt.speakers == "t2"].reshape(-1, F)
    np.testing.assert_allclose(t2.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(t2.std(0), 1.0, atol=1e-4)


def test_speaker_normalization_falls_back_to_the_corpus_and_refuses_missing_ids():
    from emodna_jax.audio import normalization
    x = np.random.default_rng(0).normal(size=(6, T, F)).astype(np.float32) * 3 + 1
    stats = normalization.fit("speaker", x, np.array(["a", "a", "a", "b", "b", "b"], dtype=object))
    corpus = normalization.fit("corpus", x)
    np.testing.assert_allclose(normalization.apply(stats, x[:2]), normalization.apply(corpus, x[:2]))
    unseen = normalization.apply(stats, x[:2], np.array(["c", "a"], dtype=object))
    np.testing.assert_allclose(unseen[0], normalization.apply(corpus, x[:1])[0], rtol=1e-6)
    assert not np.allclose(unseen[1], normalization.apply(corpus, x[1:2])[0])
    with pytest.raises(ValueError, match="speaker id per example"):
        normalization.fit("speaker", x, None)


def test_source_val_speakers_leave_the_train_stream():
    src = labelled(20, speakers=("s1", "s2", "s3", "s4"))
    data = task({"src": src, "tgt": labelled(10)}, config(source_val_speakers="s2, s4"), num_devices=2)
    assert data.num_source == 10
    held = set(np.flatnonzero(np.isin(src.speakers, ["s2", "s4"])))
    it = data.train_batches()
    seen = set(np.concatenate([source_ids(next(it)["source"]).reshape(-1) for _ in range(6)]))
    assert seen == set(range(20)) - held
    assert {e.speaker for e in data.eval_examples("source_val")} == {"s2", "s4"}
    val_ids = np.concatenate([source_ids(b)[b["mask"]] for b in data.eval_batches("source_val")])
    assert set(val_ids) == held
    with pytest.raises(ValueError, match="s9, not speakers of 'src'"):
        task({"src": src, "tgt": labelled(10)}, config(source_val_speakers="s9"), num_devices=1)
    with pytest.raises(ValueError, match="needs config.source_val_speakers"):
        next(task({"src": src, "tgt": labelled(10)}, num_devices=1).eval_batches("source_val"))


def test_class_filter_remap_and_unlabelled_target():
    names = ["surprise", "sad", "angry", "unknown", "disgust", "angry", "fear", "happy", "neutral"]
    target = make_corpus("tgt", names)
    data = task({"src": labelled(10), "tgt": target}, config(classes="sad,angry,fear,happy,neutral"),
                num_devices=1)
    # surprise and disgust leave the target (train stream AND eval); unknown stays with label -1.
    assert [e.file for e in data.eval_examples()] == [f"tgt/{i:03d}.wav" for i in (1, 2, 3, 5, 6, 7, 8)]
    assert [e.label for e in data.eval_examples()] == [0, 1, -1, 1, 2, 3, 4]
    assert data.num_target == 7
    unlabelled = task({"src": labelled(10), "tgt": make_corpus("tgt", ["unknown"] * 5)}, num_devices=1)
    assert unlabelled.num_target == 5 and all(e.label == -1 for e in unlabelled.eval_examples())


def test_refusals():
    four = make_corpus("tgt", ["angry", "fear", "happy", "neutral"] * 2)
    with pytest.raises(ValueError, match=r"target corpus 'tgt' has no examples of class\(es\) sad"):
        task({"src": labelled(10), "tgt": four}, num_devices=1)
    with pytest.raises(ValueError, match=r"source corpus 'src' has no examples of class\(es\) sad"):
        task({"src": dataclass_rename(four, "src"), "tgt": labelled(10)}, num_devices=1)
    with pytest.raises(ValueError, match="batch_size=8 is not divisible by 3"):
        task({"src": labelled(10), "tgt": labelled(10)}, num_devices=3)
    with pytest.raises(ValueError, match="source corpus 'src' has no labelled example"):
        task({"src": make_corpus("src", ["unknown"] * 4), "tgt": labelled(10)}, num_devices=1)
    with pytest.raises(ValueError, match="eval split 'test' is unknown"):
        next(task({"src": labelled(10), "tgt": labelled(10)}, num_devices=1).eval_batches("test"))


def dataclass_rename(arrays, name):
    return ip.CorpusArrays(name, arrays.features, arrays.labels, arrays.speakers, arrays.files)


def test_prefetch_reraises_worker_errors():
    def make(step):
        if step == 2:
            raise RuntimeError("boom at step 2")
        return {"step": step}

    it = ip._prefetch(make, 0, depth=2)
    assert next(it) == {"step": 0} and next(it) == {"step": 1}
    with pytest.raises(RuntimeError, match="boom at step 2"):
        next(it)


def test_synthetic_task_through_tfds(synthetic_affect_dir):
    """The default task (synthetic_a -> synthetic_b) through corpora.load and the built TFRecords."""
    c = default.get_config()
    c.data_dir, c.batch_size, c.eval_batch_size = synthetic_affect_dir, 16, 64
    c.source_val_speakers = "am2"
    data = ip.create_task_data(c, num_devices=4)
    assert data.class_names == FIVE and data.feature_shape == (1, 78)  # the default front end, affect
    assert (data.num_source, data.num_target) == (150, 200)
    batch = data.train_batch(0)
    assert batch["source"]["features"].shape == (4, 4, 1, 78)
    assert set(batch["target"]) == {"features", "corpus", "index"}  # no target label in training
    # Speaker normalisation: the target's own frames have zero mean and unit std per coefficient.
    frames = data.target.features.reshape(-1, 78)
    np.testing.assert_allclose(frames.mean(0), 0, atol=1e-3)
    np.testing.assert_allclose(frames.std(0), 1, atol=1e-3)
    n_eval = sum(int(b["mask"].sum()) for b in data.eval_batches("target"))
    assert n_eval == 200 and len(data.eval_examples("source_val")) == 50
    assert {e.speaker for e in data.eval_examples("source")} == {"af1", "af2", "am1"}
    # "auto": the fixed held-out speakers of a known corpus (one female, one male here).
    c.source_val_speakers = "auto"
    auto = ip.create_task_data(c, num_devices=4)
    assert {e.speaker for e in auto.eval_examples("source_val")} == {"af1", "am1"}
    assert auto.num_source == 100
    c.source, c.target = "synthetic_b", "synthetic_a"
    assert {e.speaker for e in ip.create_task_data(c, num_devices=4).eval_examples("source_val")} == {"bf1", "bm1"}


def test_auto_val_speakers_fixed_per_known_corpus_else_every_fifth_and_refused_below_five():
    assert ip.auto_val_speakers("casia", ["wangzhe", "liuchanhg"]) == ["wangzhe"]
    names = [f"s{i:02d}" for i in range(12)]
    assert ip.auto_val_speakers("folder:/x", names[::-1] * 2) == ["s01", "s06", "s11"]
    with pytest.raises(ValueError, match="has 4 .*select.val_speakers"):
        ip.auto_val_speakers("mycorpus", ["a", "b", "c", "d"])
