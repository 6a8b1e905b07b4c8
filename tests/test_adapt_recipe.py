"""configs/adapt.py end to end: labelled corpora + a flat folder of unlabelled audio -> a named run ->
predictions of a long recording by segments, a silent one and a corrupt one; and the recipe's
choices (recipe.py) and the pooled source (source_pool.py) on their own.

The two labelled sources are synthetic corpora held in memory (MFCCs of 15 utterances each: the
TFDS build of the whole synthetic family takes a minute); the target goes through the real path
(a flat folder of 10 files, built by the audio_folder builder). The front end is mfcc39 with the
mlp backbone: the affect front end takes about a second a file. Measured on the 2 shared cores
under a load of 9: about 55 s of CPU time (train 32 s, most of it compiling), 100-250 s of wall time.
"""

import csv
import functools
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from configs import adapt
from emodna_jax.audio import features, input_pipeline, labels, source_pool, synthetic_speech
from emodna_jax.eval import reporting
from emodna_jax.train import config_checks, recipe, trainer
from emodna_jax.workflows import inference

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RATE = 22050  # mfcc39's rate: no resampling anywhere
CLASSES = list(synthetic_speech.CLASSES)


def synthetic_arrays(corpus: str, step: int, count: int) -> input_pipeline.CorpusArrays:
    """MFCCs of `count` utterances of synthetic corpus `corpus` (every `step`-th), labelled."""
    config = features.get_feature_config("mfcc39")
    utts = synthetic_speech.corpus_utterances(corpus)[::step][:count]
    x = np.stack([features.compute_features(synthetic_speech.synthesize(u, sample_rate=RATE), config)
                  for u in utts])
    return input_pipeline.CorpusArrays(
        f"synthetic_{corpus}", x, np.array([labels.LABEL_NAMES.index(u.emotion) for u in utts], np.int64),
        np.array([u.speaker.name for u in utts], object), np.array([u.file for u in utts], object))


@pytest.fixture(scope="module")
def sources():
    # every 10th utterance: one of each class and speaker in turn (3 speakers x 5 classes)
    return {"synthetic_a": synthetic_arrays("a", 10, 15), "synthetic_c": synthetic_arrays("c", 10, 15)}


@pytest.fixture(scope="module", autouse=True)
def compilation_cache(tmp_path_factory):
    """predict_files compiles the eval step the training run compiled: a persistent cache reuses it."""
    import jax

    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
             "jax_persistent_cache_min_entry_size_bytes")
    before = {n: getattr(jax.config, n) for n in names}
    for name, value in zip(names, (str(tmp_path_factory.mktemp("adapt_jax_cache")), 0.0, 0)):
        jax.config.update(name, value)
    yield
    for name, value in before.items():
        jax.config.update(name, value)


@pytest.fixture
def in_memory_sources(monkeypatch, sources):
    """The synthetic sources come from memory; the target folder through TFDS as a user's would."""
    original = input_pipeline.load_corpus_arrays

    def load(name, *, config, split):
        return sources[name] if name in sources else original(name, config=config, split=split)

    monkeypatch.setattr(input_pipeline, "create_task_data", functools.partial(
        input_pipeline.create_task_data, load_fn=load))


def test_recipe_fills_sources_classes_and_name(tmp_path):
    root, folder = tmp_path / "corpora", tmp_path / "calls"
    for name in ("casia", "emodb", "not_a_corpus"):
        (root / name).mkdir(parents=True)
    folder.mkdir()
    c = adapt.get_config()
    c.corpora_root, c.target = str(root), f"folder:{folder}/"
    recipe.resolve(c)
    assert (c.source, c.classes, c.task) == ("emodb,casia", "angry,fear,happy,neutral,sad", "emodb+casia2calls")
    config_checks.validate(c)  # the resolved config is a valid one
    assert recipe.resolve(c).to_dict() == c.to_dict()  # resolved: unchanged
    # Named sources, and a class set cut to what both have (RAVDESS has calm, no ...: all five here).
    c = adapt.get_config()
    c.target, c.source = "emovo", "casia,emodb"
    c.corpora_root = str(root)
    recipe.resolve(c)
    assert c.task == "casia+emodb2emovo" and c.classes == "angry,fear,happy,neutral,sad"
    # A named target corpus under the root is not also a source.
    (root / "emovo").mkdir()
    c = adapt.get_config()
    c.corpora_root, c.target = str(root), "emovo"
    assert recipe.resolve(c).source == "emodb,casia"


