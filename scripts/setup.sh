#!/usr/bin/env bash
# Creates .venv beside the repository (if missing) and installs requirements.txt into it.
# Re-installs only when requirements.txt changed since the last successful install.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$root/requirements.txt" | cut -d' ' -f1)
if [[ ! -x "$venv/bin/python" ]]; then
  echo "[setup] creating $venv" >&2
  python3 -m venv "$venv"
fi
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "[setup] installing requirements.txt (2-3 minutes on a fresh machine)" >&2
  log=$(mktemp)
  if ! ("$venv/bin/pip" install -q --upgrade pip && "$venv/bin/pip" install -q -r "$root/requirements.txt") >"$log" 2>&1; then
    grep -v "is ignored: it is neither a file nor a directory" "$log" | tail -n 40 >&2
    echo "[setup] pip install failed; see the lines above" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi
