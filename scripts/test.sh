#!/usr/bin/env bash
# Sets up .venv (if needed) and runs the test suite on the CPU. Extra arguments go to pytest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh"
cd "$root"
export TF_CPP_MIN_LOG_LEVEL=3 TF_ENABLE_ONEDNN_OPTS=0 JAX_PLATFORMS=cpu
exec "$root/.venv/bin/python" -m pytest -q "$@" tests
