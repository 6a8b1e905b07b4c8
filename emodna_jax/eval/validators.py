"""Label-free validators: scores of a trained model that need no target label (docs/method.md, protocol).

Every validator returns a float where HIGHER IS BETTER, so a model selector takes the arg-max of any of
them (risks are negated). What each one reads:

* `source_uar`, `source_neg_ce`: labelled held-out SOURCE speakers only (source risk).
* `iwcv`, `dev`: held-out source losses weighted by density ratios w(x) = p_t(x) / p_s(x), estimated
  by `density_ratios` from the emotion features z_e of the source training split and of the
  (unlabelled) target.
* `snd`, `information_maximization`: the target's predictions only.

All functions are pure numpy on host arrays: probs [N, K] (rows sum to 1), labels [N] int class ids,
features [N, h]. References: Sugiyama et al. 2007 (IWCV, JMLR 8); You et al. 2019 (DEV, "Towards
Accurate Model Selection in Deep Unsupervised Domain Adaptation", ICML); Saito et al. 2021 (SND, "Tune
it the Right Way", ICCV); Musgrave et al. 2022 ("Benchmarking Validation Methods for Unsupervised
Domain Adaptation") for IM as a validator.
"""

import numpy as np

from emodna_jax.eval import diagnostics, metrics

SND_TEMPERATURE = diagnostics.SND_TEMPERATURE  # 0.05, as in Saito et al. 2021
_EPS = 1e-12


def _check_probs(probs: np.ndarray, name: str = "probs") -> np.ndarray:
    probs = np.asarray(probs, np.float64)
    if probs.ndim != 2 or probs.shape[0] == 0:
        raise ValueError(f"{name} must be [N, K] with N >= 1, got shape {probs.shape}")
    return probs


def _entropy(p: np.ndarray, axis: int = -1) -> np.ndarray:
    """-sum p log p along `axis` (nats), with 0 log 0 = 0."""
    return -(p * np.log(np.where(p > 0, p, 1.0))).sum(axis)