@pytest.mark.parametrize("fields,message", [
    ({"target": ""}, "config.target is not set"),
    ({"target": "folder:/tmp", "corpora_root": "/nonexistent"}, "found no labelled corpus"),
])
def test_recipe_refuses_what_it_cannot_choose(fields, message):
    c = adapt.get_config()
    c.update(fields)
    with pytest.raises(config_checks.ConfigError, match=message):
        recipe.resolve(c)


@pytest.mark.parametrize("source,classes,message", [
    ("casia,emodb", "angry,surprise", "config.source='casia,emodb' has no surprise"),  # CASIA has it, EmoDB not
    ("casia,casia", "angry,sad", "name each source corpus once"),
    ("casia,atlantis", "angry,sad", "config.source='atlantis' is an unknown corpus"),
])
def test_a_pooled_source_is_checked_corpus_by_corpus(source, classes, message):
    c = adapt.get_config()
    c.update({"source": source, "classes": classes, "target": "emovo", "task": "x"})
    with pytest.raises(config_checks.ConfigError, match=message):
        config_checks.validate(c)


def test_collapse_warning_above_seventy_percent_of_one_class():
    names = ["angry", "happy", "sad"]
    assert reporting.collapse_warning([7, 2, 1], names) is None  # exactly 70 %: not above
    assert reporting.collapse_warning([0, 0, 0], names) is None
    warning = reporting.collapse_warning([1, 8, 1], names)
    assert warning.startswith("80% of the 10 target predictions are 'happy' (more than 70%)")


def test_balanced_pooled_stream_is_a_seeded_epoch_stream_per_source():
    groups = (np.arange(10), np.arange(10, 13))  # 10 and 3 examples
    stream = functools.partial(input_pipeline.stream_indices, seed=0)
    first = source_pool.balanced_indices(groups, start=0, count=12, stream_indices=stream)
    np.testing.assert_array_equal(first[1::2] >= 10, True)  # odd positions: the small corpus
    np.testing.assert_array_equal(first[0::2] < 10, True)
    assert sorted(first[1::2][:3]) == [10, 11, 12]  # its first epoch: a permutation of it
    # Any window equals the same positions of a longer one (resume, processes).
    np.testing.assert_array_equal(
        source_pool.balanced_indices(groups, start=5, count=4, stream_indices=stream), first[5:9])


def test_pooled_source_is_standardised_per_corpus_and_batched_evenly(sources):
    c = adapt.get_config("smoke")
    c.update({"source": "synthetic_a,synthetic_c", "target": "synthetic_b", "classes": ",".join(CLASSES),
              "task": "x", "normalization": "corpus", "batch_size": 8})
    data = input_pipeline.create_task_data(
        c, num_devices=1, load_fn=lambda n, config, split: sources.get(n, sources["synthetic_a"]))
    assert [r["corpus"] for r in data.normalization_report] == [
        "source synthetic_a", "source synthetic_c", "target synthetic_b"]
    x, speakers = data.source.features, data.source.speakers
    for name in ("synthetic_a", "synthetic_c"):  # each corpus standardised by its own statistics
        own = np.array([s.startswith(name + "/") for s in speakers])
        assert own.sum() == 15
        np.testing.assert_allclose(x[own].mean(axis=(0, 1)), 0.0, atol=1e-4)
    batch = data.train_batch(3)["source"]
    chosen = source_pool.balanced_indices(data.source_groups, start=3 * 8, count=8, stream_indices=(
        functools.partial(input_pipeline.stream_indices, seed=c.seed)))
    np.testing.assert_array_equal(batch["features"].reshape(8, *x.shape[1:]), x[chosen])
    assert sorted(speakers[i].split("/")[0] for i in chosen) == ["synthetic_a"] * 4 + ["synthetic_c"] * 4


