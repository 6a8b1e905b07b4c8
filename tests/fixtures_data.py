"""Session fixtures for data tests: the synthetic corpora built once into a temporary TFDS data_dir.

Import the fixture into a test module (`from tests.fixtures_data import synthetic_data_dir`). The
build takes about 10-15 s on a 2-core CPU; every test after that reads the TFRecords.
"""

import pytest


@pytest.fixture(scope="session")
def synthetic_data_dir(tmp_path_factory) -> str:
    """A TFDS data_dir holding `synthetic/mfcc39` (splits a, b, c; 200 examples each)."""
    from data.synthetic import synthetic_dataset_builder

    data_dir = str(tmp_path_factory.mktemp("tfds"))
    synthetic_dataset_builder.Builder(config="mfcc39", data_dir=data_dir).download_and_prepare()
    return data_dir