def cross_entropy(*, probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-example loss l_i = -log p_i[y_i] (nats), [N]; probabilities floored at 1e-12."""
    probs = _check_probs(probs)
    labels = np.asarray(labels, np.int64).reshape(-1)
    if labels.shape[0] != probs.shape[0] or labels.min() < 0 or labels.max() >= probs.shape[1]:
        raise ValueError(f"labels must be [N] class ids in 0..{probs.shape[1] - 1} for probs {probs.shape}")
    return -np.log(np.maximum(probs[np.arange(len(labels)), labels], _EPS))


# ---- source risk ------------------------------------------------------------------------------

def source_uar(*, probs: np.ndarray, labels: np.ndarray) -> float:
    """Unweighted average recall (%) of argmax predictions on held-out source speakers; higher is better.

    UAR = 100 * mean_k (#{i: y_i = k, argmax p_i = k} / #{i: y_i = k}) over the classes present.
    """
    probs = _check_probs(probs)
    labels = np.asarray(labels, np.int64).reshape(-1)
    confusion = np.asarray(metrics.confusion_matrix(
        labels=labels, predictions=probs.argmax(1), mask=np.ones(len(labels), np.float32),
        num_classes=probs.shape[1]))
    return float(metrics.summarize(confusion, [str(k) for k in range(probs.shape[1])])["uar"])


def source_neg_ce(*, probs: np.ndarray, labels: np.ndarray) -> float:
    """-mean_i l_i, the negative cross-entropy (nats) on held-out source speakers; higher is better."""
    return float(-cross_entropy(probs=probs, labels=labels).mean())


# ---- importance-weighted validation -----------------------------------------------------------

def _logistic_fit(x: np.ndarray, y: np.ndarray, l2: float, iterations: int = 50) -> np.ndarray:
    """Weights [d + 1] (bias last) of L2-regularised logistic regression by Newton's method.

    Minimises sum_i log(1 + exp(-s_i a_i)) + l2/2 |beta|^2 (bias unpenalised), with s_i = 2 y_i - 1
    and a_i = x_i . beta + b; the objective is strictly convex for l2 > 0, so Newton converges.
    """
    xb = np.concatenate([x, np.ones((len(x), 1))], 1)
    w = np.zeros(xb.shape[1])
    penalty = np.full(xb.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ w, -30, 30)))
        grad = xb.T @ (p - y) + penalty * w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def density_ratios(*, source_features: np.ndarray, target_features: np.ndarray,
                   eval_features: np.ndarray, l2: float = 1.0, max_log_ratio: float = 10.0) -> np.ndarray:
    """Importance weights w(x) = p_t(x) / p_s(x) at `eval_features`, from a source-vs-target classifier.

    A logistic regression (L2 strength `l2` on the weights, features standardised by the pooled
    source + target mean and deviation) gives P(target | x); by Bayes' rule
      w(x) = P(target | x) / P(source | x) * N_s / N_t,
    the factor undoing the classes' sizes (You et al. 2019, their `get_weight`, with an MLP there).
    Evaluate it on held-out source examples, never on the ones the classifier saw. The log-ratio is
    clipped to +-`max_log_ratio` so that one unlike example cannot carry the whole estimate.

    Args:
      source_features: [N_s, h] features of source examples (e.g. the source training split's z_e).
      target_features: [N_t, h] features of the unlabelled target.
      eval_features: [M, h] where to evaluate w (e.g. held-out source speakers' z_e).
    Returns:
      [M] positive weights; equal distributions give weights near 1.
    """
    xs = np.asarray(source_features, np.float64)
    xt = np.asarray(target_features, np.float64)
    xv = np.asarray(eval_features, np.float64)
    if len(xs) == 0 or len(xt) == 0:
        raise ValueError(f"density_ratios needs source and target examples, got {len(xs)} and {len(xt)}")
    pooled = np.concatenate([xs, xt])
    mean, std = pooled.mean(0), pooled.std(0) + 1e-8
    z = lambda a: (a - mean) / std  # noqa: E731
    beta = _logistic_fit(z(pooled), np.concatenate([np.zeros(len(xs)), np.ones(len(xt))]), l2)
    log_odds = z(xv) @ beta[:-1] + beta[-1]  # log P(t|x) / P(s|x)
    return np.exp(np.clip(log_odds + np.log(len(xs) / len(xt)), -max_log_ratio, max_log_ratio))


def iwcv(*, losses: np.ndarray, weights: np.ndarray) -> float:
    """Importance-weighted validation (Sugiyama et al. 2007): -(1/M) sum_i w_i l_i; higher is better.

    An unbiased estimate (up to its sign) of the target risk when w = p_t / p_s is exact.
    Args: losses [M] per-example held-out source losses; weights [M] density ratios at those examples.
    """
    losses, weights = _pair(losses, weights)
    return float(-(weights * losses).mean())


def dev(*, losses: np.ndarray, weights: np.ndarray) -> float:
    """Deep Embedded Validation (You et al. 2019): minus the IWCV risk with a control variate.

    With L_i = w_i l_i and the control variate w (whose mean is 1 under the source),
      eta = -Cov(L, w) / Var(w)    (sample covariance and variance, ddof = 1),
      R_DEV = mean(L) + eta * mean(w) - eta,
    which keeps IWCV's expectation and lowers its variance. Returns -R_DEV (higher is better). When
    every weight is equal, Var(w) = 0 and no correction applies: R_DEV = mean(L).
    Args: losses [M]; weights [M] (M >= 2).
    """
    losses, weights = _pair(losses, weights)
    weighted = weights * losses
    if len(weights) < 2 or np.var(weights) <= 1e-12 * max(1.0, np.mean(weights) ** 2):
        return float(-weighted.mean())
    eta = -np.cov(weighted, weights, ddof=1)[0, 1] / np.var(weights, ddof=1)
    return float(-(weighted.mean() + eta * weights.mean() - eta))


def _pair(losses: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    losses = np.asarray(losses, np.float64).reshape(-1)
    weights = np.asarray(weights, np.float64).reshape(-1)
    if losses.shape != weights.shape or len(losses) == 0:
        raise ValueError(f"losses {losses.shape} and weights {weights.shape} must be [M], M >= 1, alike")
    return losses, weights


# ---- target-only validators -------------------------------------------------------------------

def snd(*, representation: np.ndarray, temperature: float = SND_TEMPERATURE) -> float:
    """Soft neighbourhood density (Saito et al. 2021) of the target; higher is better.

    u_i = x_i / |x_i|; a_ij = softmax_{j != i}(u_i . u_j / temperature); SND = mean_i H(a_i) (nats).
    The paper (and pytorch-adapt's default) uses the softmax predictions as the representation;
    `representation` may also be the features z_e. See diagnostics.soft_neighborhood_density for its
    caveat: a collapse onto one prediction reaches the maximum log(N - 1).
    Args: representation [N, d], N >= 2.
    """
    return diagnostics.soft_neighborhood_density(probs=np.asarray(representation, np.float64),
                                                 temperature=temperature)


def information_maximization(*, probs: np.ndarray) -> float:
    """IM = H(mean_i p_i) - mean_i H(p_i) (nats), the mutual information between input and predicted
    class under the empirical distribution; higher is better. It is high when each prediction is
    confident (low mean entropy) and the classes are used evenly (high entropy of the mean); in
    [0, log K].
    Args: probs [N, K] target predictions.
    """
    probs = _check_probs(probs)
    return float(_entropy(probs.mean(0)) - _entropy(probs, axis=1).mean())


# ---- all of them at once ----------------------------------------------------------------------

# Which data each validator needs: "source_val" (held-out source speakers' labels), "target" only.
NEEDS_SOURCE_VAL = ("source_uar", "source_neg_ce", "iwcv", "dev")
TARGET_ONLY = ("snd", "snd_features", "information_maximization")
VALIDATORS = NEEDS_SOURCE_VAL + TARGET_ONLY


def score_all(*, target_probs: np.ndarray, target_features: np.ndarray,
              source_val_probs: np.ndarray | None = None, source_val_labels: np.ndarray | None = None,
              source_val_features: np.ndarray | None = None,
              source_train_features: np.ndarray | None = None) -> dict[str, float | None]:
    """Every validator of VALIDATORS (higher is better); those needing held-out source speakers are None
    without them. Takes no target label by construction: a selector built on this cannot see one.

    Args:
      target_probs [N_t, K], target_features [N_t, h]: predictions and z_e on the unlabelled target.
      source_val_probs [M, K], source_val_labels [M], source_val_features [M, h]: held-out speakers.
      source_train_features [N_s, h]: z_e of the source training split (fits the density ratios).
    """
    scores: dict[str, float | None] = {
        "snd": snd(representation=target_probs),
        "snd_features": snd(representation=target_features),
        "information_maximization": information_maximization(probs=target_probs),
    }
    if source_val_probs is None or source_val_labels is None or len(source_val_labels) == 0:
        return {**{name: None for name in NEEDS_SOURCE_VAL}, **scores}
    losses = cross_entropy(probs=source_val_probs, labels=source_val_labels)
    weights = density_ratios(source_features=source_train_features, target_features=target_features,
                             eval_features=source_val_features)
    return {"source_uar": source_uar(probs=source_val_probs, labels=source_val_labels),
            "source_neg_ce": float(-losses.mean()), "iwcv": iwcv(losses=losses, weights=weights),
            "dev": dev(losses=losses, weights=weights), **scores}