def test_per_corpus_sources_get_one_corpus_id_each(sources):
    """config.multi_source="per_corpus" (configs/adapt.py's default): source corpus k has id k, the
    target K, and the model has K + 1 corpus classes and corpus prototypes; "pooled": ids 0 and 1."""
    import jax
    import jax.numpy as jnp

    from emodna_jax.train import parallel, step_functions, train_state

    assert adapt.get_config().multi_source == "per_corpus"
    c = adapt.get_config("smoke")
    c.update({"source": "synthetic_a,synthetic_c", "target": "synthetic_b", "classes": ",".join(CLASSES),
              "task": "x", "normalization": "corpus", "batch_size": 8})
    c.model.backbone = "mlp"
    load = lambda n, config, split: sources.get(n, sources["synthetic_a"])  # noqa: E731
    data = input_pipeline.create_task_data(c, num_devices=1, load_fn=load)
    assert data.num_corpora == 3
    batch = data.train_batch(3)
    chosen = source_pool.balanced_indices(data.source_groups, start=3 * 8, count=8, stream_indices=(
        functools.partial(input_pipeline.stream_indices, seed=c.seed)))
    owners = [str(data.source.speakers[i]).split("/")[0] for i in chosen]
    expected = [["synthetic_a", "synthetic_c"].index(o) for o in owners]
    np.testing.assert_array_equal(batch["source"]["corpus"].reshape(8), expected)
    np.testing.assert_array_equal(expected, np.arange(24, 32) % 2)  # balanced: corpora alternate
    np.testing.assert_array_equal(batch["target"]["corpus"], 2)
    fns = step_functions.make_step_functions(c, num_classes=len(CLASSES), num_corpora=data.num_corpora,
                                             backend=parallel.create_backend("pmap", num_devices=1))
    state = jax.eval_shape(lambda: train_state.create_train_state(
        c, fns.model, fns.tx, feature_shape=data.feature_shape))
    assert state.params["corpus_classifier"]["kernel"].shape[-1] == 3
    assert state.prototypes.corpus.shape[0] == 3 and fns.settings.num_corpora == 3
    # A source split is evaluated with each example's own corpus' BatchNorm statistics.
    from emodna_jax.eval import evaluation
    from emodna_jax.train import model_setup

    state = model_setup.init_state(c, fns, data)
    shift = lambda path, a: a + jnp.arange(3.0)[:, None] if path[-1].key == "mean" else a  # noqa: E731
    state = state.replace(batch_stats=jax.tree_util.tree_map_with_path(shift, state.batch_stats))
    source = evaluation.predict(fns, fns.backend.replicate(state), data.eval_batches("source"), split="source")
    corpus = data.source_corpus(data.source)
    np.testing.assert_array_equal(np.bincount(corpus), [15, 15])
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    for k in (0, 1):
        x = jnp.asarray(data.source.features[corpus == k])
        own = fns.model.clone(axis_name=None).apply(variables, x, train=False,
                                                    source_corpus=jnp.full(len(x), k))
        np.testing.assert_allclose(source.z_e[corpus == k], own["z_e"], rtol=1e-5, atol=1e-5)
    assert not np.allclose(source.z_e[corpus == 1], fns.model.clone(axis_name=None).apply(
        variables, jnp.asarray(data.source.features[corpus == 1]), train=False, stream=0)["z_e"], atol=1e-3)
    c.multi_source = "pooled"
    pooled = input_pipeline.create_task_data(c, num_devices=1, load_fn=load).train_batch(3)
    assert pooled["source"]["corpus"].max() == 0 and pooled["target"]["corpus"].min() == 1
    c.multi_source = "by_speaker"
    with pytest.raises(config_checks.ConfigError, match="config.multi_source='by_speaker' is unknown"):
        config_checks.validate(c)


def write_wav(path, wave):
    sf.write(str(path), wave, RATE, subtype="FLOAT")


