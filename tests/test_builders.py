"""Every audio TFDS builder on its dummy_data (laid out like the real corpus: real names, rates and
channel counts), built into a temporary data_dir: labels, speakers, genders file by file against
tables written here by hand from the corpora's documentation (not from emodna_jax.audio.labels, so that a
wrong code table fails), plus the checks tfds.testing.DatasetBuilderTestCase would make (that class
needs `dill`, which the stack does not install): split sizes in the DatasetInfo, a reload from disk,
unique keys, features of the declared shape and dtype.
"""

import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from emodna_jax.audio import corpora, features, labels

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")

# file (relative to the corpus root) -> (label, speaker, gender)
EXPECTED = {
    "emodb": {
        "wav/03a01Wa.wav": ("angry", "03", "male"),  # W = Wut (anger)
        "wav/08a02Fa.wav": ("happy", "08", "female"),  # F = Freude
        "wav/09b03Nb.wav": ("neutral", "09", "female"),
        "wav/11b01Lc.wav": ("boredom", "11", "male"),  # L = Langeweile
        "wav/13a05Ea.wav": ("disgust", "13", "female"),  # E = Ekel
        "wav/14a07Ab.wav": ("fear", "14", "female"),  # A = Angst
        "wav/16b10Ta.wav": ("sad", "16", "female"),  # T = Trauer
    },
    "emovo": {
        "f1/dis-f1-b1.wav": ("disgust", "f1", "female"),
        "f1/rab-f1-n3.wav": ("angry", "f1", "female"),  # rabbia
        "f3/sor-f3-n5.wav": ("surprise", "f3", "female"),  # sorpresa
        "m1/neu-m1-l4.wav": ("neutral", "m1", "male"),
        "m2/gio-m2-l1.wav": ("happy", "m2", "male"),  # gioia
        "m2/tri-m2-d2.wav": ("sad", "m2", "male"),  # tristezza
        "m3/pau-m3-b2.wav": ("fear", "m3", "male"),  # paura
    },
    "casia": {
        "ZhaoZuoxiang/fear/202.wav": ("fear", "ZhaoZuoxiang", "male"),
        "liuchanhg/angry/201.wav": ("angry", "liuchanhg", "female"),
        "liuchanhg/sad/214.wav": ("sad", "liuchanhg", "female"),
        "wangzhe/happy/230.wav": ("happy", "wangzhe", "male"),
        "wangzhe/surprise/250.wav": ("surprise", "wangzhe", "male"),
        "zhaoquanyin/neutral/240.wav": ("neutral", "zhaoquanyin", "female"),
    },
    "ravdess": {  # third field the emotion, last the actor (odd male, even female)
        "Actor_01/03-01-01-01-01-01-01.wav": ("neutral", "01", "male"),
        "Actor_01/03-01-05-02-02-01-01.wav": ("angry", "01", "male"),
        "Actor_02/03-01-02-01-01-02-02.wav": ("calm", "02", "female"),
        "Actor_02/03-01-03-02-01-01-02.wav": ("happy", "02", "female"),
        "Actor_12/03-01-04-01-02-02-12.wav": ("sad", "12", "female"),
        "Actor_12/03-01-06-02-01-01-12.wav": ("fear", "12", "female"),
        "Actor_23/03-01-08-02-02-02-23.wav": ("surprise", "23", "male"),
        "Actor_23/03-02-07-01-01-01-23.wav": ("disgust", "23", "male"),  # song
    },
    "savee": {
        "AudioData/DC/a01.wav": ("angry", "DC", "male"),
        "AudioData/DC/sa03.wav": ("sad", "DC", "male"),
        "AudioData/JE/d02.wav": ("disgust", "JE", "male"),
        "AudioData/JE/su15.wav": ("surprise", "JE", "male"),
        "AudioData/JK/f07.wav": ("fear", "JK", "male"),
        "AudioData/JK/h11.wav": ("happy", "JK", "male"),
        "AudioData/KL/n30.wav": ("neutral", "KL", "male"),
    },
    "audio_folder": {  # class folders in any case, synonyms, nesting, an unlabelled folder
        "Angry/call_001.wav": ("angry", "unknown", "unknown"),
        "SAD/call_003.flac": ("sad", "unknown", "unknown"),
        "happiness/call_002.wav": ("happy", "unknown", "unknown"),
        "neutral/shift2/call_004.wav": ("neutral", "unknown", "unknown"),
        "unknown/call_005.wav": ("unknown", "unknown", "unknown"),
    },
}
BUILDERS = tuple(EXPECTED)


