"""Evaluates a trained run, or labels new recordings with it.

  python eval.py --workdir=DIR                       # the run's target corpus -> DIR/eval/<name>.json
  python eval.py --workdir=DIR --corpus=emovo        # another corpus (or folder:PATH)
  python eval.py --workdir=DIR --predict=PATH        # a file or folder of wav/flac -> DIR/predictions.csv
                                                     # (long files: one row per speech segment + one per file)
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from absl import app, flags, logging  # noqa: E402

from configs import default as default_config  # noqa: E402
from emodna_jax.train import config_checks  # noqa: E402
from emodna_jax.workflows import inference  # noqa: E402

flags.DEFINE_string("workdir", None, "A training workdir (holds config.json and checkpoints/).")
flags.DEFINE_string("corpus", None, "Corpus to evaluate: a builder name or folder:PATH (default: the run's target).")
flags.DEFINE_string("split", None, "Split of --corpus (default: the run's config.target_split).")
flags.DEFINE_string("predict", None, "An audio file or folder to label instead of evaluating.")
flags.DEFINE_bool("plots", True, "Write <name>_confusion.png and <name>_embeddings.png beside the "
                  "JSON (--noplots: the JSON only).")
flags.DEFINE_string("output", None, "CSV path for --predict (default: WORKDIR/predictions.csv).")
flags.DEFINE_string("speaker", None, "For --predict with a per-speaker-normalised run: a target speaker "
                    "id, or 'self' (the files are one new speaker, standardised by their own "
                    "statistics); default: the target corpus' statistics.")
flags.mark_flag_as_required("workdir")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not flags.FLAGS["verbosity"].present:  # orbax logs every save at INFO; keep the console readable
        logging.set_verbosity(logging.WARNING)
    FLAGS = flags.FLAGS
    defaults = default_config.get_config()  # fills the fields of runs saved before they existed
    try:
        if FLAGS.predict:
            rows = inference.predict_files(FLAGS.workdir, FLAGS.predict, output=FLAGS.output,
                                          speaker=FLAGS.speaker, defaults=defaults)
            print_predictions(rows, FLAGS.output or os.path.join(FLAGS.workdir, "predictions.csv"))
            return
        result = inference.evaluate_workdir(FLAGS.workdir, corpus=FLAGS.corpus, split=FLAGS.split,
                                             plots=FLAGS.plots, defaults=defaults)
    except (config_checks.ConfigError, FileNotFoundError) as error:
        raise SystemExit(f"[eval] {error}") from None
    if "uar" in result:
        print(f"[eval] {result['corpus']}: UAR {result['uar']:.2f}  WAR {result['war']:.2f}  "
              f"({result['num_examples']} examples, step {result['step']}); labelled by its own class "
              f"centroids: UAR {result['centroid']['uar']:.2f}  WAR {result['centroid']['war']:.2f}")
    else:
        print(f"[eval] {result['corpus']}: no labels; prediction histogram {result['prediction_histogram']}")


def print_predictions(rows: list[dict], path: str) -> None:
    """The CSV's rows as a table (segments indented under their file), then one summary line."""
    fixed = ("file", "segment", "start_s", "end_s", "prediction", "note", "centroid_prediction")
    names = [k for k in rows[0] if k not in fixed]
    centroid = "centroid_prediction" in rows[0]  # the set labelled by its own class centroids
    print(f"{'file / segment':32s} {'start':>6s} {'end':>6s} {'prediction':10s} "
          + (f"{'centroid':10s} " if centroid else "") + " ".join(f"{n[:7]:>7s}" for n in names) + "  note")
    for row in rows:
        label = os.path.basename(row["file"])[:32] if row["segment"] == "all" else f"  segment {row['segment']}"
        times = " ".join(f"{row[k]:6.2f}" if row[k] != "" else f"{'':6s}" for k in ("start_s", "end_s"))
        probs = " ".join(f"{row[n]:7.3f}" if row[n] != "" else f"{'-':>7s}" for n in names)
        print(f"{label:32s} {times} {row['prediction'] or '-':10s} "
              + (f"{row['centroid_prediction'] or '-':10s} " if centroid else "") + f"{probs}  {row['note'][:60]}")
    files = [r for r in rows if r["segment"] == "all"]
    silent = sum(r["note"] == "no speech" for r in files)
    skipped = sum(r["note"].startswith("skipped") for r in files)
    print(f"[predict] {len(files)} file(s): {len(files) - silent - skipped} labelled "
          f"({len(rows) - len(files)} segment(s) of long files), {silent} without speech, "
          f"{skipped} skipped (unreadable: re-export or remove them) -> {path}")


if __name__ == "__main__":
    app.run(main)
