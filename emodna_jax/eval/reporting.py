"""What a run's report and an evaluation's report share: label-free diagnostics of the target's
predictions (docs/method.md §10) and the plots of a trained model."""

import os
from typing import Any

import numpy as np

from emodna_jax.eval import diagnostics, evaluation, plots


def label_free_diagnostics(predictions: evaluation.Predictions) -> dict[str, Any]:
    """Diagnostics of the target computed without its labels (docs/method.md §10)."""
    return {
        "snd": float(diagnostics.soft_neighborhood_density(probs=predictions.probs)),
        "mean_prediction_entropy": float(diagnostics.mean_prediction_entropy(predictions.probs)),
        "prediction_histogram": [float(v) for v in diagnostics.prediction_histogram(predictions.probs)],
    }


def write_plots(config, workdir, fns, state, data, target, summary, writer=None, prefix="",
                source=None) -> None:
    """<prefix>confusion.png, <prefix>embeddings.png (source + target features) and curves.png;
    `source`: the source split's predictions, made here when not given."""
    if "confusion" in summary:
        plots.plot_confusion(np.asarray(summary["confusion"]), list(data.class_names),
                             os.path.join(workdir, f"{prefix}confusion.png"),
                             title=f"{config.method}: {config.source} -> {config.target}")
    if source is None:
        source = evaluation.predict(fns, state, data.eval_batches("source"), split="source")
    both = lambda a, b: None if a is None or b is None else np.concatenate([a, b])  # noqa: E731
    plots.plot_embeddings(
        emotion_features=both(source.z_e, target.z_e), corpus_features=both(source.z_c, target.z_c),
        labels=np.concatenate([source.labels, target.labels]),
        corpora=np.concatenate([np.zeros(len(source.labels), int), np.ones(len(target.labels), int)]),
        class_names=list(data.class_names), corpus_names=[config.source, config.target],
        path=os.path.join(workdir, f"{prefix}embeddings.png"),
        title=f"{config.method}: {config.source} -> {config.target}", seed=config.seed)
    if writer is not None and writer.history:
        plots.plot_training_curves(writer.history, os.path.join(workdir, "curves.png"))


# A warning when one class takes more than this share of the target's predictions: adaptation has
# probably collapsed onto it (or the target really is that one-sided; check a few files by ear).
COLLAPSE_SHARE = 0.7


def collapse_warning(histogram, class_names) -> str | None:
    """A one-line warning when one class has more than COLLAPSE_SHARE of the predictions
    (`histogram`: counts [K] of arg-max predictions, in `class_names` order), else None."""
    counts = np.asarray(histogram, dtype=np.float64)
    if counts.sum() <= 0:
        return None
    k = int(counts.argmax())
    share = counts[k] / counts.sum()
    if share <= COLLAPSE_SHARE:
        return None
    return (f"{100 * share:.0f}% of the {int(counts.sum())} target predictions are {class_names[k]!r} "
            f"(more than {100 * COLLAPSE_SHARE:.0f}%): the model may have collapsed onto one class; "
            "listen to a few files, try another method (--config.method=source_only or adabn) or more "
            "source corpora")
