"""One UAR table from rows that live in different benchmark folders, paired by task and seed.

    .venv/bin/python benchmarks/combined_table.py \
        --row=source_only:benchmarks/runs/default-18d8ecd8 \
        --row=emodna:benchmarks/runs/<folder> --row=emodna_no_decoupling:benchmarks/runs/<folder> \
        --paired=source_only --paired=emodna

A folder holds one configuration fingerprint (accuracy_benchmark.py); when the base config changes,
methods whose config did not change keep their runs in the older folder. This reads each row's
results.json files (<folder>/<task>/<method>/seed<S>/results.json; `--row=LABEL:FOLDER:METHOD` when the
method's name in that folder differs from the label) and prints: UAR % per task (mean ± sample std over
seeds), the mean over tasks (± the std over seeds of each seed's mean), and for each `--paired` row the
mean ± std of (row - that row) over the (task, seed) pairs both have, with how many are above. Rows
from different folders compare only where their configs are the same as the folder's they came from;
the command that wrote RESULTS.md says which folders those are.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.accuracy_benchmark import TASKS  # noqa: E402
from benchmarks.loco_table import cell as mean_std  # noqa: E402


def read_row(spec: str, tasks: tuple[str, ...]) -> tuple[str, dict[tuple[str, int], dict]]:
    """LABEL:FOLDER[:METHOD] -> (label, {(task, seed): results.json})."""
    label, folder, *rest = spec.split(":")
    method = rest[0] if rest else label
    runs = {}
    for task in tasks:
        base = os.path.join(folder, task, method)
        for seed_dir in sorted(os.listdir(base)) if os.path.isdir(base) else []:
            path = os.path.join(base, seed_dir, "results.json")
            if seed_dir.startswith("seed") and os.path.exists(path):
                with open(path) as f:
                    runs[(task, int(seed_dir[4:]))] = json.load(f)
    if not runs:
        raise SystemExit(f"--row={spec}: no results.json under {folder}/<task>/{method}/seed*/")
    return label, runs


def task_mean_per_seed(runs: dict, tasks: tuple[str, ...]) -> list[float]:
    """Each seed's mean UAR over the tasks (only seeds that finished every task)."""
    seeds = sorted({s for _, s in runs})
    return [statistics.mean(runs[(t, s)]["uar"] for t in tasks) for s in seeds
            if all((t, s) in runs for t in tasks)]


def paired(runs: dict, reference: dict) -> str:
    diffs = [runs[k]["uar"] - reference[k]["uar"] for k in sorted(runs) if k in reference]
    if len(diffs) < 2:
        return "-"
    above = sum(d > 0 for d in diffs)
    return f"{statistics.mean(diffs):+.1f} ± {statistics.stdev(diffs):.1f} ({above}/{len(diffs)})"


def table(rows: list[tuple[str, dict]], paired_with: list[str], tasks: tuple[str, ...]) -> str:
    by_label = dict(rows)
    for label in paired_with:
        if label not in by_label:
            raise SystemExit(f"--paired={label}: not one of the rows ({', '.join(by_label)})")
    head = ["method", *[t.upper().replace("2", "->") for t in tasks], "mean of tasks",
            *[f"minus {label}" for label in paired_with]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(tasks) + "---|---:|" + "---:|" * len(paired_with)]
    for label, runs in rows:
        cells = [mean_std([runs[(t, s)]["uar"] for (t, s) in sorted(runs) if t == task]) for task in tasks]
        cells.append(mean_std(task_mean_per_seed(runs, tasks)))
        cells += ["-" if label == ref else paired(runs, by_label[ref]) for ref in paired_with]
        lines.append(f"| `{label}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--row", action="append", required=True, help="LABEL:FOLDER[:METHOD]")
    parser.add_argument("--paired", action="append", default=[], help="a row's LABEL to pair the others with")
    parser.add_argument("--tasks", default=",".join(TASKS))
    args = parser.parse_args()
    tasks = tuple(args.tasks.split(","))
    print(table([read_row(spec, tasks) for spec in args.row], args.paired, tasks))


if __name__ == "__main__":
    main()
