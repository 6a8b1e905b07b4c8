"""Adds centroid labelling (emodna_jax/method/transductive.py) to finished benchmark runs that predate it.

  python benchmarks/centroid_reevaluate.py RUN_DIR [RUN_DIR ...] [--data_dir=DIR]

RUN_DIR is any folder above seed folders (<runs_dir>/<setting>/<task>/<method>/seed<S>). A run qualifies
when it holds results.json without a "centroid" field, config.json and a checkpoint. Its last checkpoint
is restored and evaluated again; the head's UAR must equal the recorded one (the checkpoint is the
state the run was scored with), else the run is left untouched and reported. Then results.json gains
"centroid" (the target labelled by its own class centroids) and, for runs with held-out source
speakers, "source_val_centroid_uar", as a run finishing today would write them.
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from emodna_jax.eval import evaluation  # noqa: E402
from emodna_jax.train import run_logging, trainer  # noqa: E402
from emodna_jax.workflows import inference  # noqa: E402


def candidates(root: str) -> list[str]:
    found = []
    for folder, dirs, files in os.walk(root):
        if "results.json" in files and "config.json" in files and "checkpoints" in dirs:
            with open(os.path.join(folder, "results.json")) as f:
                if "centroid" not in json.load(f):
                    found.append(folder)
    return sorted(found)


def reevaluate(workdir: str, data_dir: str | None) -> str:
    path = os.path.join(workdir, "results.json")
    with open(path) as f:
        results = json.load(f)
    _, data, fns, state = inference.load_run(workdir, data_dir=data_dir)
    target = evaluation.predict(fns, state, data.eval_batches("target"))
    head = evaluation.report(target, data.class_names)
    if abs(head["uar"] - results["uar"]) > 1e-6:
        return f"SKIPPED (head UAR {head['uar']:.4f} != recorded {results['uar']:.4f}: not the scored state)"
    results["centroid"] = evaluation.centroid_report(target, data.class_names)
    if results.get("source_val_uar") is not None:
        results["source_val_centroid_uar"] = trainer.source_val_scores(fns, state, data)["source_val_centroid_uar"]
    run_logging.write_json(path, results)
    return "added"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("roots", nargs="+")
    parser.add_argument("--data_dir", default=None, help="TFDS data_dir (default: the run's config)")
    args = parser.parse_args()
    runs = [run for root in args.roots for run in candidates(root)]
    if not runs:
        raise SystemExit(f"no finished run without a centroid field (and with a checkpoint) under {args.roots}")
    for run in runs:
        print(f"{run}: {reevaluate(run, args.data_dir)}", flush=True)


if __name__ == "__main__":
    main()
