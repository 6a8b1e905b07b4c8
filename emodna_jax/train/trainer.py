"""The host loop: restore-or-init, train with progress and logs, checkpoint, evaluate, report.

Target labels are read only in `final_report` (and in the monitors, which are logged and never
used to choose anything: the optional target-UAR monitor, and the run-long pseudo-label precision of
run_logging.PseudoLabelTally, which looks labels up on the host by the target indices the step
returns); the train stream carries none.
"""

import contextlib
import os
import signal
import sys
import time
from typing import Any

import jax
import ml_collections
import numpy as np

from emodna_jax.eval import evaluation, target_labeller
from emodna_jax.method import thresholds
from emodna_jax.train import checkpointing, parallel, run_logging
# setup/init_state and the report's diagnostics and plots are shared with inference.py, which does
# not import this module; the names stay importable from here.
from emodna_jax.train.model_setup import init_state, setup, start_processes  # noqa: F401
from emodna_jax.eval.reporting import collapse_warning, label_free_diagnostics, write_plots  # noqa: F401


class _StopFlag:
    """Turns SIGTERM/SIGINT into a request to checkpoint and stop after the current step."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "_StopFlag":
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not in the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None:  # a second signal: stop at once
            raise KeyboardInterrupt
        self.signal = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def restore_or_init(config, fns, data, checkpointer) -> tuple[Any, int, dict[str, Any]]:
    """The latest checkpoint of this workdir if there is one, else a fresh state (on the host);
    with the step and the checkpoint's metadata ({} for a fresh state)."""
    state = init_state(config, fns, data)
    metadata: dict[str, Any] = {}
    if checkpointer.latest_step() is not None:
        state, metadata = checkpointer.restore(state)
    return state, int(state.step), metadata


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Trains `config` in `workdir` (resuming if it holds checkpoints), then writes results.json.

    Raises config_checks.ConfigError before anything is loaded or compiled for a config that cannot
    work; run_logging.NonFiniteLossError when a loss part turns NaN/inf (the checkpoints saved
    before it are kept); SystemExit after SIGTERM/SIGINT, once the current step is checkpointed.
    """
    wall_start = time.perf_counter()
    workdir = os.path.abspath(workdir)
    backend, data, fns = setup(config)
    is_lead = jax.process_index() == 0
    os.makedirs(workdir, exist_ok=True)
    checkpointer = checkpointing.Checkpointer(os.path.join(workdir, "checkpoints"),
                                              max_to_keep=config.max_checkpoints)
    try:
        return _train(config, workdir, backend, data, fns, checkpointer, is_lead, wall_start)
    finally:
        checkpointer.wait()  # never leave a save half-written, whatever stopped the run
        checkpointer.close()


def _train(config, workdir, backend, data, fns, checkpointer, is_lead, wall_start) -> dict[str, Any]:
    host_state, start, metadata = restore_or_init(config, fns, data, checkpointer)
    if is_lead:
        run_logging.write_json(os.path.join(workdir, "config.json"), config.to_dict())
        print(f"[train] {config.method}: {config.source} -> {config.target}, {len(data.class_names)} classes, "
              f"{data.num_source} source / {data.num_target} target examples"
              + (f" ({data.num_corpora} corpora: one id per source)" if data.num_corpora > 2 else "")
              + f", {len(backend.global_devices)} "
              f"{backend.name} device(s) in {jax.process_count()} process(es); "
              + (f"resuming at step {start}" if start else "starting"), flush=True)
        for line in data.normalization_report:  # which statistics standardised each corpus
            print(f"[train] normalisation {line['text']}", flush=True)
    writer = run_logging.MetricWriter(os.path.join(workdir, "logs"), enabled=is_lead)
    writer.set_class_names(list(data.class_names))
    progress = run_logging.ProgressLine(config.num_steps, start_step=start)
    state = backend.replicate(host_state)
    batches = data.train_batches(start_step=start)
    timing = {"train_seconds": 0.0, "timed_steps": 0}
    compiled: set[bool] = set()  # phases whose step has run once (its first call compiles)
    labeller, labeller_monitors = None, {}
    if fns.settings.uses_centroid_table:
        labeller = target_labeller.CentroidLabeller(
            every=config.pseudo.centroid_every, warmup_steps=config.pseudo.warmup_steps)
    # Pseudo-labels over the whole adaptation phase (a monitor), continued from the checkpoint.
    tally = run_logging.PseudoLabelTally(len(data.class_names), data.target.labels)
    tally.restore(metadata.get("pseudo_label_tally"))
    pending = None  # (step, metrics) of the previous step, read one step late to keep dispatch async
    last_metrics: dict[str, Any] = {}
    if "train_loss" in metadata:  # a finished run started again reports the loss it ended with
        last_metrics = {"loss/total": metadata["train_loss"]}

    def settle(pending):
        step, metrics = pending
        metrics, examples = run_logging.split_example_outputs(backend.host_outputs(metrics, replicated=True))
        try:
            run_logging.check_finite(step + 1, metrics)
        except run_logging.NonFiniteLossError as error:
            checkpointer.wait()
            kept = checkpointer.latest_step()
            raise run_logging.NonFiniteLossError(error.step, error.parts, (
                f"{error}. Training stopped; the last good checkpoint is step {kept} in "
                f"{checkpointer.directory}" if kept is not None else f"{error}. Training stopped "
                "before any checkpoint was saved") + "; lower config.learning_rate or "
                "config.grad_clip_norm, or check the input features") from None
        if "pseudo_label" in examples:
            tally.update(examples["pseudo_label"], examples.get("target_index"))
        if (step + 1) % config.log_every == 0 or step + 1 == config.num_steps:
            writer.write(step + 1, metrics)
            if is_lead:
                print(progress.format(step + 1, metrics), flush=True)
        return metrics

    def save(step, metrics):
        checkpointer.save(step, _host_copy(backend, state), metadata={
            "step": step, "method": config.method,
            "train_loss": float(metrics.get("loss/total", float("nan"))),
            "pseudo_label_tally": tally.state()})

    # closing: whatever ends the loop, the prefetch thread stops (an exception's traceback would
    # otherwise keep the generator, and the thread with its batches, alive)
    with _StopFlag() as stop, contextlib.closing(batches):
        for step in range(start, config.num_steps):
            tick = time.perf_counter()
            adapt = fns.is_adapting(step)
            batch = next(batches)
            if labeller is not None and adapt:
                if labeller.due(step):
                    labeller_monitors = writer.write(step, labeller.refresh(fns, state, data))
                batch = labeller.attach(batch)
            state, metrics = fns.train(state, batch, adapt=adapt)
            if pending is not None:
                last_metrics = settle(pending)  # raises on a non-finite loss, before any save
            pending = (step, metrics)
            done = step + 1
            if done % config.checkpoint_every == 0 or stop.signal is not None or done == config.num_steps:
                last_metrics = settle(pending)
                pending = None
                save(done, last_metrics)
            if adapt in compiled:  # the first step of each phase includes its compilation
                timing["train_seconds"] += time.perf_counter() - tick
                timing["timed_steps"] += 1
            compiled.add(adapt)
            if config.monitor_target_every and done % config.monitor_target_every == 0:
                writer.write(done, _target_monitor(config, fns, state, data))
            if stop.signal is not None:
                checkpointer.wait()
                raise SystemExit(f"[train] stopped by signal {stop.signal} after step {done}; "
                                 "run the same command to resume from the checkpoint")
        if pending is not None:
            last_metrics = settle(pending)
    last_metrics = {**labeller_monitors, **last_metrics}  # the last table's monitors, with the last step's
    checkpointer.wait()
    writer.flush()
    timing["wall_seconds"] = time.perf_counter() - wall_start
    if is_lead:
        print(tally.summary_line(list(data.class_names)), flush=True)
    results = final_report(config, workdir, fns, state, data, last_metrics, timing, writer, tally=tally)
    writer.close()
    return results


def _host_copy(backend: parallel.Backend, state: Any) -> Any:
    """One host copy of a replicated device state (for checkpoints)."""
    return jax.device_get(backend.unreplicate(state))


def _target_monitor(config, fns, state, data) -> dict[str, float]:
    """Target UAR and pseudo-label accuracy as MONITORS ONLY: logged, never read by training or by
    any choice. The pseudo-label accuracy is that of the eval-mode predictions passing the current
    thresholds (fixed, freematch, flexmatch kinds)."""
    predictions = evaluation.predict(fns, state, data.eval_batches("target"))
    if not predictions.has_labels:
        return {}
    out = {"monitor/target_uar": evaluation.report(predictions, data.class_names)["uar"]}
    pseudo = config.pseudo
    if pseudo.threshold in ("fixed", "freematch", "flexmatch"):
        host = jax.device_get(fns.backend.unreplicate(state))
        tau = np.asarray(thresholds.class_thresholds(
            host.thresholds, kind=pseudo.threshold, tau_min=pseudo.tau_min,
            fixed_threshold=pseudo.fixed_threshold))
        predicted = predictions.probs.argmax(1)
        confident = (predictions.probs.max(1) >= tau[predicted]) & (predictions.labels >= 0)
        out["monitor/eval_confident_fraction"] = float(confident.mean())
        if confident.any():
            out["monitor/pseudo_label_accuracy"] = float(
                100.0 * np.mean(predicted[confident] == predictions.labels[confident]))
    return out


def source_val_scores(fns, state, data) -> dict[str, Any]:
    """UAR on the held-out source speakers, by the head and by their own class centroids."""
    val = evaluation.predict(fns, state, data.eval_batches("source_val"), split="source_val")
    return {"source_val_uar": evaluation.report(val, data.class_names).get("uar"),
            "source_val_centroid_uar": evaluation.centroid_report(val, data.class_names).get("uar")}


def final_report(config, workdir, fns, state, data, last_metrics, timing, writer,
                 tally: run_logging.PseudoLabelTally | None = None) -> dict[str, Any]:
    """Evaluates on the target (labels read here, after training) and writes results.json + plots;
    `tally`: the run's pseudo-labels (monitor fields confident_share_run, confident_share_per_class,
    pseudo_label_precision_run; null without it)."""
    target = evaluation.predict(fns, state, data.eval_batches("target"))
    summary = evaluation.report(target, data.class_names)
    results = {
        "task": config.task or f"{config.source}2{config.target}",
        "method": config.method,
        "seed": config.seed,
        "steps": config.num_steps,
        "source": config.source,
        "target": config.target,
        "classes": list(data.class_names),
        **{k: summary.get(k) for k in ("uar", "war", "per_class_recall", "confusion")},
        "num_target_examples": summary["num_examples"],
        "prediction_histogram": summary["prediction_histogram"],  # counts of argmax predictions
        "train_loss": float(last_metrics.get("loss/total", float("nan"))),
        # The last step's scalar losses and pseudo-label monitors (label-free: source CE, confident share).
        "train_monitors": {k: float(np.asarray(v)) for k, v in last_metrics.items() if np.size(v) == 1},
        "label_free": label_free_diagnostics(target),
        # Over the whole adaptation phase, not the last batch; precision is a MONITOR (chooses nothing).
        **(tally or run_logging.PseudoLabelTally(len(data.class_names))).report(list(data.class_names)),
        # Which statistics standardised each corpus (per speaker, or the corpus' for few recordings).
        "normalization": list(data.normalization_report),
        # The same target labelled by its own class centroids (transductive, label-free inference).
        "centroid": evaluation.centroid_report(target, data.class_names),
        "train_seconds": timing["train_seconds"],
        "wall_seconds": timing.get("wall_seconds"),
        # Source + target examples per second over the steps this process ran, compilation excluded.
        "examples_per_s": (2 * config.batch_size * timing["timed_steps"] / timing["train_seconds"]
                           if timing["timed_steps"] else None),
        "devices": f"{len(fns.backend.global_devices)} x {jax.devices()[0].platform} ({fns.backend.name}), "
                   f"{jax.process_count()} process(es)",
        "argv": list(sys.argv),  # the command, when run as train.py
    }
    if config.source_val_speakers:
        results.update(source_val_scores(fns, state, data))
    collapsed = collapse_warning(list(summary["prediction_histogram"].values()), data.class_names)
    results["warnings"] = [collapsed] if collapsed else []
    # Every process takes part in each evaluation (its rows are gathered), so the plots' source
    # predictions are made here, before the processes other than 0 leave.
    source = evaluation.predict(fns, state, data.eval_batches("source"), split="source") if config.plots else None
    if jax.process_index() != 0:
        return results
    run_logging.write_json(os.path.join(workdir, "results.json"), results)
    for warning in results["warnings"]:
        print(f"[train] WARNING: {warning}", flush=True)
    if config.plots:
        write_plots(config, workdir, fns, state, data, target, summary, writer, source=source)
    if results["uar"] is None:
        print(f"[train] the target has no labels; predicted classes {results['prediction_histogram']} "
              f"-> {workdir}/results.json", flush=True)
    else:
        print(f"[train] target UAR {results['uar']:.2f}  WAR {results['war']:.2f}  -> {workdir}/results.json",
              flush=True)
    return results
