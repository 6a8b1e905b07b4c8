"""Leave one corpus out: two labelled sources against each single source, per target corpus.

    .venv/bin/python benchmarks/loco_table.py --single=benchmarks/runs/default-18d8ecd8 \
        --multi=per_corpus:benchmarks/runs/multi_source-per_corpus-0c4f573a \
        --multi=pooled:benchmarks/runs/default-0c4f573a [--methods=source_only,adabn,emodna]

Reads the results.json files that accuracy_benchmark.py wrote (<setting>/<task>/<method>/seed<S>/)
for the single-source tasks (c2b, e2b, ...) and the leave-one-corpus-out tasks (ce2b = CASIA and
EMOVO -> EmoDB, ...), and prints one Markdown table: per target and method, UAR % (mean ± sample std
over seeds) from each single source and from both sources under each multi-source setting, and the
difference to the better single source (a reference chosen after the fact, so it favours the
single-source side).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics

# target letter -> the two single-source tasks and the leave-one-corpus-out task
TARGETS = {"b": ("c2b", "e2b", "ce2b"), "e": ("c2e", "b2e", "bc2e"), "c": ("b2c", "e2c", "be2c")}
NAMES = {"b": "EmoDB", "e": "EMOVO", "c": "CASIA"}


def uars(setting: str, task: str, method: str) -> list[float]:
    """The UAR of every finished seed of one (task, method) in a benchmark folder (a selection's
    grid/ and refit/ folders are not seeds: the seed folder's own results.json is the run's)."""
    paths = sorted(glob.glob(os.path.join(setting, task, method, "seed*", "results.json")))
    return [json.load(open(p))["uar"] for p in paths]


def cell(values: list[float]) -> str:
    if not values:
        return "-"
    spread = f" ± {statistics.stdev(values):.1f}" if len(values) > 1 else ""
    return f"{statistics.mean(values):.1f}{spread}"


def table(single: str, multi: list[tuple[str, str]], methods: list[str]) -> str:
    labels = [label for label, _ in multi]
    head = ["target", "method", "single source A", "single source B"]
    head += [f"both, {label}" for label in labels] + [f"{label} - better single" for label in labels]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for letter, (task_a, task_b, loco) in TARGETS.items():
        for method in methods:
            a, b = uars(single, task_a, method), uars(single, task_b, method)
            best = max(statistics.mean(a) if a else float("-inf"), statistics.mean(b) if b else float("-inf"))
            row = [f"{loco.upper().replace('2', '->')} ({NAMES[letter]})", method,
                   f"{task_a}: {cell(a)}", f"{task_b}: {cell(b)}"]
            both = [uars(path, loco, method) for _, path in multi]
            row += [cell(v) for v in both]
            row += [f"{statistics.mean(v) - best:+.1f}" if v and best > float("-inf") else "-" for v in both]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--single", required=True, help="the benchmark folder of the single-source tasks")
    p.add_argument("--multi", action="append", default=[], required=True,
                   help="LABEL:FOLDER of a benchmark folder with the ce2b, bc2e, be2c tasks")
    p.add_argument("--methods", default="source_only,adabn,emodna")
    args = p.parse_args()
    multi = [tuple(m.split(":", 1)) for m in args.multi]
    print(table(args.single, multi, args.methods.split(",")))


if __name__ == "__main__":
    main()
