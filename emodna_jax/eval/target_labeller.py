"""Host-side target labelling for `pseudo.labeller="centroid"`: the target's own class centroids.

At every step that is a multiple of `pseudo.centroid_every` during adaptation, and at the first
adaptation step of a run or of a resumed run, the whole unlabelled target goes through the model in inference mode and is labelled by
its own class centroids in z_e (transductive.py: SHOT's weighted k-means). The table of assignment
probabilities [N, K] stays on the host; each train batch's target rows are looked up by their "index"
(input_pipeline.py) and travel to the step as "labeller_probs", where the thresholds act on them
instead of on the head's probabilities (pseudo_labelling.py). The eval batches' labels are blanked
before the forward, so no target label can reach the table.

Resuming: the table is not checkpointed; a resumed run recomputes it from the restored state. A run
resumed at a refresh step (with the default settings every regular checkpoint is one, as
checkpoint_every is a multiple of centroid_every) is therefore bit-identical to an uninterrupted
run; one resumed elsewhere (a signal mid-interval) labels the steps until the next refresh from its
restored state instead of from the last refresh's.
"""

from typing import Any

import numpy as np

from emodna_jax.eval import evaluation
from emodna_jax.method import transductive


def _without_labels(batches):
    for batch in batches:
        yield {**batch, "label": np.full_like(batch["label"], -1)}


class CentroidLabeller:
    """The current centroid-assignment table of the target and when to renew it."""

    def __init__(self, *, every: int, warmup_steps: int) -> None:
        if every < 1:
            raise ValueError(f"every={every} must be >= 1")
        self.every = every
        self.warmup_steps = warmup_steps
        self.table: np.ndarray | None = None

    def due(self, step: int) -> bool:
        """Whether the table must be (re)computed before train step `step` (an adaptation step)."""
        return step >= self.warmup_steps and (self.table is None or step % self.every == 0)

    def refresh(self, fns: Any, state: Any, data: Any) -> dict[str, float]:
        """Relabels the whole target from `state`; returns label-free monitors of the new table."""
        predictions = evaluation.predict(fns, state, _without_labels(data.eval_batches("target")))
        self.table = transductive.centroid_probs(probs=predictions.probs, features=predictions.z_e)
        labels = self.table.argmax(1)
        share = np.bincount(labels, minlength=self.table.shape[1]) / len(labels)
        return {
            # How often the centroids and the head name the same class, and how unbalanced the table is.
            "pseudo/centroid_head_agreement": float(np.mean(labels == predictions.probs.argmax(1))),
            "pseudo/centroid_largest_class_share": float(share.max()),
            "pseudo/centroid_mean_confidence": float(self.table.max(1).mean()),
        }

    def attach(self, batch: dict) -> dict:
        """The batch with the target rows' assignment probabilities added as "labeller_probs"."""
        if self.table is None:
            raise RuntimeError("CentroidLabeller.attach before any refresh: call refresh first")
        target = batch["target"]
        return {**batch, "target": {**target, "labeller_probs": self.table[target["index"]]}}
