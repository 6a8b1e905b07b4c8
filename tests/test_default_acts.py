"""The default `emodna` as it runs (configs/default.py, no test-only threshold) admits target examples.

The first implementation's default had a FreeMatch threshold floor of 1.0: no target example could pass, and its
class-level half never acted while every test (which lowered the floor) passed. Here nothing of the
method is changed: only the data (an in-memory toy problem of one-frame features, like `affect`'s) and
the run's bookkeeping (no plots, one checkpoint).
"""

import functools
import json

import numpy as np

from configs import default
from emodna_jax.audio import input_pipeline, labels
from emodna_jax.train import run_logging, trainer

CLASSES = ["angry", "fear", "happy", "neutral", "sad"]


def _toy_corpus(name: str, n: int, seed: int, shift: float) -> input_pipeline.CorpusArrays:
    """Five classes apart along coefficients 0-3 of one-frame features [n, 1, 8]; the target is shifted
    on the other coefficients (a corpus difference that carries no emotion)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 5
    x = rng.normal(size=(n, 1, 8)).astype(np.float32)
    x[:, :, :4] += 2.0 * (y[:, None, None] - 2)
    x[:, :, 4:] += shift
    return input_pipeline.CorpusArrays(
        name, x, np.array([labels.LABEL_NAMES.index(CLASSES[k]) for k in y]),
        np.array([f"{name}{i % 2}" for i in range(n)], dtype=object),
        np.array([f"{name}/{i}.wav" for i in range(n)], dtype=object))


def test_default_emodna_as_it_runs_admits_target_examples(tmp_path, monkeypatch):
    corpora = {"synthetic_a": _toy_corpus("a", 200, 0, 0.0), "synthetic_b": _toy_corpus("b", 200, 1, 0.5)}
    monkeypatch.setattr(input_pipeline, "create_task_data", functools.partial(
        input_pipeline.create_task_data, load_fn=lambda name, config, split: corpora[name]))
    c = default.get_config()
    as_it_runs = (c.pseudo.threshold, c.pseudo.quantile_end, c.loss.class_align, c.pseudo.warmup_steps,
                  c.num_steps)
    c.plots, c.checkpoint_every, c.num_devices = False, c.num_steps, 1
    assert as_it_runs == ("quantile", 0.6, "cross_entropy", 40, 200)  # per-class adaptive thresholds

    results = trainer.train_and_evaluate(c, str(tmp_path / "run"))

    on_disk = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["uar"] > 60  # the toy problem is learnable: the source model earns confidence
    assert on_disk["confident_share_run"] > 0.1
    assert all(share > 0 for share in on_disk["confident_share_per_class"].values())
    assert on_disk["pseudo_label_precision_run"] > 60  # a monitor here, never a selector
    # The class-level loss acted: it is non-zero at logged adaptation steps.
    history = run_logging.read_scalars(str(tmp_path / "run" / "logs"))
    class_align = [v for step, v in history["loss/class_align"].items() if step > c.pseudo.warmup_steps]
    assert class_align and max(class_align) > 0
