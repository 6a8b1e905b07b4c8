"""Test configuration: 4 forced CPU devices, set before jax is imported anywhere."""

import os
import sys

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import pytest  # noqa: E402

CORPORA_ROOT = os.path.join(os.path.dirname(ROOT), "shared", "corpora")


@pytest.fixture(scope="session")
def corpora_root():
    """Path of ../shared/corpora; tests that need the real corpora skip when it is absent."""
    if not os.path.isdir(CORPORA_ROOT):
        pytest.skip(f"real corpora not found at {CORPORA_ROOT}")
    return CORPORA_ROOT
