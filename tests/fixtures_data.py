"""Session fixtures for data tests: the synthetic corpora built once into a temporary TFDS data_dir.

Import the fixture into a test module (`from tests.fixtures_data import synthetic_data_dir`). The
build (600 utterances) takes 10-25 s on the 2-core CPU, depending on load; every test after that
reads the TFRecords.

pytest makes one fixture per module that imports it, so a session-scoped fixture imported into
three modules would run three times; the build is cached here, in this module, which Python
imports once per process.
"""

import pytest

_BUILT: dict[str, str] = {}


@pytest.fixture(scope="session")
def synthetic_data_dir(tmp_path_factory) -> str:
    """A TFDS data_dir holding `synthetic/mfcc39` (splits a, b, c; 200 examples each)."""
    if "mfcc39" not in _BUILT:
        from data.synthetic import synthetic_dataset_builder

        data_dir = str(tmp_path_factory.mktemp("tfds_synthetic"))
        synthetic_dataset_builder.Builder(config="mfcc39", data_dir=data_dir).download_and_prepare()
        _BUILT["mfcc39"] = data_dir
    return _BUILT["mfcc39"]
