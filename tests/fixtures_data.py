"""Session fixtures shared by the test modules (conftest.py makes them visible everywhere): the synthetic
corpora built once per pytest session into one TFDS data_dir, and one persistent compilation cache.

The builds are the suite's largest fixed cost (600 synthesised utterances per front end: affect about
60 s of CPU, mfcc39 about 30 s on these 2 cores), so each front end is built at most once per run (by
one pytest-xdist worker), into one folder every module reads, and only when a test asks for it.

A module that imports one of these fixtures (as older modules did) gets its own fixture instance;
the folders and the set of built front ends are kept here, at module level, so that even then
nothing is built twice.
"""

import fcntl
import os

import pytest

_BUILT: set[str] = set()
_CACHE_OPTIONS = {"jax_persistent_cache_min_compile_time_secs": 0.0,
                  "jax_persistent_cache_min_entry_size_bytes": 0}


def session_dir(tmp_path_factory, name: str) -> str:
    """A folder of this pytest session, the same for every module that asks for `name`, and, under
    pytest-xdist (scripts/test.sh runs two workers), for every worker of the run: their base folders
    share one parent."""
    base = tmp_path_factory.getbasetemp()
    path = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name
    path.mkdir(exist_ok=True)
    return str(path)


def build_synthetic(tmp_path_factory, features: str) -> str:
    """The session's synthetic TFDS data_dir with front end `features` built (once per run: the first
    worker to ask builds it under a file lock, the others wait for it and read it)."""
    data_dir = session_dir(tmp_path_factory, "synthetic_tfds")
    if features not in _BUILT:
        with open(os.path.join(data_dir, ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            marker = os.path.join(data_dir, f".built-{features}")
            if not os.path.exists(marker):
                from data.synthetic import synthetic_dataset_builder

                synthetic_dataset_builder.Builder(config=features, data_dir=data_dir).download_and_prepare()
                open(marker, "w").close()
        _BUILT.add(features)
    return data_dir


@pytest.fixture(scope="session")
def synthetic_data_dir(tmp_path_factory) -> str:
    """A TFDS data_dir holding `synthetic/mfcc39` (splits a, b, c; 200 examples each); other front ends
    are built into the same folder when a test asks for them (see `synthetic_affect_dir`)."""
    return build_synthetic(tmp_path_factory, "mfcc39")


@pytest.fixture(scope="session")
def synthetic_affect_dir(tmp_path_factory) -> str:
    """The same data_dir with `synthetic/affect` built: the default front end, which the default and
    smoke configs read (built here, so that a run does not build it on first use inside a test)."""
    return build_synthetic(tmp_path_factory, "affect")


@pytest.fixture(scope="session")
def jax_cache_dir(tmp_path_factory) -> str:
    """One persistent compilation cache for the session: in process (`compilation_cache`) and in the
    train.py/eval.py processes the tests start (`subprocess_env`), never the user's own cache."""
    return session_dir(tmp_path_factory, "jax_cache")


@pytest.fixture(scope="session")
def subprocess_env(jax_cache_dir) -> dict:
    """The environment for train.py/eval.py processes: the test environment (forced CPU devices from
    conftest.py) with the session's compilation cache, every compilation cached."""
    env = dict(os.environ)
    env.update(JAX_COMPILATION_CACHE_DIR=jax_cache_dir, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    return env


@pytest.fixture(scope="module")
def compilation_cache(jax_cache_dir):
    """The session's persistent compilation cache for one module's in-process runs: runs with the
    same shapes (here and in the processes of `subprocess_env`) load a compiled step instead of
    compiling it again. JAX opens its cache folder once, at the first compilation after a reset, and
    keeps writing to it: the cache is reset on entry (to open this folder) and on exit (so that the
    next modules compile without it, as they were written to)."""
    import jax
    from jax.experimental.compilation_cache import compilation_cache as cc

    before = {name: getattr(jax.config, name) for name in ("jax_compilation_cache_dir", *_CACHE_OPTIONS)}
    jax.config.update("jax_compilation_cache_dir", jax_cache_dir)
    for name, value in _CACHE_OPTIONS.items():
        jax.config.update(name, value)
    cc.reset_cache()
    yield jax_cache_dir
    for name, value in before.items():
        jax.config.update(name, value)
    cc.reset_cache()
