"""Trains one method on one cross-corpus task and writes WORKDIR/results.json.

  python train.py --config=configs/default.py --workdir=runs/default
  python train.py --config=configs/cross_corpus.py:c2b,emodna --config.corpora_root=../shared/corpora \
      --workdir=runs/c2b_emodna
  python train.py --config=configs/adapt.py --config.target=folder:PATH --config.corpora_root=ROOT \
      --workdir=runs/mine     # your own recordings (configs/adapt.py)

`--config.method=NAME` chooses a method (emodna_jax/method/methods.py) as `configs/cross_corpus.py:c2b,NAME`
does; every other `--config.x=y` flag still wins over the method's settings. Started again with the
same command, a run continues from its last checkpoint.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
# JAX's persistent compilation cache: a second run with the same shapes (another seed, task or grid
# point) loads its train step instead of compiling it (about 18 s of a 35 s CPU run of the default).
# Set JAX_COMPILATION_CACHE_DIR for another folder; JAX_ENABLE_COMPILATION_CACHE=false compiles every time.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.join(os.path.expanduser("~"), ".cache", "emodna_jax", "jax_cache"))

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from configs import default  # noqa: E402
from emodna_jax.method import methods  # noqa: E402
from emodna_jax.train import config_checks, recipe, run_logging, trainer  # noqa: E402
from emodna_jax.workflows import selection  # noqa: E402

config_flags.DEFINE_config_file("config", None, "Config file, e.g. configs/default.py or "
                                "configs/cross_corpus.py:c2b,emodna", lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs, results.json and plots.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not flags.FLAGS["verbosity"].present:  # orbax logs every save at INFO; keep the console readable
        logging.set_verbosity(logging.WARNING)
    try:
        recipe.resolve(flags.FLAGS.config)  # configs/adapt.py's "auto" source, classes and task
        if flags.FLAGS.config.select.grid:  # a declared grid: label-free selection
            selection.select_and_train(flags.FLAGS.config, flags.FLAGS.workdir)
        else:
            trainer.train_and_evaluate(flags.FLAGS.config, flags.FLAGS.workdir)
    except config_checks.ConfigError as error:
        raise SystemExit(f"[train] refused: {error}") from None
    except run_logging.NonFiniteLossError as error:
        raise SystemExit(f"[train] {error}") from None


if __name__ == "__main__":
    # Before absl parses the flags (config_flags reads its overrides from sys.argv): the method's
    # fields right after --config=, the user's other --config.x=y flags after them.
    try:
        sys.argv = methods.expand_method_flag(sys.argv, default.get_config())
    except ValueError as error:
        raise SystemExit(f"[train] {error}") from None
    app.run(main)
