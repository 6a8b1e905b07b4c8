#!/usr/bin/env bash
# Sets up .venv (if needed) and runs the test suite on the CPU in one pytest process; extra arguments
# go to pytest (e.g. -k NAME). The session builds the synthetic corpora once and shares one persistent
# compilation cache, in a temporary folder, between its in-process runs and the train.py/eval.py
# processes it starts (tests/fixtures_data.py).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh"
cd "$root"
export TF_CPP_MIN_LOG_LEVEL=3 TF_ENABLE_ONEDNN_OPTS=0 JAX_PLATFORMS=cpu
exec "$root/.venv/bin/python" -m pytest -q "$@" tests
