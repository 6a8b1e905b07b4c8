"""Bad input never mislabels silently: corrupt, empty or unreadable audio, unknown emotion codes,
names that do not parse and wrongly laid-out or missing folders raise errors that name the file
and what was expected; skip_bad_files skips (and logs) exactly the bad files instead.

Most checks go through `list_records` (no audio decoding); the audio errors build tiny corpora.
"""

import logging
import os
import shutil

import numpy as np
import pytest
import soundfile as sf

from emodna_jax.audio import audio_builder, corpora, features, labels

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")


def copy_dummy(name: str, dst) -> str:
    """A writable copy of data/<name>/dummy_data, as <dst>/<name> (a corpora_root layout)."""
    root = os.path.join(str(dst), name)
    shutil.copytree(os.path.join(DATA, name, "dummy_data"), root)
    return root


def write_wav(path: str, seconds: float = 0.3, rate: int = 16000, channels: int = 1) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    noise = np.random.default_rng(0).normal(scale=0.1, size=(int(seconds * rate), channels))
    sf.write(path, noise.astype(np.float32), rate)


def records(name, root, skip=False):
    bad = audio_builder.BadFiles(name, skip=skip)
    return corpora.builder_class(name).list_records(root, bad=bad), bad


@pytest.mark.parametrize("name, bad_file, code", [
    ("emodb", "wav/03a01Xa.wav", "'X'"),
    ("emovo", "f1/xyz-f1-b1.wav", "'xyz'"),
    ("ravdess", "Actor_01/03-01-09-01-01-01-01.wav", "'09'"),
    ("savee", "AudioData/DC/x01.wav", "'x'"),
])
def test_unknown_emotion_code_names_the_file(tmp_path, name, bad_file, code):
    root = copy_dummy(name, tmp_path)
    write_wav(os.path.join(root, bad_file))
    with pytest.raises(ValueError, match=f"unknown emotion code {code} in file '{bad_file}'") as e:
        records(name, root)
    assert "Valid codes" in str(e.value)
    kept, bad = records(name, root, skip=True)
    assert {r.file for r in kept} == set(r.file for r in records(name, os.path.join(
        DATA, name, "dummy_data"))[0])  # exactly the good files remain
    assert len(bad.skipped) == 1 and bad_file in bad.skipped[0]


@pytest.mark.parametrize("name, bad_file, expected", [
    ("emodb", "wav/notes.wav", "does not follow EmoDB's naming SSTTTEv"),
    ("emovo", "f1/dis-m1-b1.wav", "does not follow EMOVO's naming"),  # speaker != folder
    ("ravdess", "Actor_01/03-01-01-01-01-01-02.wav", "names actor 02 but lies in folder Actor_01"),
    ("ravdess", "Actor_01/01-01-01-01-01-01-01.wav", "not an audio-only RAVDESS file"),
])
def test_names_that_do_not_parse(tmp_path, name, bad_file, expected):
    root = copy_dummy(name, tmp_path)
    write_wav(os.path.join(root, bad_file))
    with pytest.raises(ValueError, match=expected) as e:
        records(name, root)
    assert repr(bad_file) in str(e.value) and "skip_bad_files" in str(e.value)


def test_wrong_layouts(tmp_path):
    casia = copy_dummy("casia", tmp_path)
    write_wav(os.path.join(casia, "wangzhe", "angery", "201.wav"))
    with pytest.raises(ValueError, match=r"folder wangzhe/'angery' is not an emotion folder"):
        records("casia", casia)
    emodb = tmp_path / "emodb_flat"
    shutil.copytree(os.path.join(DATA, "emodb", "dummy_data", "wav"), emodb)  # no wav/ level
    with pytest.raises(FileNotFoundError, match=r"expected the `wav` folder at .*emodb_flat/wav"):
        records("emodb", str(emodb))
    with pytest.raises(FileNotFoundError, match="no speaker folders"):
        records("emovo", str(emodb))
    mine = copy_dummy("audio_folder", tmp_path)
    write_wav(os.path.join(mine, "grumpy", "x.wav"))
    with pytest.raises(ValueError, match=r"sub-folder\(s\) \['grumpy'\] .* are not emotion names"):
        records("audio_folder", mine)
    shutil.rmtree(os.path.join(mine, "grumpy"))
    write_wav(os.path.join(mine, "Angry", "call_001.flac"))  # the same recording twice
    with pytest.raises(ValueError, match="same recording in two formats"):
        audio_builder.check_unique_stems(records("audio_folder", mine)[0], "audio_folder")