def test_folder_to_named_run_to_segment_predictions(tmp_path, in_memory_sources, capsys):
    """The recipe on a flat folder of unlabelled synthetic audio (no labels anywhere), then
    predictions of a long recording (utterances with silence between them: one segment each, within
    0.35 s of where it was placed: the utterances' own leading and trailing pauses are 0.1-0.3 s),
    a silent recording (no speech) and a corrupt file (skipped, the others still predicted)."""
    folder = tmp_path / "myfolder"
    folder.mkdir()
    for i, utt in enumerate(synthetic_speech.corpus_utterances("b")[::20][:10]):
        write_wav(folder / f"rec{i:03d}.wav", synthetic_speech.synthesize(utt, sample_rate=RATE))
    c = adapt.get_config("smoke")
    c.update({"target": f"folder:{folder}", "source": "synthetic_a,synthetic_c", "features": "mfcc39",
              "data_dir": str(tmp_path / "tfds"), "plots": False, "num_devices": 1})
    c.model.backbone = "mlp"  # fast to compile; the recipe is what is tested
    workdir = str(tmp_path / "run")
    results = trainer.train_and_evaluate(c, workdir)
    assert results["task"] == "synthetic_a+synthetic_c2myfolder"
    assert results["source"] == "synthetic_a,synthetic_c" and results["classes"] == CLASSES
    assert results["uar"] is None and sum(results["prediction_histogram"].values()) == 10
    assert [n["corpus"] for n in results["normalization"]] == [
        "source synthetic_a", "source synthetic_c", f"target folder:{folder}"]
    assert "pseudo_label_counts_run" in results
    histogram = np.array(list(results["prediction_histogram"].values()))
    assert bool(results["warnings"]) == (histogram.max() > 0.7 * histogram.sum())

    new = tmp_path / "new"
    new.mkdir()
    rng = np.random.default_rng(0)
    parts, placed, t = [], [], 0.0
    for utt in synthetic_speech.corpus_utterances("b")[3::41][:4]:
        gap, wave = np.zeros(int(rng.uniform(1.0, 2.0) * RATE), np.float32), synthetic_speech.synthesize(
            utt, sample_rate=RATE)
        parts += [gap, wave]
        placed.append((t + len(gap) / RATE, t + (len(gap) + len(wave)) / RATE))
        t = placed[-1][1]
    write_wav(new / "long.wav", np.concatenate(parts + [np.zeros(RATE, np.float32)]))
    write_wav(new / "silent.wav", np.zeros(10 * RATE, np.float32))
    (new / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot audio")
    rows = inference.predict_files(workdir, str(new))
    by_file = {}
    for row in rows:
        by_file.setdefault(os.path.basename(row["file"]), []).append(row)
    assert sorted(by_file) == ["corrupt.wav", "long.wav", "silent.wav"]
    long_rows = by_file["long.wav"]
    segments = [r for r in long_rows if r["segment"] != "all"]
    np.testing.assert_allclose([(r["start_s"], r["end_s"]) for r in segments], placed, atol=0.35)
    summary = long_rows[-1]
    assert summary["segment"] == "all" and summary["note"].startswith("4 segments, ")
    weights = np.array([r["end_s"] - r["start_s"] for r in segments])
    mean = weights @ np.array([[r[k] for k in CLASSES] for r in segments]) / weights.sum()
    np.testing.assert_allclose([summary[k] for k in CLASSES], mean, rtol=1e-6)
    assert summary["prediction"] == CLASSES[int(mean.argmax())]
    assert [(r["segment"], r["note"], r["prediction"]) for r in by_file["silent.wav"]] == [("all", "no speech", "")]
    corrupt = by_file["corrupt.wav"]
    assert len(corrupt) == 1 and corrupt[0]["note"].startswith("skipped: ") and "re-export or remove" in corrupt[0]["note"]
    out = capsys.readouterr().out
    assert "skipped" in out and "corrupt.wav" in out and "silent.wav: no speech" in out
    with open(os.path.join(workdir, "predictions.csv")) as f:
        written = list(csv.DictReader(f))
    assert len(written) == len(rows) == 4 + 1 + 1 + 1
    assert list(written[0]) == ["file", "segment", "start_s", "end_s", "prediction", *CLASSES, "note"]


def test_train_py_refuses_the_recipe_without_corpora(tmp_path):
    folder = tmp_path / "calls"
    folder.mkdir()
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "train.py"), "--config=configs/adapt.py:smoke",
         f"--config.target=folder:{folder}", f"--config.corpora_root={tmp_path / 'empty'}",
         f"--workdir={tmp_path / 'run'}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "[train] refused: config.source='auto' found no labelled corpus" in proc.stderr, proc.stderr[-2000:]


def test_a_selection_runs_folder_stands_for_its_chosen_model(tmp_path):
    """eval.py --workdir=DIR of a run trained with a grid (DIR holds selection.json and results.json,
    the model is in DIR/refit or DIR/grid/<point>): the chosen model, also after DIR was moved."""
    import json

    run = tmp_path / "run"
    (run / "refit").mkdir(parents=True)
    (run / "grid" / "p1").mkdir(parents=True)
    for folder in (run / "refit", run / "grid" / "p1"):
        (folder / "config.json").write_text("{}")
    selected = {"point": "p1", "workdir": "/moved/away/refit", "refit": True}
    (run / "results.json").write_text(json.dumps({"selected": selected}))
    assert inference.model_dir(str(run)) == str(run / "refit")
    (run / "results.json").write_text(json.dumps({"selected": {**selected, "refit": False}}))
    assert inference.model_dir(str(run)) == str(run / "grid" / "p1")
    assert inference.model_dir(str(run / "refit")) == str(run / "refit")  # a plain run: itself
