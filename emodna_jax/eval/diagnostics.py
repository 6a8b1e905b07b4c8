"""Label-free diagnostics of the target predictions (docs/method.md §11): computed without target labels, so
they may guide design choices where target UAR must not.

All functions are pure numpy on host arrays; `probs` is [N, K] class probabilities (rows sum to 1).
"""

import numpy as np

SND_TEMPERATURE = 0.05


def _entropy(p: np.ndarray, axis: int = -1) -> np.ndarray:
    """-sum p log p along `axis`, with 0 log 0 = 0."""
    p = np.asarray(p, np.float64)
    logp = np.log(np.where(p > 0, p, 1.0))
    return -(p * logp).sum(axis)


def soft_neighborhood_density(*, probs: np.ndarray, temperature: float = SND_TEMPERATURE,
                              chunk: int = 1024) -> float:
    """Soft Neighborhood Density (SND; Saito et al., "Tune it the right way", ICCV 2021).

    With u_i = p_i / ||p_i|| (the L2-normalised softmax vectors), s_ij = u_i . u_j, and for every i
    the distribution a_ij = softmax_{j != i}(s_ij / temperature) over its neighbours (self left
    out), SND = mean_i H(a_i) with H the entropy in nats. Higher means denser neighbourhoods:
    predictions that form tight groups score high, scattered ones low. Range [0, log(N-1)].

    Caveats: every prediction identical (a collapse onto one vector, e.g. all uniform or all one
    class) reaches the maximum log(N-1), so SND must be read next to the prediction histogram. The
    authors' code puts similarity -1 on the diagonal instead of leaving self out; with temperature
    0.05 that differs by a weight of exp(-20 - 20) ~ 4e-18 relative to a neighbour at similarity 1.

    Args:
      probs: [N, K] class probabilities, N >= 2.
      temperature: softmax temperature over similarities (0.05 in the paper).
      chunk: rows computed at a time (memory is chunk x N).
    Returns:
      SND as a float (nats).
    """
    probs = np.asarray(probs, np.float64)
    n = probs.shape[0]
    if n < 2:
        raise ValueError(f"soft_neighborhood_density needs at least 2 examples, got {n}")
    u = probs / np.maximum(np.linalg.norm(probs, axis=1, keepdims=True), 1e-12)
    total = 0.0
    for start in range(0, n, chunk):
        rows = np.arange(start, min(start + chunk, n))
        logits = u[rows] @ u.T / temperature
        logits[np.arange(len(rows)), rows] = -np.inf  # leave self out
        logits -= logits.max(1, keepdims=True)
        weights = np.exp(logits)
        weights /= weights.sum(1, keepdims=True)
        total += _entropy(weights, axis=1).sum()
    return float(total / n)


def mean_prediction_entropy(probs: np.ndarray) -> float:
    """Mean over examples of the entropy (nats) of each prediction: 0 when every prediction is
    one-hot, log K when every prediction is uniform. Low values with a skewed histogram warn of
    confident collapse.

    Args:
      probs: [N, K] class probabilities.
    """
    probs = np.asarray(probs, np.float64)
    if probs.shape[0] == 0:
        raise ValueError("mean_prediction_entropy needs at least one example")
    return float(_entropy(probs, axis=1).mean())


def prediction_histogram(probs: np.ndarray) -> np.ndarray:
    """Fraction of examples predicted as each class (argmax), [K], summing to 1. On a balanced
    target a bar near 0 or near 1 means the model ignores or swamps a class.

    Args:
      probs: [N, K] class probabilities (N >= 1).
    """
    probs = np.asarray(probs)
    if probs.shape[0] == 0:
        raise ValueError("prediction_histogram needs at least one example")
    counts = np.bincount(probs.argmax(1), minlength=probs.shape[1])
    return counts / counts.sum()
