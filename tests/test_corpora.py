"""corpora.load: synthetic splits, one's own folders (no collisions, rebuilt when changed), and the
real corpora in ../shared/corpora (skipped when absent).

The real-corpus tests build EmoDB, EMOVO and CASIA in full (2,323 files, mfcc39 only): measured
14-20 s in all on the 2-core CPU (benchmarks/RESULTS.md, "## Data"), well under the 2-minute budget
that would have moved them behind an opt-in variable. Their label and speaker
parsing is also checked through `list_records` alone, which decodes no audio.
"""

import collections
import os
import shutil

import numpy as np
import pytest
import soundfile as sf

from emodna_jax.audio import corpora, features, labels

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")
FIVE = ("angry", "fear", "happy", "neutral", "sad")


def read(ds) -> dict:
    """All examples of a corpora.load dataset as numpy arrays / lists of str."""
    out = collections.defaultdict(list)
    for ex in ds.as_numpy_iterator():
        for k, v in ex.items():
            out[k].append(v.decode() if isinstance(v, bytes) else v)
    return dict(out)


def test_synthetic_names_map_to_splits(synthetic_data_dir):
    for name in ("synthetic_a", "synthetic_c"):
        d = read(corpora.load(name, data_dir=synthetic_data_dir))
        assert len(d["file"]) == 200 and set(d["corpus"]) == {name}
        assert np.stack(d["features"]).shape == (200, 188, 39)
        counts = collections.Counter(labels.LABEL_NAMES[i] for i in d["label"])
        assert counts == {c: 40 for c in FIVE}
    half = read(corpora.load("synthetic_b", data_dir=synthetic_data_dir, split="train[:50%]"))
    assert len(half["file"]) == 100 and set(half["corpus"]) == {"synthetic_b"}


def _write(path, seconds=0.3, rate=16000, seed=0):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    x = np.random.default_rng(seed).normal(scale=0.1, size=int(seconds * rate)).astype(np.float32)
    sf.write(path, x, rate)


def test_folders_do_not_collide_and_rebuild_when_changed(tmp_path):
    data_dir = str(tmp_path / "tfds")
    # Two folders with the same basename: one labelled (class folders), one flat and unlabelled.
    labelled = tmp_path / "site1" / "calls"
    shutil.copytree(os.path.join(DATA, "audio_folder", "dummy_data"), labelled)
    flat = tmp_path / "site2" / "calls"
    for i in range(3):
        _write(str(flat / f"rec_{i}.wav"), seed=i)
    a = read(corpora.load(f"folder:{labelled}", data_dir=data_dir))
    b = read(corpora.load(f"folder:{flat}", data_dir=data_dir))
    assert sorted(a["file"]) == ["Angry/call_001.wav", "SAD/call_003.flac",
                                 "happiness/call_002.wav", "neutral/shift2/call_004.wav",
                                 "unknown/call_005.wav"]
    assert sorted(b["file"]) == ["rec_0.wav", "rec_1.wav", "rec_2.wav"]
    assert set(b["label"]) == {labels.UNKNOWN_LABEL} and set(b["corpus"]) == {"calls"}
    assert corpora.folder_data_dir(data_dir, str(labelled)) != corpora.folder_data_dir(
        data_dir, str(flat))
    assert len(os.listdir(os.path.join(data_dir, corpora.FOLDERS_SUBDIR))) == 2
    # Unchanged: reused (same files on disk). Changed: rebuilt with the new recording.
    shard = lambda: sorted(os.listdir(os.path.join(  # noqa: E731
        corpora.folder_data_dir(data_dir, str(flat)), "audio_folder", "mfcc39", "1.0.0")))
    before = shard()
    assert len(read(corpora.load(f"folder:{flat}", data_dir=data_dir))["file"]) == 3
    assert shard() == before
    _write(str(flat / "rec_3.wav"), seed=3)
    assert sorted(read(corpora.load(f"folder:{flat}", data_dir=data_dir))["file"]) == [
        "rec_0.wav", "rec_1.wav", "rec_2.wav", "rec_3.wav"]
    (flat / "rec_4.wav").write_bytes(b"not audio")  # a corrupt file: an error, or skipped
    with pytest.raises(features.AudioFileError, match=r"rec_4.wav.*EMODNA_SKIP_BAD_FILES=1"):
        corpora.load(f"folder:{flat}", data_dir=data_dir)
    skipped = read(corpora.load(f"folder:{flat}", data_dir=data_dir, skip_bad_files=True))
    assert len(skipped["file"]) == 4 and "rec_4.wav" not in skipped["file"]


