"""Transductive target inference: label the target by its own class centroids (label-free).

The classifier head was fitted on the source; the target's emotion features z_e may cluster by emotion
around points the head's boundaries miss. Centroid labelling (SHOT, Liang et al. 2020, "weighted
k-means" pseudo-labels) moves the decision to the target itself, in the spirit of Emo-DNA's class-level
prototypes: the first centroids are the probability-weighted means of the normalised target features;
then, `rounds` times, every example takes the class of its nearest centroid (cosine) and the centroids
are recomputed from those hard labels; the last centroids give the final labels (SHOT: rounds = 1).
It reads no target label, only the model's outputs on the unlabelled target.
"""

import numpy as np

# Softmax temperature of the returned assignment over cosine similarities (only its argmax is scored).
ASSIGNMENT_TEMPERATURE = 0.1


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def centroid_probs(*, probs: np.ndarray, features: np.ndarray, rounds: int = 1) -> np.ndarray:
    """Class assignments [N, K] of N target examples from their centroids in feature space.

    probs [N, K]: the model's target probabilities (they seed the first centroids); features [N, h].
    rounds = 0 returns `probs` unchanged. A class that ends a round with no example keeps its previous
    centroid, so no class disappears just because the head never predicted it confidently.
    """
    if rounds < 0:
        raise ValueError(f"rounds={rounds} must be >= 0")
    if probs.shape[0] != features.shape[0]:
        raise ValueError(f"probs has {probs.shape[0]} rows but features {features.shape[0]}: one per example")
    if rounds == 0:
        return probs
    z = _unit(features.astype(np.float64))
    weights = probs.astype(np.float64)
    centroids = _unit(weights.T @ z / np.maximum(weights.sum(0)[:, None], 1e-12))
    for _ in range(rounds):
        similarity = z @ centroids.T
        hard = np.eye(probs.shape[1])[similarity.argmax(1)]
        counts = hard.sum(0)
        updated = _unit(hard.T @ z / np.maximum(counts[:, None], 1.0))
        centroids = np.where(counts[:, None] > 0, updated, centroids)
    logits = z @ centroids.T / ASSIGNMENT_TEMPERATURE
    logits -= logits.max(1, keepdims=True)
    out = np.exp(logits)
    return (out / out.sum(1, keepdims=True)).astype(np.float32)
