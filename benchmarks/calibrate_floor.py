"""Calibrates the pseudo-label threshold floor on the held-out source speakers of finished runs.

  python benchmarks/calibrate_floor.py ROOT [ROOT ...] --method=emodna [--precision=0.8]
      [--min_count=10] [--data_dir=DIR]

Every run under ROOT (<setting>/<task>/<method>/seed<S>) of `--method` that held out source speakers
and kept its checkpoint is restored; its head labels the held-out speakers (source labels only; the
target is not read), and `calibration.precision_floor` gives the lowest confidence above which those
predictions reach `--precision`. The re-evaluated source-validation UAR must equal the recorded one
(the checkpoint is the scored state), else the run is reported and left out. Prints a Markdown table
and the floor to use: the largest over the runs, rounded up to two decimals.
"""

import argparse
import json
import math
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from emodna_jax import calibration, evaluation, inference  # noqa: E402

DEFAULT_FLOOR = 0.7  # configs/default.py pseudo.tau_min, for comparison


def runs_of(root: str, method: str) -> list[str]:
    found = []
    for folder, dirs, files in os.walk(root):
        parent = os.path.basename(os.path.dirname(folder))
        if parent == method and "results.json" in files and "checkpoints" in dirs:
            with open(os.path.join(folder, "results.json")) as f:
                if json.load(f).get("source_val_uar") is not None:
                    found.append(folder)
    return sorted(found)


def calibrate(workdir: str, *, precision: float, min_count: int, data_dir: str | None) -> dict:
    with open(os.path.join(workdir, "results.json")) as f:
        recorded = json.load(f)
    _, data, fns, state = inference.load_run(workdir, data_dir=data_dir)
    held_out = evaluation.predict(fns, state, data.eval_batches("source_val"), split="source_val")
    uar = evaluation.report(held_out, data.class_names)["uar"]
    if abs(uar - recorded["source_val_uar"]) > 1e-6:
        raise RuntimeError(f"{workdir}: re-evaluated source-val UAR {uar:.4f} != recorded "
                           f"{recorded['source_val_uar']:.4f}; the checkpoint is not the scored state")
    confidence = held_out.probs.max(-1)
    correct = held_out.probs.argmax(-1) == held_out.labels
    floor = calibration.precision_floor(confidence=confidence, correct=correct, precision=precision,
                                        min_count=min_count)

    def above(t: float) -> tuple[float, float]:
        keep = confidence >= t
        return float(keep.mean()), float(correct[keep].mean()) if keep.any() else float("nan")

    return {"run": workdir, "source": recorded["source"], "n": int(len(correct)), "uar": uar,
            "accuracy": float(correct.mean()), "floor": floor, "at_floor": above(floor),
            "at_default": above(DEFAULT_FLOOR)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("roots", nargs="+")
    parser.add_argument("--method", required=True, help="the method folder whose runs to calibrate on")
    parser.add_argument("--precision", type=float, default=0.8)
    parser.add_argument("--min_count", type=int, default=10)
    parser.add_argument("--data_dir", default=None, help="TFDS data_dir (default: the run's config)")
    args = parser.parse_args()
    runs = [run for root in args.roots for run in runs_of(root, args.method)]
    if not runs:
        raise SystemExit(f"no run of method {args.method!r} with held-out source speakers and a checkpoint "
                         f"under {args.roots}: run the source-validation benchmark first")
    rows = [calibrate(run, precision=args.precision, min_count=args.min_count, data_dir=args.data_dir)
            for run in runs]
    print(f"| run | held-out examples | accuracy | UAR | floor (precision {args.precision}) "
          f"| share >= floor, its accuracy | share >= {DEFAULT_FLOOR}, its accuracy |")
    print("|---|---:|---:|---:|---:|---|---|")
    for r in rows:
        print(f"| {os.path.relpath(r['run'])} | {r['n']} | {100 * r['accuracy']:.1f} | {r['uar']:.1f} "
              f"| {r['floor']:.3f} | {r['at_floor'][0]:.2f}, {r['at_floor'][1]:.2f} "
              f"| {r['at_default'][0]:.2f}, {r['at_default'][1]:.2f} |")
    chosen = math.ceil(max(r["floor"] for r in rows) * 100 - 1e-9) / 100
    print(f"\nfloor to use (largest over {len(rows)} runs, rounded up): {chosen:.2f}")
    print(f"per-run floors, sorted: {np.round(sorted(r['floor'] for r in rows), 3).tolist()}")


if __name__ == "__main__":
    main()
