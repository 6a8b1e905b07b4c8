"""Test configuration: 4 forced CPU devices and cheap LLVM compilation, set before jax is imported
anywhere; the session fixtures of tests/fixtures_data.py (the synthetic corpora built once, one
compilation cache); compiled code released after each module."""

import gc
import os
import sys

# The suite is compile-bound (hundreds of small steps, each run a few times): LLVM's optimisation passes
# cost more than they save, so the tests compile with them off (about 1.5x faster per compiled step on 2
# cores; the train.py/eval.py processes the tests start inherit the flags). Runs outside the tests keep
# XLA's defaults.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
    " --xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# librosa's numba functions cache their compiled code beside librosa (cache=True). Two pytest-xdist
# workers (or their train.py/eval.py processes) compiling the same function into a fresh venv at once
# wrote one cache file together, and the process that loaded it segfaulted in librosa.yin (measured
# on a fresh clone). Each worker, and the processes it starts, gets a numba cache of its own.
if os.environ.get("PYTEST_XDIST_WORKER"):
    import tempfile

    os.environ["NUMBA_CACHE_DIR"] = os.path.join(
        tempfile.gettempdir(), "emodna-numba-" + os.environ.get("PYTEST_XDIST_TESTRUNUID", "run")[:12],
        os.environ["PYTEST_XDIST_WORKER"])
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# openSMILE's library (the optional extra) segfaults in its first extraction when it is loaded after
# TensorFlow (tensorflow 2.21, opensmile 2.6.0; the other order works): load it first when installed.
try:
    import opensmile  # noqa: E402, F401
except ImportError:
    pass

import pytest  # noqa: E402

from tests.fixtures_data import (  # noqa: E402, F401  (session fixtures for every module)
    compilation_cache, jax_cache_dir, subprocess_env, synthetic_affect_dir, synthetic_data_dir)

CORPORA_ROOT = os.path.join(os.path.dirname(ROOT), "shared", "corpora")


@pytest.fixture(scope="session")
def corpora_root():
    """Path of ../shared/corpora; tests that need the real corpora skip when it is absent."""
    if not os.path.isdir(CORPORA_ROOT):
        pytest.skip(f"real corpora not found at {CORPORA_ROOT}")
    return CORPORA_ROOT


@pytest.fixture(scope="module", autouse=True)
def release_compiled_code():
    """Drops JAX's compiled executables after each module. Each one keeps about three memory mappings
    of JIT code alive (the suite added about 1,000 a minute), and at the kernel's limit of 65,530 per
    process (vm.max_map_count) XLA's LLVM JIT fails to map the next one ("LLVM compilation error:
    Cannot allocate memory") and the process segfaults: reproduced by filling the maps and compiling,
    and the likely cause of the one-process suite's old segfault in test_workflow.py."""
    yield
    if "jax" in sys.modules:
        sys.modules["jax"].clear_caches()
    gc.collect()