def test_manifest_errors(tmp_path):
    root = tmp_path / "calls"
    write_wav(str(root / "a.wav"))
    (root / "manifest.csv").write_text("path,label\na.wav,grumpy\n")
    with pytest.raises(ValueError, match=r"manifest.csv, line 2 \('a.wav'\): Unknown emotion name"):
        records("audio_folder", str(root))
    (root / "manifest.csv").write_text("path,label,speaker\na.wav,Anger,s1\nmissing.wav,,s2\n")
    with pytest.raises(features.AudioFileError, match=r"line 3: file 'missing.wav' not found"):
        records("audio_folder", str(root))
    kept, bad = records("audio_folder", str(root), skip=True)
    assert [(r.file, r.label, r.speaker) for r in kept] == [("a.wav", "angry", "s1")]
    assert len(bad.skipped) == 1


def test_corrupt_and_empty_audio_raise_or_skip(tmp_path, caplog):
    root = copy_dummy("emodb", tmp_path / "corpora")
    corrupt = os.path.join(root, "wav", "09b03Nb.wav")
    with open(corrupt, "wb") as f:
        f.write(os.urandom(1000))
    with pytest.raises(features.AudioFileError, match=r"Cannot read audio file .*09b03Nb.wav"):
        corpora.load("emodb", corpora_root=str(tmp_path / "corpora"), data_dir=str(tmp_path / "a"))
    empty = os.path.join(root, "wav", "13a05Ea.wav")
    sf.write(empty, np.zeros((0, 1), np.float32), 16000)
    with pytest.raises(features.AudioFileError, match=r"13a05Ea.wav' is empty"):
        features.load_audio(empty, sample_rate=22050)
    with caplog.at_level(logging.WARNING):
        ds = corpora.load("emodb", corpora_root=str(tmp_path / "corpora"),
                          data_dir=str(tmp_path / "b"), skip_bad_files=True)
        files = sorted(ex["file"].decode() for ex in ds.as_numpy_iterator())
    assert len(files) == 5 and "wav/09b03Nb.wav" not in files and "wav/13a05Ea.wav" not in files
    log = caplog.text
    assert "09b03Nb.wav" in log and "13a05Ea.wav" in log and "skipped 2 bad file(s)" in log


def test_missing_channel_and_non_finite_audio(tmp_path):
    path = str(tmp_path / "x.wav")
    write_wav(path, channels=2)
    with pytest.raises(features.AudioFileError, match=r"has 2 channels; channel 2 does not exist"):
        features.load_audio(path, sample_rate=16000, channel=2)
    with pytest.raises(features.AudioFileError, match="does not exist"):
        features.load_audio(str(tmp_path / "nope.wav"), sample_rate=16000)
    nan = str(tmp_path / "nan.wav")
    sf.write(nan, np.array([0.1, np.nan, 0.2] * 100, np.float32), 16000, subtype="FLOAT")
    with pytest.raises(features.AudioFileError, match=r"nan.wav' contains NaN or infinite"):
        features.load_audio(nan, sample_rate=16000)


def test_missing_corpus_folder_and_unknown_names(tmp_path):
    with pytest.raises(FileNotFoundError,
                       match=r"folder '.*/nowhere/emodb' does not exist: set config.corpora_root"):
        corpora.load("emodb", corpora_root=str(tmp_path / "nowhere"), data_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="config.corpora_root is not set"):
        corpora.load("casia", corpora_root=None, data_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"Unknown corpus 'emodbb'; valid names: emodb, emovo, "
                                         r"casia, ravdess, savee, synthetic_a, .*folder:PATH"):
        corpora.load("emodbb", data_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"folder '.*/absent' does not exist"):
        corpora.load(f"folder:{tmp_path / 'absent'}", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"has only the split 'train'.*not 'test'"):
        corpora.load("synthetic_a", data_dir=str(tmp_path), split="test")
    with pytest.raises(ValueError, match=r"Unknown feature config 'mfcc13'; valid: mfcc39"):
        corpora.load("synthetic_a", data_dir=str(tmp_path), features="mfcc13")
    with pytest.raises(ValueError, match=r"label 'grumpy' is not one of"):
        audio_builder.AudioRecord(path="x", file="x.wav", label="grumpy")
    assert labels.label_index("Unknown") == labels.UNKNOWN_LABEL
