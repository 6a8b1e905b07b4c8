"""The cross-corpus table: every (task, method, seed) run of train.py, then mean +- std over seeds.

    .venv/bin/python benchmarks/accuracy_benchmark.py [--tasks=c2b,c2e,b2c,b2e,e2c,e2b]
        [--methods=source_only,mmd,...] [--seeds=0,1,2] [--runs_dir=benchmarks/runs]
        [--set=num_steps=300 --set=batch_size=32 ...] [--report_only] [--write_results]

Each run is `python train.py --config=configs/cross_corpus.py:TASK,METHOD --config.seed=S ...` in its
own process and workdir (<runs_dir>/<setting>/<task>/<method>/seed<S>). The benchmark is resumable:
a run whose results.json exists is kept and skipped; an interrupted run resumes from its checkpoint.
Every --set override applies to every run (one setting for all tasks and methods, chosen without
target labels). The runs of one setting share a folder named after the overrides and a fingerprint
of the configs they start from (configs/default.py and every method's overrides), so a run made
before a config changed is never reused for the changed one: the older folders stay as archived
results (each results.json keeps the command that made it).

The report reads every results.json under the setting's folder: UAR and WAR as mean +- std (sample
std, ddof=1) over the seeds that finished, per task and averaged over tasks, beside the published
TIM-Net and CAAM numbers (best of several runs, shared/REFERENCE_RESULTS.md). Target labels are read
only by train.py's final report, after training.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import glob
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import selection_report  # noqa: E402
from benchmarks.results_file import write_section  # noqa: E402

TASKS = ("c2b", "c2e", "b2c", "b2e", "e2c", "e2b")
# The headline table's rows: the baselines (adabn the control of the default's BatchNorm statistics,
# both self-training baselines), Emo-DNA as published and the default.
METHODS = ("source_only", "adabn", "mmd", "dann", "coral", "pseudo_label", "self_training_balanced",
           "emodna_literal", "emodna")
# The default Emo-DNA with one component removed or changed (emodna_jax/method/methods.py).
ABLATIONS = ("emodna_no_decoupling", "emodna_no_corpus_align", "emodna_no_class_align", "emodna_fixed_threshold",
             "emodna_prototype_align")
# UAR % from shared/REFERENCE_RESULTS.md (TIM-Net supplementary Table S4; best of several runs).
PUBLISHED = {"TIM-Net": {"c2b": 50.4, "c2e": 36.4, "b2c": 42.4, "b2e": 36.4, "e2c": 39.8, "e2b": 47.0},
             "CAAM": {"c2b": 54.6, "c2e": 32.1, "b2c": 39.6, "b2e": 37.1, "e2c": 39.0, "e2b": 47.9}}


def setting_name(overrides: list[str], fingerprint: str = "") -> str:
    """A folder name for one set of overrides ("default" when there are none), then "-<fingerprint>"."""
    name = "default" if not overrides else "_".join(o.replace("=", "-").replace(".", "-") for o in overrides)
    return f"{name}-{fingerprint}" if fingerprint else name


def config_fingerprint() -> str:
    """8 hex digits of the configs every run starts from: configs/default.py's base and every method's
    overrides (emodna_jax/method/methods.py). Any change to either gives new folders."""
    from configs import default
    from emodna_jax.method import methods

    text = json.dumps([default.get_config().to_dict(), {n: m.overrides for n, m in methods.METHODS.items()}],
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def train_command(task: str, method: str, seed: int, workdir: str, overrides: list[str],
                  data_dir: str) -> list[str]:
    """The train.py command of one run: the method's config with the overrides."""
    cmd = [sys.executable, "train.py", f"--config=configs/cross_corpus.py:{task},{method}",
           f"--config.seed={seed}", f"--workdir={workdir}", "--config.plots=False"]
    if data_dir:
        cmd.append(f"--config.data_dir={data_dir}")
    return cmd + [f"--config.{o}" for o in overrides]