def dummy_dir(name: str) -> str:
    return os.path.join(DATA, name, "dummy_data")


def read_all(builder) -> dict:
    """The train split as {file: example} with str fields decoded."""
    out = {}
    for ex in tfds.as_numpy(builder.as_dataset(split="train", shuffle_files=False)):
        ex = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in ex.items()}
        assert ex["file"] not in out, f"{ex['file']} written twice"
        out[ex["file"]] = ex
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Every audio builder's dummy data built once into one temporary data_dir."""
    data_dir = str(tmp_path_factory.mktemp("tfds_dummy"))
    builders = {}
    for name in BUILDERS:
        b = corpora.builder_class(name)(config="mfcc39", data_dir=data_dir)
        b.download_and_prepare(download_config=tfds.download.DownloadConfig(
            manual_dir=dummy_dir(name)))
        builders[name] = b
    return data_dir, builders


@pytest.mark.parametrize("name", BUILDERS)
def test_list_records_parses_the_real_naming(name):
    records = corpora.builder_class(name).list_records(dummy_dir(name))
    got = {r.file: (r.label, r.speaker, r.gender) for r in records}
    assert got == EXPECTED[name]
    assert all(os.path.isfile(r.path) for r in records)


@pytest.mark.parametrize("name", BUILDERS)
def test_builder_on_dummy_data(built, name):
    data_dir, builders = built
    builder = builders[name]
    examples = read_all(builder)
    assert set(examples) == set(EXPECTED[name])
    corpus = "dummy_data" if name == "audio_folder" else name  # a folder's corpus is its basename
    for file, (label, speaker, gender) in EXPECTED[name].items():
        ex = examples[file]
        assert labels.LABEL_NAMES[ex["label"]] == label, file
        assert (ex["speaker"], ex["gender"], ex["corpus"]) == (speaker, gender, corpus), file
        assert ex["features"].shape == (188, 39) and ex["features"].dtype == np.float32
        assert np.all(np.isfinite(ex["features"])), file
    # What DatasetBuilderTestCase checks: split sizes in the info, also after a reload from disk.
    assert builder.info.splits["train"].num_examples == len(EXPECTED[name])
    reloaded = corpora.builder_class(name)(config="mfcc39", data_dir=data_dir)
    assert reloaded.is_prepared()
    assert reloaded.info.splits["train"].num_examples == len(EXPECTED[name])
    assert builder.info.features["label"].names == list(labels.LABEL_NAMES)


def test_features_equal_the_front_end_on_the_file(built):
    """Stored features are exactly features_from_file of that file (EmoDB: 16 kHz -> 22,050 Hz)."""
    _, builders = built
    ex = read_all(builders["emodb"])["wav/16b10Ta.wav"]
    path = os.path.join(dummy_dir("emodb"), "wav", "16b10Ta.wav")
    np.testing.assert_allclose(  # BLAS thread counts change the last float32 bits
        ex["features"], features.features_from_file(path, features.FEATURE_CONFIGS["mfcc39"]),
        rtol=1e-5, atol=1e-4)


def test_emovo_keeps_one_channel_never_the_average(built, tmp_path):
    """EMOVO's two channels are different microphones: channel 0 by default, 1 on request."""
    _, builders = built
    ex = read_all(builders["emovo"])["m3/pau-m3-b2.wav"]
    path = os.path.join(dummy_dir("emovo"), "m3", "pau-m3-b2.wav")
    config = features.FEATURE_CONFIGS["mfcc39"]
    first = features.features_from_file(path, config, channel=0)
    np.testing.assert_allclose(ex["features"], first, rtol=1e-5, atol=1e-4)
    second = features.features_from_file(path, config, channel=1)
    mean = features.features_from_file(path, config, channel=None)
    assert np.abs(first - second).max() > 1.0 and np.abs(first - mean).max() > 1.0
    b1 = corpora.builder_class("emovo")(config="mfcc39", data_dir=str(tmp_path), channel=1)
    b1.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=dummy_dir("emovo")))
    np.testing.assert_allclose(read_all(b1)["m3/pau-m3-b2.wav"]["features"], second, rtol=1e-5,
                               atol=1e-4)


def test_tfds_build_layout(built):
    """The data_dir layout corpora.load and `tfds build` share: <data_dir>/<name>/<config>/<ver>."""
    data_dir, _ = built
    for name in BUILDERS:
        assert os.path.isfile(os.path.join(data_dir, name, "mfcc39", "1.0.0", "dataset_info.json"))
