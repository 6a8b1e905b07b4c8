"""The label-free selection's side of the accuracy report: what each method's validator chose, how far
each validator can be trusted, and what the pseudo-labels were worth.

Reads the selection.json and results.json files of one setting folder (<setting>/<task>/<method>/seed<S>/,
made by benchmarks/accuracy_benchmark.py). The target UAR of the grid points is an after-the-fact
monitor written by emodna_jax/workflows/selection.py once the choice is made; here it only measures the
validators (rank correlation, and the UAR lost against the grid's best point), and chooses nothing.
"""

from __future__ import annotations

import collections
import glob
import json
import os

from emodna_jax.eval import validators
from emodna_jax.workflows import selection


def selection_files(setting_dir: str, methods: list[str]) -> dict[str, list[str]]:
    """{method: [selection.json paths]} of the methods that ran a grid."""
    out: dict[str, list[str]] = {}
    for path in sorted(glob.glob(os.path.join(setting_dir, "*", "*", "seed*", selection.SELECTION_FILE))):
        method = path.split(os.sep)[-3]
        if method in methods:
            out.setdefault(method, []).append(path)
    return out


def _load(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def chosen_table(files: dict[str, list[str]]) -> list[str]:
    """Per method: its grid, and how often (over tasks and seeds) the validator chose each point."""
    lines = ["| method | validator | grid | chosen points (count over task x seed) |", "|---|---|---|---|"]
    for method, paths in files.items():
        records = [_load(p) for p in paths]
        counts = collections.Counter(r["chosen"] for r in records)
        chosen = "; ".join(f"`{name}` {n}" for name, n in counts.most_common())
        lines.append(f"| {method} | {records[0]['validator']} | `{records[0]['grid']}` | {chosen} |")
    return lines


def regret(points: list[dict], validator: str) -> float | None:
    """Target UAR of the grid's best point minus that of the validator's choice (0 = it chose the best);
    None when a point lacks a target UAR or the validator has no finite value."""
    uars = [p.get("target_uar") for p in points]
    if any(u is None for u in uars):
        return None
    try:
        best = selection.choose([p["validators"] for p in points], validator)
    except ValueError:
        return None
    return max(uars) - uars[best]


def validator_table(files: dict[str, list[str]]) -> list[str]:
    """Each validator over every selection: mean Spearman rho with the points' target UAR, and the mean
    UAR it would lose against the grid's best point had it been the declared one."""
    paths = [p for ps in files.values() for p in ps]
    table = selection.rank_correlations(paths)
    lines = ["| validator | mean Spearman rho with target UAR | selections | mean UAR lost to the grid's best point |",
             "|---|---:|---:|---:|"]
    for name in validators.VALIDATORS:
        losses = [r for r in (regret(_load(p)["points"], name) for p in paths) if r is not None]
        rho = table[name]["mean"]
        lost = f"{sum(losses) / len(losses):.2f}" if losses else "n/a"
        lines.append(f"| {name} | {'n/a' if rho is None else f'{rho:+.2f}'} | {table[name]['count']} | {lost} |")
    return lines


def pseudo_label_table(runs: dict, tasks: list[str], methods: list[str], label) -> list[str]:
    """Per method and task, over seeds: the share of target examples confidently pseudo-labelled over
    the run, and those pseudo-labels' precision (a monitor from the target labels, after training)."""
    lines = [f"| method | {' | '.join(label(t) for t in tasks)} |", "|---|" + "---|" * len(tasks)]
    for method in methods:
        cells, any_run = [], False
        for task in tasks:
            found = [r for r in runs.get((task, method), []) if r.get("confident_share_run") is not None]
            if not found:
                cells.append("-")
                continue
            any_run = True
            share = [100 * r["confident_share_run"] for r in found]
            prec = [r["pseudo_label_precision_run"] for r in found  # already in %
                    if r.get("pseudo_label_precision_run") is not None]
            prec_text = f"{sum(prec) / len(prec):.0f} %" if prec else "-"
            cells.append(f"{sum(share) / len(share):.0f} % / {prec_text} (min {min(share):.0f} %)")
        if any_run:
            lines.append(f"| {method} | {' | '.join(cells)} |")
    return lines


def section(setting_dir: str, runs: dict, tasks: list[str], methods: list[str], label) -> list[str]:
    """The report's selection part (empty when no method of `methods` ran a grid)."""
    files = selection_files(setting_dir, methods)
    lines: list[str] = []
    if files:
        lines += ["", "What each method's validator chose (its grid is declared in "
                  "`emodna_jax/method/methods.py`; the chosen setting is then trained again on the whole "
                  "source):", ""]
        lines += chosen_table(files)
        lines += ["", "How far each validator can be trusted, over every grid above (target UAR of the grid "
                  "points, read after the choice: a measurement of the validators, never a choice):", ""]
        lines += validator_table(files)
    table = pseudo_label_table(runs, tasks, methods, label)
    if len(table) > 2:
        lines += ["", "Target pseudo-labels over each (final) run: the share confidently pseudo-labelled / their "
                  "precision (a monitor from the target labels, after training), mean over seeds, and the "
                  "smallest share of any seed:", ""] + table
    return lines
