"""Evaluation over a whole split: exact metrics from summed confusion counts, plus embeddings.

The eval stream pads its last batch and marks the padding with mask = 0, so every example is counted
exactly once on any device count; examples without a label (label < 0) get predictions only. In a
multi-process run every process gets the whole split: each batch's rows are gathered from all
processes, which must therefore all call `predict` together.
"""

import dataclasses
from typing import Any, Iterable

import jax
import numpy as np
from jax.experimental import multihost_utils

from emodna_jax.eval import metrics
from emodna_jax.method import transductive
from emodna_jax.model import models

# Which corpus' statistics a per-corpus BatchNorm uses for each evaluation split.
STREAMS = {"target": models.TARGET_STREAM, "source": models.SOURCE_STREAM, "source_val": models.SOURCE_STREAM}


@dataclasses.dataclass
class Predictions:
    """Per-example outputs over a split, padding removed, in the stream's order.

    probs [N, K]; labels [N] (-1 where unknown); z_e [N, h]; z_c [N, h] or None.
    """

    probs: np.ndarray
    labels: np.ndarray
    z_e: np.ndarray
    z_c: np.ndarray | None

    @property
    def has_labels(self) -> bool:
        return bool(np.any(self.labels >= 0))

    def confusion(self, num_classes: int) -> np.ndarray:
        """[K, K] counts over the labelled examples (rows = true class)."""
        labelled = self.labels >= 0
        return np.asarray(metrics.confusion_matrix(
            labels=self.labels, predictions=self.probs.argmax(-1), mask=labelled.astype(np.float32),
            num_classes=num_classes))


def predict(step_fns: Any, state: Any, batches: Iterable[dict], *, split: str = "target") -> Predictions:
    """Runs the eval step over `batches` ([devices, b, ...] with "features", "label", "mask").

    split: "target" (the default, also for one's own recordings) or "source"/"source_val": which
    corpus' statistics a per-corpus BatchNorm normalises with."""
    if split not in STREAMS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(STREAMS)}")
    probs, labels, z_e, z_c = [], [], [], []
    backend = step_fns.backend
    for batch in batches:
        out = backend.host_outputs(step_fns.evaluate(state, batch, stream=STREAMS[split]), replicated=False)
        rows = {**out, "label": np.asarray(batch["label"]), "mask": np.asarray(batch["mask"])}
        if backend.multi_process:
            # Process p holds the batch's p-th block of global positions (input_pipeline.eval_batches),
            # so stacking the processes' rows in process order keeps the split's order.
            rows = jax.tree.map(np.asarray, multihost_utils.process_allgather(rows, tiled=True))
        keep = rows["mask"].reshape(-1).astype(bool)
        flat = lambda a: np.asarray(a).reshape((-1,) + np.asarray(a).shape[2:])[keep]  # noqa: E731
        probs.append(flat(jax.nn.softmax(rows["logits"])))
        labels.append(flat(rows["label"]))
        z_e.append(flat(rows["z_e"]))
        if "z_c" in rows:
            z_c.append(flat(rows["z_c"]))
    if not probs:
        raise ValueError("the evaluation split is empty: no example to evaluate")
    return Predictions(
        probs=np.concatenate(probs), labels=np.concatenate(labels).astype(np.int64),
        z_e=np.concatenate(z_e), z_c=np.concatenate(z_c) if z_c else None)


def report(predictions: Predictions, class_names: tuple[str, ...]) -> dict[str, Any]:
    """UAR, WAR, per-class recall and confusion (or, with no labels, the prediction histogram)."""
    histogram = np.bincount(predictions.probs.argmax(-1), minlength=len(class_names))
    out: dict[str, Any] = {
        "num_examples": int(len(predictions.labels)),
        "prediction_histogram": {n: int(c) for n, c in zip(class_names, histogram)},
    }
    if predictions.has_labels:
        out.update(metrics.summarize(predictions.confusion(len(class_names)), class_names))
    return out


def by_centroids(predictions: Predictions) -> Predictions:
    """The split relabelled by its own class centroids in z_e (transductive.py; label-free)."""
    return dataclasses.replace(
        predictions, probs=transductive.centroid_probs(probs=predictions.probs, features=predictions.z_e))


def centroid_report(predictions: Predictions, class_names: tuple[str, ...]) -> dict[str, Any]:
    """`report` of the split relabelled by its own class centroids."""
    return report(by_centroids(predictions), class_names)
