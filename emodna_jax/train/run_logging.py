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


# Per-example outputs of the train step (keys "examples/..."): the host loop reads them for run-long
# monitors and keeps them out of TensorBoard, the progress line and the finite-loss check.
EXAMPLE_PREFIX = "examples/"


def split_example_outputs(metrics: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(scalar-or-per-class metrics, per-example outputs) of one step's metrics."""
    scalars = {k: v for k, v in metrics.items() if not k.startswith(EXAMPLE_PREFIX)}
    examples = {k[len(EXAMPLE_PREFIX):]: v for k, v in metrics.items() if k.startswith(EXAMPLE_PREFIX)}
    return scalars, examples


class PseudoLabelTally:
    """Target pseudo-labels counted over the WHOLE adaptation phase, not one batch.

    A MONITOR only: written to results.json and the run log, never read by training or by any
    choice. The target labels it reads for precision stay on the host: the train step returns each
    target example's pseudo-label (-1 where it was not confident) and its index into the target
    split, and this looks the label up here; no label reaches the step.

    Args:
      num_classes: K.
      target_labels: [N_target] int labels of the target split (-1: unlabelled), or None.
    """

    def __init__(self, num_classes: int, target_labels: np.ndarray | None = None) -> None:
        self.num_classes = num_classes
        self.target_labels = None if target_labels is None else np.asarray(target_labels)
        self.seen = 0  # target examples the adaptation steps labelled (confident or not)
        self.confident = np.zeros(num_classes, np.int64)  # confident pseudo-labels per class
        self.labelled = 0  # confident pseudo-labels of examples that have a target label
        self.correct = 0  # ... of which the pseudo-label equals the target label

    def update(self, pseudo_labels: np.ndarray, indices: np.ndarray | None = None) -> None:
        """Adds one step's target examples: pseudo_labels [B] (-1: not confident), indices [B] into
        the target split (None: precision cannot be counted for this step)."""
        pseudo = np.asarray(pseudo_labels, np.int64).reshape(-1)
        self.seen += pseudo.size
        ok = pseudo >= 0
        self.confident += np.bincount(pseudo[ok], minlength=self.num_classes)[: self.num_classes]
        if indices is None or self.target_labels is None:
            return
        truth = self.target_labels[np.asarray(indices, np.int64).reshape(-1)[ok]]
        has = truth >= 0
        self.labelled += int(has.sum())
        self.correct += int((truth[has] == pseudo[ok][has]).sum())

    def state(self) -> dict[str, Any]:
        """JSON-able counts (kept in checkpoint metadata, so a resumed run counts the whole run)."""
        return {"seen": self.seen, "confident": self.confident.tolist(), "labelled": self.labelled,
                "correct": self.correct}

    def restore(self, counts: Mapping[str, Any] | None) -> None:
        """Continues from `state()` counts (no-op for None, e.g. a checkpoint written before them)."""
        if not counts or len(counts.get("confident", [])) != self.num_classes:
            return
        self.seen, self.labelled, self.correct = int(counts["seen"]), int(counts["labelled"]), int(counts["correct"])
        self.confident = np.asarray(counts["confident"], np.int64)

    def report(self, class_names: list[str]) -> dict[str, Any]:
        """results.json fields: `confident_share_run` (confident pseudo-labels / target examples the
        adaptation steps saw), `confident_share_per_class` ({class: confident pseudo-labels of that
        class / examples seen}; they sum to the run share), `pseudo_label_precision_run` (% of the
        confident pseudo-labels equal to the target label; null when none passed or the target has
        no labels) and the raw counts. All null for a run that made no pseudo-label."""
        seen = self.seen
        return {
            "confident_share_run": self.confident.sum() / seen if seen else None,
            "confident_share_per_class": (dict(zip(class_names, (self.confident / seen).tolist()))
                                          if seen else None),
            "pseudo_label_precision_run": 100.0 * self.correct / self.labelled if self.labelled else None,
            "pseudo_label_counts_run": self.state(),
        }

    def summary_line(self, class_names: list[str]) -> str:
        """One log line, e.g. "[train] pseudo-labels over the run: 12.5% confident (angry 3.1%, ...);
        precision 61.0% (a monitor: chooses nothing)"."""
        r = self.report(class_names)
        if r["confident_share_run"] is None:
            return "[train] pseudo-labels over the run: none made (no adaptation step)"
        per_class = ", ".join(f"{k} {100 * v:.1f}%" for k, v in r["confident_share_per_class"].items())
        precision = r["pseudo_label_precision_run"]
        return (f"[train] pseudo-labels over the run: {100 * r['confident_share_run']:.1f}% of "
                f"{self.seen} target examples confident ({per_class}); precision "
                + ("n/a (none passed or no target labels)" if precision is None else f"{precision:.1f}%")
                + " (a monitor: chooses nothing)")
