"""Endless seeded streams of example indices and a background prefetcher: the batch order of a run.

Position i of a stream lies in epoch i // n at offset i % n of that epoch's seeded permutation, so a
resumed run computes its next batch directly from the step (emodna_jax/audio/input_pipeline.py uses both).
"""

import queue
import threading
from typing import Callable, Iterator, NamedTuple

import numpy as np


def permutation(n: int, seed: int, stream: int, epoch: int) -> np.ndarray:
    return np.random.default_rng(np.random.SeedSequence([seed, stream, epoch])).permutation(n)


def stream_indices(n: int, *, seed: int, stream: int, start: int, count: int,
                   _cache: Callable | None = None) -> np.ndarray:
    """Example indices at positions [start, start+count) of an endless stream of shuffled epochs.

    Position i lies in epoch i // n at offset i % n of that epoch's seeded permutation, so any
    window is computed directly (resuming costs nothing)."""
    perm = _cache or permutation
    pos = np.arange(start, start + count)
    epochs, offsets = pos // n, pos % n
    out = np.empty(count, dtype=np.int64)
    for e in np.unique(epochs):
        sel = epochs == e
        out[sel] = perm(n, seed, stream, int(e))[offsets[sel]]
    return out


class _Failure(NamedTuple):
    error: BaseException


def prefetch(make: Callable[[int], dict], start: int, depth: int) -> Iterator[dict]:
    """Yields make(start), make(start+1), ... computed `depth` ahead in a background thread."""
    if depth <= 0:
        step = start
        while True:
            yield make(step)
            step += 1
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        step = start
        try:
            while put(make(step)):
                step += 1
        except BaseException as e:  # handed to the consumer, which re-raises it with its traceback
            put(_Failure(e))

    threading.Thread(target=work, daemon=True, name="emodna-input").start()
    try:
        while True:
            item = q.get()
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:  # generator closed or collected: let the worker exit
        stop.set()
