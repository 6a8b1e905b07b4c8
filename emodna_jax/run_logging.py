"""Run logs: JSON reports, TensorBoard scalars, the progress line and the non-finite-loss check.

TensorBoard event files are written with TensorFlow's own summary ops (`tf.summary.write` with the
"scalars" plugin tag), which need no `tensorboard` package (tensorflow-cpu does not install it);
TensorFlow is imported only when the first scalar is written, and never sees an accelerator.
"""

import json
import math
import os
import re
import time
from typing import Any, Mapping

import numpy as np


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray) or hasattr(obj, "__array__") and not isinstance(obj, (str, bytes)):
        return _jsonable(np.asarray(obj).tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None  # JSON has no NaN/inf; null says "not available"
    return obj


_NUMBER_LIST = re.compile(r"\[\s*((?:-?[\d.eE+-]+|null)(?:,\s*(?:-?[\d.eE+-]+|null))*)\s*\]")


def write_json(path: str, obj: Any) -> None:
    """Writes `obj` (dicts, lists, numpy values) as indented JSON, atomically (temp file + rename).
    Non-finite floats become null."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    text = json.dumps(_jsonable(obj), indent=2, allow_nan=False)
    # Lists of numbers on one line each (a confusion matrix reads as a matrix).
    text = _NUMBER_LIST.sub(lambda m: "[" + re.sub(r"\s+", " ", m.group(1)) + "]", text)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text + "\n")
    os.replace(tmp, path)


def flatten_metrics(metrics: Mapping[str, Any], class_names: list[str] | None = None) -> dict[str, float]:
    """Scalars as they are; a vector of K values (K = number of classes) becomes one scalar per
    class name ("pseudo/thresholds/angry"), any other vector one per index ("x/0", "x/1")."""
    out: dict[str, float] = {}
    for name, value in metrics.items():
        array = np.asarray(value, dtype=np.float64)
        if array.ndim == 0:
            out[name] = float(array)
            continue
        array = array.reshape(-1)
        names = class_names if class_names and len(class_names) == array.size else range(array.size)
        for label, v in zip(names, array):
            out[f"{name}/{label}"] = float(v)
    return out


class MetricWriter:
    """TensorBoard scalars under `logdir` (only when `enabled`, i.e. on process 0) and an in-memory
    `history` {step: {name: float}} of every scalar written (for curves.png)."""

    def __init__(self, logdir: str, *, enabled: bool = True) -> None:
        self.logdir = logdir
        self.enabled = enabled
        self.class_names: list[str] | None = None
        self.history: dict[int, dict[str, float]] = {}
        self._writer = None

    def set_class_names(self, class_names: list[str]) -> None:
        """Names for per-class vectors (confident counts, thresholds, prediction histogram)."""
        self.class_names = list(class_names)

    def _tf_writer(self):
        if self._writer is None:
            import tensorflow as tf

            try:  # TF only writes files here; keep it off the accelerators JAX uses
                tf.config.set_visible_devices([], "GPU")
                tf.config.set_visible_devices([], "TPU")
            except (RuntimeError, ValueError):
                pass
            from tensorflow.core.framework import summary_pb2

            self._tf = tf
            self._metadata = summary_pb2.SummaryMetadata(
                plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
            self._writer = tf.summary.create_file_writer(self.logdir)
        return self._writer

    def write(self, step: int, metrics: Mapping[str, Any]) -> dict[str, float]:
        """Records `metrics` at `step`; returns the flattened scalars."""
        scalars = flatten_metrics(metrics, self.class_names)
        if not scalars:
            return scalars
        self.history.setdefault(int(step), {}).update(scalars)
        if self.enabled:
            writer = self._tf_writer()
            with writer.as_default():
                for name, value in scalars.items():
                    self._tf.summary.write(name, self._tf.constant(value, self._tf.float32),
                                           step=int(step), metadata=self._metadata)
        return scalars

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def read_scalars(logdir: str) -> dict[str, dict[int, float]]:
    """{tag: {step: value}} from the event files under `logdir` (for tests and notebooks)."""
    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    out: dict[str, dict[int, float]] = {}
    for name in sorted(os.listdir(logdir)):
        if "tfevents" not in name:
            continue
        for record in tf.data.TFRecordDataset(os.path.join(logdir, name)).as_numpy_iterator():
            event = event_pb2.Event.FromString(record)
            for value in event.summary.value:
                tensor = tf.make_ndarray(value.tensor) if value.HasField("tensor") else value.simple_value
                out.setdefault(value.tag, {})[int(event.step)] = float(np.asarray(tensor))
    return out


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


class ProgressLine:
    """One line per logged step: step/total, steps/s (since the previous line), ETA, loss parts and
    the pseudo-label rate. The first line's rate includes compilation."""

    def __init__(self, num_steps: int, *, start_step: int = 0) -> None:
        self.num_steps = num_steps
        self._last = (start_step, time.perf_counter())

    def format(self, step: int, metrics: Mapping[str, Any]) -> str:
        now = time.perf_counter()
        last_step, last_time = self._last
        self._last = (step, now)
        rate = (step - last_step) / max(now - last_time, 1e-9)
        eta = (self.num_steps - step) / rate if rate > 0 else float("inf")
        losses = {k[len("loss/"):]: v for k, v in metrics.items() if k.startswith("loss/")}
        total = losses.pop("total", None)
        parts = " ".join(f"{k} {float(np.asarray(v)):.4f}" for k, v in losses.items())
        width = len(str(self.num_steps))
        line = (f"[train] step {step:{width}d}/{self.num_steps} ({100.0 * step / self.num_steps:3.0f}%) "
                f"{rate:6.2f} steps/s  ETA {_duration(eta):>6s}")
        if total is not None:
            line += f"  loss {float(np.asarray(total)):.4f}"
        if parts:
            line += f" ({parts})"
        if "pseudo/confident_fraction" in metrics:
            line += f"  confident {100 * float(np.asarray(metrics['pseudo/confident_fraction'])):.0f}%"
        return line


class NonFiniteLossError(FloatingPointError):
    """A loss part (or the gradient norm) became NaN or infinite; `step` and `parts` say where."""

    def __init__(self, step: int, parts: dict[str, float], message: str) -> None:
        super().__init__(message)
        self.step = step
        self.parts = parts


def check_finite(step: int, metrics: Mapping[str, Any]) -> None:
    """Raises NonFiniteLossError naming `step` and every loss part when any "loss/*" metric (or
    "monitor/grad_norm", whose NaN would poison the parameters) is not finite."""
    parts = {k: float(np.asarray(v)) for k, v in metrics.items()
             if k.startswith("loss/") or k == "monitor/grad_norm"}
    bad = sorted(k for k, v in parts.items() if not math.isfinite(v))
    if bad:
        listed = ", ".join(f"{k}={v:.6g}" for k, v in parts.items())
        raise NonFiniteLossError(
            step, parts, f"non-finite {', '.join(bad)} at step {step}; all loss parts: {listed}")
