"""Evaluates a trained run, or labels new recordings with it.

  python eval.py --workdir=DIR                       # the run's target corpus -> DIR/eval/<name>.json
  python eval.py --workdir=DIR --corpus=emovo        # another corpus (or folder:PATH)
  python eval.py --workdir=DIR --predict=PATH        # a file or folder of wav/flac -> DIR/predictions.csv
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from absl import app, flags, logging  # noqa: E402

from configs import default as default_config  # noqa: E402
from emodna_jax import config_checks, inference  # noqa: E402

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
            names = [k for k in rows[0] if k not in ("file", "prediction", "centroid_prediction")]
            centroid = "centroid_prediction" in rows[0]  # the set labelled by its own class centroids
            print(f"{'file':40s} {'prediction':10s} " + (f"{'centroid':10s} " if centroid else "")
                  + " ".join(f"{n[:7]:>7s}" for n in names))
            for row in rows:
                print(f"{os.path.basename(row['file'])[:40]:40s} {row['prediction']:10s} "
                      + (f"{row['centroid_prediction']:10s} " if centroid else "")
                      + " ".join(f"{row[n]:7.3f}" for n in names))
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


if __name__ == "__main__":
    app.run(main)
