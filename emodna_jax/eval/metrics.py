"""Classification metrics from summed confusion counts (STYLE item 5).

A confusion matrix is a sum over examples, so it merges exactly across batches, devices and hosts:
compute one per batch (padding masked out), add them, and derive UAR and WAR once at the end.
"""

from typing import Any, Sequence

import numpy as np


def confusion_matrix(*, labels: Any, predictions: Any, mask: Any, num_classes: int) -> np.ndarray:
    """[K, K] counts, rows = true class, columns = predicted class, over examples with mask > 0.

    labels, predictions: int [N]; mask: [N] (0 for padding or unlabelled examples).
    Raises ValueError for a counted label or prediction outside 0..K-1.
    """
    labels = np.asarray(labels).reshape(-1)
    predictions = np.asarray(predictions).reshape(-1)
    keep = np.asarray(mask).reshape(-1) > 0
    labels, predictions = labels[keep], predictions[keep]
    for name, values in (("label", labels), ("prediction", predictions)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"confusion_matrix: a counted {name} lies outside 0..{num_classes - 1}")
    flat = np.bincount(labels * num_classes + predictions, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64)


def summarize(confusion: np.ndarray, class_names: Sequence[str]) -> dict[str, Any]:
    """UAR (macro recall over the classes present), WAR (accuracy), per-class recall, all in %.

    A class with no true example has recall None and is left out of the UAR.
    """
    confusion = np.asarray(confusion, dtype=np.int64)
    support = confusion.sum(axis=1)
    correct = np.diag(confusion)
    present = support > 0
    recall = np.where(present, correct / np.maximum(support, 1), np.nan) * 100.0
    total = int(support.sum())
    return {
        "uar": float(np.nanmean(recall)) if present.any() else None,
        "war": float(correct.sum() / total * 100.0) if total else None,
        "per_class_recall": {n: (None if np.isnan(r) else float(r)) for n, r in zip(class_names, recall)},
        "confusion": confusion.tolist(),
        "support": {n: int(s) for n, s in zip(class_names, support)},
    }