# ---- the real corpora ---------------------------------------------------------------------------

ALL_COUNTS = {"emodb": 535, "emovo": 588, "casia": 1200}
FIVE_COUNTS = {
    "emodb": {"angry": 127, "fear": 69, "happy": 71, "neutral": 79, "sad": 62},
    "emovo": {c: 84 for c in FIVE},
    "casia": {c: 200 for c in FIVE},
}
SPEAKERS = {
    "emodb": {"03", "08", "09", "10", "11", "12", "13", "14", "15", "16"},
    "emovo": {"f1", "f2", "f3", "m1", "m2", "m3"},
    "casia": {"liuchanhg", "wangzhe", "zhaoquanyin", "ZhaoZuoxiang"},
}
ALL_CLASSES = {  # every emotion of each corpus, with its count
    "emodb": {"angry": 127, "boredom": 81, "disgust": 46, "fear": 69, "happy": 71, "neutral": 79,
              "sad": 62},
    "emovo": {c: 84 for c in FIVE + ("disgust", "surprise")},
    "casia": {c: 200 for c in FIVE + ("surprise",)},
}


def check_corpus(name, files, label_names, speakers):
    assert len(files) == ALL_COUNTS[name] == len(set(files))
    assert collections.Counter(label_names) == ALL_CLASSES[name]
    five = collections.Counter(x for x in label_names if x in FIVE)
    assert five == FIVE_COUNTS[name] and sum(five.values()) == {"emodb": 408, "emovo": 420,
                                                                 "casia": 1000}[name]
    assert set(speakers) == SPEAKERS[name]
    for f, label, speaker in zip(files, label_names, speakers):  # the label is where the name says
        stem = os.path.splitext(os.path.basename(f))[0]
        if name == "emodb":
            letters = {"W": "angry", "L": "boredom", "E": "disgust", "A": "fear", "F": "happy",
                       "T": "sad", "N": "neutral"}
            assert (speaker, letters[stem[5]]) == (stem[:2], label)
        elif name == "emovo":
            assert f.split("/")[0] == speaker == stem.split("-")[1]
        else:
            assert f.split("/")[:2] == [speaker, label]


@pytest.mark.parametrize("name", list(ALL_COUNTS))
def test_real_corpus_listing(corpora_root, name):
    """Label and speaker parsing on the real folder, no audio decoded."""
    records = corpora.builder_class(name).list_records(os.path.join(corpora_root, name))
    check_corpus(name, [r.file for r in records], [r.label for r in records],
                 [r.speaker for r in records])
    genders = {r.speaker: r.gender for r in records}
    assert sorted(s for s, g in genders.items() if g == "male") == sorted(
        {"emodb": ["03", "10", "11", "12", "15"], "emovo": ["m1", "m2", "m3"],
         "casia": ["ZhaoZuoxiang", "wangzhe"]}[name])


@pytest.fixture(scope="module")
def real_data_dir(corpora_root, tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds_real"))


@pytest.mark.parametrize("name", list(ALL_COUNTS))
def test_real_corpus_built(corpora_root, real_data_dir, name):
    """The full TFDS build through corpora.load, then the same counts from the stored examples."""
    d = read(corpora.load(name, corpora_root=corpora_root, data_dir=real_data_dir))
    check_corpus(name, d["file"], [labels.LABEL_NAMES[i] for i in d["label"]], d["speaker"])
    feats = np.stack(d["features"])
    assert feats.shape == (ALL_COUNTS[name], 188, 39) and np.all(np.isfinite(feats))
    assert set(d["corpus"]) == {name}
