#!/usr/bin/env bash
# The main job on a fresh machine: set up .venv, train Emo-DNA on the embedded synthetic corpora
# (no download), and leave results.json, confusion.png and embeddings.png in runs/default.
# Extra arguments go to train.py (e.g. --config.num_steps=100).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh"
cd "$root"
export TF_CPP_MIN_LOG_LEVEL=3 TF_ENABLE_ONEDNN_OPTS=0
exec "$root/.venv/bin/python" train.py --config=configs/default.py --workdir="${WORKDIR:-runs/default}" "$@"