def run_one(task: str, method: str, seed: int, workdir: str, overrides: list[str], data_dir: str) -> float:
    """Runs train.py for one (task, method, seed) unless results.json exists; returns seconds spent."""
    if os.path.exists(os.path.join(workdir, "results.json")):
        return 0.0
    cmd = train_command(task, method, seed, workdir, overrides, data_dir)
    os.makedirs(workdir, exist_ok=True)
    tick = time.time()
    with open(os.path.join(workdir, "train.log"), "a") as log:
        code = subprocess.call(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    if code:
        raise SystemExit(f"run failed (exit {code}): {' '.join(cmd)}; see {workdir}/train.log")
    return time.time() - tick


def mean_std(values: list[float], digits: int = 1, count: str = "n") -> str:
    """"mean ± sample std", with "(count=N)" added below three values."""
    if not values:
        return "-"
    mean = sum(values) / len(values)
    shown = round(mean, digits) + 0.0  # + 0.0 turns a rounded -0.0 into 0.0; the std keeps the true mean
    if len(values) == 1:
        return f"{shown:.{digits}f} ({count}=1)"
    std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    return f"{shown:.{digits}f} ± {std:.{digits}f}" + ("" if len(values) >= 3 else f" ({count}={len(values)})")


def collect(setting_dir: str) -> dict:
    """{(task, method): [results dicts]} over every finished run of a setting."""
    out: dict = {}
    for path in sorted(glob.glob(os.path.join(setting_dir, "*", "*", "seed*", "results.json"))):
        task, method = path.split(os.sep)[-4:-2]
        with open(path) as f:
            result = json.load(f)
        if "centroid" in result:  # the target labelled by its own class centroids (transductive.py)
            result["centroid_uar"] = result["centroid"].get("uar")
        out.setdefault((task, method), []).append(result)
    return out


def recording(runs: dict, tasks: list[str], methods: list[str], metric: str) -> list[str]:
    """The methods with at least one run that records `metric`."""
    return [m for m in methods if any(r.get(metric) is not None for t in tasks for r in runs.get((t, m), []))]


def task_label(task: str) -> str:
    """'c2b' -> 'C->B'; 'synthetic_a2synthetic_b' -> 'syn. A->B'."""
    if task.startswith("synthetic_"):
        return "syn. " + task.replace("synthetic_", "").upper().replace("2", "->")
    return task.upper().replace("2", "->")


def table(runs: dict, tasks: list[str], methods: list[str], metric: str, digits: int = 1) -> list[str]:
    """A markdown table of `metric` (uar or war), mean +- std over seeds, one row per method."""
    lines = [f"| method | {' | '.join(task_label(t) for t in tasks)} | mean of tasks |",
             "|---|" + "---|" * (len(tasks) + 1)]
    for method in methods:
        cells, per_seed = [], {}
        for task in tasks:
            found = [r for r in runs.get((task, method), []) if r.get(metric) is not None]
            cells.append(mean_std([r[metric] for r in found], digits))
            for r in found:
                per_seed.setdefault(r["seed"], {})[task] = r[metric]
        # Mean over tasks per seed (seeds with every task finished), then mean +- std over seeds.
        complete = [sum(v.values()) / len(tasks) for v in per_seed.values() if len(v) == len(tasks)]
        lines.append(f"| {method} | {' | '.join(cells)} | {mean_std(complete, digits)} |")
    if metric == "uar" and any(t in PUBLISHED["TIM-Net"] for t in tasks):
        for name, row in PUBLISHED.items():
            vals = [row.get(t) for t in tasks]
            mean = sum(vals) / len(vals) if all(v is not None for v in vals) else None
            lines.append(f"| {name} (published, best run) | "
                         + " | ".join("-" if v is None else f"{v:.1f}" for v in vals)
                         + f" | {'-' if mean is None else f'{mean:.1f}'} |")
    return lines


def source_side_report(setting_dir: str, tasks: list[str], methods: list[str], command: str,
                       section: str) -> str:
    """Only what a choice may read: source-validation UAR (held-out source speakers) and the source
    cross-entropy of the last logged step. The target's metrics in these runs are not shown."""
    runs = collect(setting_dir)
    for rs in runs.values():
        for r in rs:
            recorded = r.get("train_monitors", {}).get("loss/cls")
            r["source_ce"] = recorded if recorded is not None else last_source_ce(
                os.path.join(setting_dir, r["task"], r["method"], f"seed{r['seed']}", "train.log"))
    lines = [f"## {section}", "", f"Command (from the repository root): `{command}`", "",
             "Source-validation UAR % (held-out source speakers, `config.source_val_speakers=auto`):", ""]
    lines += table(runs, tasks, methods, "source_val_uar")
    if centroid := recording(runs, tasks, methods, "source_val_centroid_uar"):
        lines += ["", "Source-validation UAR % with the held-out speakers labelled by their own class centroids:", ""]
        lines += table(runs, tasks, centroid, "source_val_centroid_uar")
    lines += ["", "Source cross-entropy at the last step (training batch, label smoothing 0.1):", ""]
    lines += table(runs, tasks, methods, "source_ce", digits=2)
    return "\n".join(lines) + "\n"


def last_source_ce(log_path: str) -> float | None:
    """The `cls` loss of the last progress line of a run's train.log (for runs whose results.json
    predates its `train_monitors` field)."""
    value = None
    if os.path.exists(log_path):
        for line in open(log_path):
            match = re.search(r"[( ]cls ([0-9.]+)", line)
            if match:
                value = float(match.group(1))
    return value


def report(setting_dir: str, tasks: list[str], methods: list[str], command: str,
           section: str = "Accuracy") -> str:
    runs = collect(setting_dir)
    seconds = [r["train_seconds"] for rs in runs.values() for r in rs if r.get("train_seconds")]
    lines = [f"## {section}", "",
             f"Command (from the repository root): `{command}`", "",
             f"Runs finished: {sum(len(v) for v in runs.values())}; median training time per run "
             f"{sorted(seconds)[len(seconds) // 2] / 60:.1f} min on this 2-core CPU (shared with other jobs)."
             if seconds else "No run finished yet.", "",
             "UAR % (mean ± sample std over seeds; the whole target corpus is unlabelled training data "
             "and test set, 5 shared classes):", ""]
    lines += table(runs, tasks, methods, "uar")
    lines += ["", "WAR %:", ""] + table(runs, tasks, methods, "war")
    if centroid := recording(runs, tasks, methods, "centroid_uar"):
        lines += ["", "UAR % with the target labelled by its own class centroids "
                  "(`emodna_jax/method/transductive.py`, label-free; only the runs that record it, so a row "
                  "may cover fewer seeds than above):", ""]
        lines += table(runs, tasks, centroid, "centroid_uar")
    if "source_only" in methods:
        lines += ["", "UAR paired with source-only on the same task and seed (the seed fixes the initialisation "
                  "and the batch order): mean and sample std of the difference over the pairs that both "
                  "finished, and how many pairs the method is above source-only:", ""]
        lines += paired_table(runs, tasks, [m for m in methods if m != "source_only"], "source_only")
    if "emodna" in methods and (ablations := [m for m in ABLATIONS if m in methods]):
        lines += ["", "The default Emo-DNA's ablations paired with it on the same task and seed (what each "
                  "component adds: a negative difference means the removed part helped):", ""]
        lines += ablation_table(runs, tasks, ablations)
    lines += selection_report.section(setting_dir, runs, tasks, methods, task_label)
    lines += ["", "Label-free diagnostics of the target (no labels read; mean over every finished run of the "
              "method): soft neighbourhood density (higher = predictions cluster), mean prediction entropy "
              "(nats), the largest share of the target predicted as one class (1/K = 0.2 is balanced), and, "
              "from the last training step of the runs that record it, the source cross-entropy (label-smoothed) and the "
              "share of the target batch with a confident pseudo-label:",
              ""] + diagnostics_table(runs, methods)
    return "\n".join(lines) + "\n"


def paired_diffs(runs: dict, tasks: list[str], method: str, reference: str, metric: str = "uar") -> list[float]:
    """`metric` of `method` minus the reference's, over the (task, seed) pairs where both recorded it."""
    def by_pair(name):
        return {(t, r["seed"]): r[metric] for t in tasks for r in runs.get((t, name), [])
                if r.get(metric) is not None}

    own, base = by_pair(method), by_pair(reference)
    return [own[k] - base[k] for k in sorted(own) if k in base]


def paired_table(runs: dict, tasks: list[str], methods: list[str], reference: str) -> list[str]:
    """Per method: UAR minus the reference's UAR over (task, seed) pairs where both finished."""
    lines = [f"| method | pairs | UAR - {reference} | pairs above |", "|---|---:|---:|---:|"]
    for method in methods:
        if diffs := paired_diffs(runs, tasks, method, reference):
            lines.append(f"| {method} | {len(diffs)} | {mean_std(diffs, count='pairs')} | "
                         f"{sum(d > 0 for d in diffs)} |")
    return lines


def ablation_table(runs: dict, tasks: list[str], methods: list[str], reference: str = "emodna") -> list[str]:
    """Per ablation: its UAR minus the full method's on the same task and seed, for the head's labels
    and for centroid labelling (the default's adopted inference); negative = the removed part helped."""
    lines = [f"| ablation | pairs | UAR - {reference} | pairs above | centroid UAR - {reference}'s | pairs above |",
             "|---|---:|---:|---:|---:|---:|"]
    for method in methods:
        head = paired_diffs(runs, tasks, method, reference)
        centroid = paired_diffs(runs, tasks, method, reference, "centroid_uar")
        if head:
            lines.append(f"| {method} | {len(head)} | {mean_std(head, count='pairs')} | {sum(d > 0 for d in head)} | "
                         f"{mean_std(centroid, count='pairs')} | {sum(d > 0 for d in centroid) if centroid else '-'} |")
    return lines


def _monitor_mean(found: list[dict], name: str) -> str:
    """Mean of a last-step training monitor over the runs that recorded it, with their count."""
    values = [r["train_monitors"][name] for r in found if name in r.get("train_monitors", {})]
    if not values:
        return "-"
    return f"{sum(values) / len(values):.2f}" + ("" if len(values) == len(found) else f" (n={len(values)})")


def diagnostics_table(runs: dict, methods: list[str]) -> list[str]:
    lines = ["| method | runs | SND | prediction entropy | largest class share | source CE | confident share |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for method in methods:
        found = [r for (_, m), rs in runs.items() if m == method for r in rs if "label_free" in r]
        if not found:
            continue
        mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
        share = [max(r["label_free"]["prediction_histogram"]) / max(sum(r["label_free"]["prediction_histogram"]), 1e-9)
                 for r in found]
        lines.append(f"| {method} | {len(found)} | {mean([r['label_free']['snd'] for r in found]):.2f} | "
                     f"{mean([r['label_free']['mean_prediction_entropy'] for r in found]):.2f} | {mean(share):.2f} | "
                     f"{_monitor_mean(found, 'loss/cls')} | {_monitor_mean(found, 'pseudo/confident_fraction')} |")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--runs_dir", default=os.path.join(ROOT, "benchmarks", "runs"))
    p.add_argument("--setting_dir", default="", help="report (or resume) this folder instead of "
                   "<runs_dir>/<setting>-<fingerprint>, e.g. an archived benchmarks/runs/normalization-speaker")
    p.add_argument("--data_dir", default="", help="TFDS data_dir (default: the config's)")
    p.add_argument("--set", action="append", default=[], help="a config override FIELD=VALUE for every run")
    p.add_argument("--order", choices=("seed", "method"), default="seed",
                   help="seed: every task and method for seed 0, then seed 1, ... (a partial table is "
                        "usable early); method: all seeds of a method before the next")
    p.add_argument("--report_only", action="store_true")
    p.add_argument("--jobs", type=int, default=1, help="runs at once (separate processes)")
    p.add_argument("--write_results", action="store_true", help="replace '## <section>' in RESULTS.md")
    p.add_argument("--section", default="Accuracy", help="the RESULTS.md section the report goes to")
    p.add_argument("--source_side_only", action="store_true",
                   help="report only source-validation UAR and source cross-entropy (for choices)")
    args = p.parse_args()
    tasks, methods = args.tasks.split(","), args.methods.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.setting_dir and not args.report_only:
        p.error("--setting_dir reports a folder (an archived one, made by other configs) and never runs into "
                "it: add --report_only, or leave --setting_dir out to run the current configs")
    setting_dir = args.setting_dir or os.path.join(args.runs_dir, setting_name(args.set, config_fingerprint()))
    if not args.report_only:
        jobs = [(t, m, s) for s in seeds for m in methods for t in tasks]
        if args.order == "method":
            jobs = [(t, m, s) for m in methods for s in seeds for t in tasks]
        def one(i_job):
            i, (task, method, seed) = i_job
            spent = run_one(task, method, seed, os.path.join(setting_dir, task, method, f"seed{seed}"),
                            args.set, args.data_dir)
            if spent:
                print(f"[{i + 1}/{len(jobs)}] {task} {method} seed {seed}: {spent / 60:.1f} min", flush=True)

        # Runs are separate processes; --jobs > 1 runs that many at once (a run of the MLP default uses
        # about one core, so --jobs=2 fills a 2-core machine).
        with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
            list(pool.map(one, enumerate(jobs)))
    command = shlex.join(["python", "benchmarks/accuracy_benchmark.py"]
                         + [a for a in sys.argv[1:] if a != "--write_results"
                            and (a != "--report_only" or args.setting_dir)])  # an archive is only reported
    make = source_side_report if args.source_side_only else report
    text = make(setting_dir, tasks, methods, command, args.section)
    print(text)
    if args.write_results:
        write_section(args.section, text)


if __name__ == "__main__":
    main()
