"""Small shared pieces for the tests: tiny configs and in-memory two-domain batches."""

import ml_collections
import numpy as np

from configs import default

TINY_SHAPE = (16, 5)  # (T, F)


def tiny_config(method: str = "emodna", **overrides) -> ml_collections.ConfigDict:
    """A method config shrunk to a model that compiles in about a second."""
    c = default.get_config(method)
    c.model.filters = 4
    c.model.dilations = 2
    c.model.embed_dim = 8
    c.model.dropout_rate = 0.0  # fewer moving parts; tests/test_parallel.py turns the default dropout on
    c.num_steps = 20
    c.pseudo.warmup_steps = 1
    c.pseudo.tau_min = 0.0  # let pseudo-labels through so every adaptation path runs
    c.pseudo.fixed_threshold = 0.3
    c.lr_warmup_steps = 1
    return set_fields(c, overrides)


def get_field(c: ml_collections.ConfigDict, field: str):
    """The value of a dotted config field, e.g. "loss.temperature"."""
    for part in field.split("."):
        c = c[part]
    return c


def set_fields(c: ml_collections.ConfigDict, overrides: dict) -> ml_collections.ConfigDict:
    """Sets dotted config fields, e.g. {"loss.temperature": 0.5}, in place; returns c."""
    for key, value in overrides.items():
        target = c
        *path, last = key.split(".")
        for part in path:
            target = target[part]
        target[last] = value
    return c


def two_domain_batch(
    rng: np.random.Generator, *, devices: int, per_device: int, num_classes: int = 3, shape=TINY_SHAPE,
    shift: float = 1.0,
) -> dict:
    """A labelled source and an unlabelled, shifted target whose class lives in the mean of a band of
    coefficients. Leaves are [devices, per_device, ...]."""
    def make(n, offset):
        labels = rng.integers(0, num_classes, size=n)
        x = rng.normal(size=(n,) + shape).astype(np.float32)
        x[:, :, 0] += 2.0 * (labels[:, None] - (num_classes - 1) / 2)
        x[:, :, 1:] += offset
        return x, labels

    n = devices * per_device
    xs, ys = make(n, 0.0)
    xt, _ = make(n, shift)
    split = lambda a: a.reshape((devices, per_device) + a.shape[1:])  # noqa: E731
    return {
        "source": {"features": split(xs), "label": split(ys.astype(np.int32)),
                   "corpus": np.zeros((devices, per_device), np.int32)},
        "target": {"features": split(xt), "corpus": np.ones((devices, per_device), np.int32)},
    }


def reshard(batch: dict, devices: int) -> dict:
    """The same global batch laid out over `devices` devices."""
    def one(a):
        flat = a.reshape((-1,) + a.shape[2:])
        return flat.reshape((devices, -1) + a.shape[2:])
    return {k: {kk: one(v) for kk, v in d.items()} for k, d in batch.items()}


def write_results(root: str, task: str, method: str, seed: int, uar: float) -> None:
    """One run's results.json where accuracy_benchmark.py writes it: <root>/<task>/<method>/seed<S>/."""
    import json
    import os

    folder = os.path.join(root, task, method, f"seed{seed}")
    os.makedirs(folder)
    with open(os.path.join(folder, "results.json"), "w") as f:
        json.dump({"uar": uar}, f)
