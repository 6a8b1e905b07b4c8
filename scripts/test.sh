#!/usr/bin/env bash
# Sets up .venv (if needed) and runs the test suite on the CPU (two pytest-xdist workers); extra arguments
# go to pytest (e.g. -k NAME). The session builds the synthetic corpora once and shares one persistent
# compilation cache, in a temporary folder, between its in-process runs and the train.py/eval.py
# processes it starts (tests/fixtures_data.py).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh"
cd "$root"
export TF_CPP_MIN_LOG_LEVEL=3 TF_ENABLE_ONEDNN_OPTS=0 JAX_PLATFORMS=cpu
# Two pytest-xdist workers by default (the suite is compile-bound, and one XLA compilation uses one
# core); EMODNA_TEST_WORKERS=0 runs in this process, e.g. for a debugger.
exec "$root/.venv/bin/python" -m pytest -q -n "${EMODNA_TEST_WORKERS:-2}" --dist=worksteal "$@" tests
