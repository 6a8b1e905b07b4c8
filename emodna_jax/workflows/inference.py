"""What eval.py does: restore a trained run, evaluate it on a corpus, or label new audio files."""

import csv
import json
import os
from typing import Any

import jax
import ml_collections
import numpy as np

from emodna_jax.audio import features, normalization, segmentation
from emodna_jax.eval import evaluation, reporting
from emodna_jax.train import checkpointing, model_setup, run_logging

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
# predictions.csv gets a centroid_prediction column from this many files per class upwards.
CENTROID_MIN_PER_CLASS = 5
# --predict segments files longer than this (seconds): longer than almost every utterance of the
# acted corpora (in the shared copies: 3 of EMOVO's 588 files, up to 14 s; CASIA at most 4.9 s), so
# a corpus-like file is labelled whole, as in training and evaluation.
LONG_FILE_S = 10.0


def load_run(workdir: str, *, defaults: ml_collections.ConfigDict | None = None,
             **overrides: Any) -> tuple[ml_collections.ConfigDict, Any, Any, Any]:
    """The config a run was trained with (with `overrides`), its data, step functions and the state
    of its latest checkpoint, on the devices. `defaults` (eval.py passes configs/default.py's) fills
    the fields of a run saved before they existed; without it such a run fails on the first missing
    field. A selection run's folder (train.py with a grid) stands for its chosen model (model_dir)."""
    workdir = model_dir(workdir)
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: {workdir} is not a training workdir (run train.py first)")
    with open(path) as f:
        config = ml_collections.ConfigDict(json.load(f))
    if defaults is not None:
        _fill_missing(config, defaults)
    for key, value in overrides.items():
        if value is not None:
            config[key] = value
    # Evaluation and prediction run in one process, whatever trained the model.
    config.update({"distributed": False, "coordinator_address": "", "num_processes": 0, "process_id": -1})
    _, data, fns = model_setup.setup(config)
    checkpointer = checkpointing.Checkpointer(os.path.join(workdir, "checkpoints"), max_to_keep=10**6)
    if checkpointer.latest_step() is None:
        raise FileNotFoundError(f"no checkpoint in {workdir}/checkpoints: train first (train.py --workdir={workdir})")
    state, _ = checkpointer.restore(model_setup.init_state(config, fns, data))
    checkpointer.close()
    return config, data, fns, fns.backend.replicate(state)


def model_dir(workdir: str) -> str:
    """The folder holding a run's model: `workdir` itself, or for a selection run (its
    results.json names the chosen run under "selected") the chosen run: WORKDIR/refit when the
    choice was retrained on the whole source, else WORKDIR/grid/<point>."""
    workdir = os.path.abspath(workdir)
    results = os.path.join(workdir, "results.json")
    if os.path.exists(os.path.join(workdir, "config.json")) or not os.path.exists(results):
        return workdir
    with open(results) as f:
        selected = json.load(f).get("selected") or {}
    # Where it was trained, else (the run folder was moved) the same place under `workdir`.
    moved = (os.path.join(workdir, "refit") if selected.get("refit")
             else os.path.join(workdir, "grid", str(selected.get("point"))))
    for folder in (selected.get("workdir") or "", moved):
        if folder and os.path.exists(os.path.join(folder, "config.json")):
            return folder
    return workdir


def _fill_missing(config: ml_collections.ConfigDict, defaults: ml_collections.ConfigDict) -> None:
    """Adds the fields a run's saved config lacks because they were introduced after it was trained,
    with today's defaults (every option added later defaults to the behaviour before it)."""
    for key, value in defaults.items():
        if key not in config:
            config[key] = value
        elif isinstance(value, ml_collections.ConfigDict) and isinstance(config[key], ml_collections.ConfigDict):
            _fill_missing(config[key], value)


def evaluate_workdir(workdir: str, *, corpus: str | None = None, split: str | None = None,
                     plots: bool | None = None,
                     defaults: ml_collections.ConfigDict | None = None) -> dict[str, Any]:
    """Evaluates the latest checkpoint on `corpus` (default: the run's target) and writes
    WORKDIR/eval/<name>.json, plus <name>_confusion.png and <name>_embeddings.png when `plots`
    (default: the run's config.plots). `defaults`: as for load_run."""
    config, data, fns, state = load_run(workdir, defaults=defaults, target=corpus, target_split=split,
                                        plots=plots)
    name = _safe_name(f"{config.target}_{config.target_split}")
    predictions = evaluation.predict(fns, state, data.eval_batches("target"))
    summary = evaluation.report(predictions, data.class_names)
    centroids = evaluation.by_centroids(predictions)
    result = {"workdir": os.path.abspath(workdir), "corpus": config.target, "split": config.target_split,
              "method": config.method, "classes": list(data.class_names),
              "step": int(jax.device_get(fns.backend.unreplicate(state).step)), **summary,
              "label_free": reporting.label_free_diagnostics(predictions),
              "centroid": evaluation.report(centroids, data.class_names)}
    if not predictions.has_labels:
        result["predictions"] = _prediction_rows([e.file for e in data.eval_examples("target")], predictions,
                                                 data.class_names, centroids=centroids)
    out_dir = os.path.join(workdir, "eval")
    os.makedirs(out_dir, exist_ok=True)
    run_logging.write_json(os.path.join(out_dir, f"{name}.json"), result)
    if config.plots:
        reporting.write_plots(config, out_dir, fns, state, data, predictions, summary, prefix=f"{name}_")
    return result


def predict_files(workdir: str, path: str, *, output: str | None = None, speaker: str | None = None,
                  defaults: ml_collections.ConfigDict | None = None, log=print) -> list[dict[str, Any]]:
    """Class probabilities for one audio file or every audio file under a folder; writes a CSV
    (default WORKDIR/predictions.csv) and returns its rows.

    A file of at most LONG_FILE_S (10 s) is labelled whole, as in training: one row, segment "all".
    A longer one is cut where it speaks (segmentation.speech_segments: energy-based voice activity,
    segments from 0.5 s up to the front end's utterance length, features.FeatureConfig.num_samples:
    4 s for `affect`, 4.35 s for `mfcc39`): one row per segment (segment 1, 2, ... with start_s/end_s in seconds),
    then its summary row, segment "all", whose probabilities are the segments' mean weighted by
    their durations. A file without speech (a short one whose loudest 25 ms frame is below -55
    dBFS, a long one without 0.5 s of speech) gets one row with note "no speech" and no
    probabilities; a file that cannot be read gets one with note "skipped: <why>"; both are logged
    and the other files are still predicted. Columns: file, segment, start_s, end_s, prediction,
    one probability per class, note, and centroid_prediction (see _add_centroid_labels) when the
    predicted rows hold every class CENTROID_MIN_PER_CLASS times.

    For a run with per-speaker normalisation, `speaker` says whose statistics standardise the files:
    None, the target corpus' (speaker unknown); a speaker id of the target corpus, that speaker's;
    "self", the files' own (their segments'), as one new speaker (every file from that speaker, a
    few dozen or more: asked for explicitly, so config.normalization_min_per_speaker does not
    apply). A target speaker below that minimum was standardised by the corpus' statistics in
    training, and is here too. Other runs standardise like their target corpus and ignore it.
    `defaults`: as for load_run; `log`: where the skipped and silent files are reported."""
    config, data, fns, state = load_run(workdir, defaults=defaults)
    files = _audio_files(path)
    feature_config = features.get_feature_config(config.features)
    rows, pieces = _cut_files(files, feature_config, log)
    if pieces:
        x = _standardise(np.stack([features.compute_features(w, feature_config) for _, w in pieces]),
                         data.target_stats, speaker, config.target)
        predictions = evaluation.predict(fns, state, _padded_batches(x, fns.backend.num_devices,
                                                                     data.per_device_eval_batch))
        for (row, _), p in zip(pieces, predictions.probs):
            row.update({"prediction": data.class_names[int(p.argmax())],
                        **{n: float(v) for n, v in zip(data.class_names, p)}})
        _summarise_long_files(rows, data.class_names)
        if len(pieces) >= CENTROID_MIN_PER_CLASS * len(data.class_names):
            _add_centroid_labels(rows, [row for row, _ in pieces], predictions, data.class_names)
    columns = ["file", "segment", "start_s", "end_s", "prediction", *data.class_names, "note"]
    if any("centroid_prediction" in row for row in rows):
        columns.append("centroid_prediction")
    rows = [{c: row.get(c, "") for c in columns} for row in rows]
    output = output or os.path.join(workdir, "predictions.csv")
    with open(output, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return rows


def _cut_files(files: list[str], feature_config: features.FeatureConfig, log):
    """The rows of predictions.csv without their predictions, and the (row, samples) pieces the
    model is to label (predict_files' docstring says which)."""
    rate = feature_config.sample_rate
    max_segment_s = feature_config.num_samples / rate
    rows: list[dict[str, Any]] = []
    pieces: list[tuple[dict[str, Any], np.ndarray]] = []
    for file in files:
        try:
            wave = features.load_audio(file, sample_rate=rate)
        except features.AudioFileError as error:
            log(f"[predict] skipped {file}: {error}")
            rows.append({"file": file, "segment": "all", "note": f"skipped: {error}"})
            continue
        duration = round(len(wave) / rate, 3)
        whole = {"file": file, "segment": "all", "start_s": 0.0, "end_s": duration}
        if duration <= LONG_FILE_S:  # an utterance, as the model was trained on: labelled whole
            speaks = segmentation.speech_mask(segmentation.frame_energy_db(wave, rate)).any()
            segments = np.array([[0.0, duration]]) if speaks else np.zeros((0, 2))
        else:
            segments = segmentation.speech_segments(wave, rate, max_segment_s=max_segment_s)
        if not len(segments):
            log(f"[predict] {file}: no speech (no {segmentation.MIN_SPEECH_S} s above "
                f"{segmentation.FLOOR_DB:.0f} dBFS and the recording's pauses); no prediction")
            rows.append({**whole, "note": "no speech"})
            continue
        if duration <= LONG_FILE_S:
            rows.append(whole)
            pieces.append((whole, wave))
            continue
        for k, (start, end) in enumerate(segments):
            row = {"file": file, "segment": str(k + 1), "start_s": round(float(start), 3),
                   "end_s": round(float(end), 3)}
            rows.append(row)
            pieces.append((row, wave[int(round(start * rate)):int(round(end * rate))]))
        speech_s = float(np.sum(segments[:, 1] - segments[:, 0]))
        rows.append({**whole, "note": f"{len(segments)} segments, {speech_s:.1f} s of speech"})
    return rows, pieces


def _summarise_long_files(rows: list[dict[str, Any]], class_names) -> None:
    """Fills each segmented file's summary row: the mean of its segments' probabilities weighted
    by their durations, and its arg-max."""
    segments: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["segment"] != "all":
            segments.setdefault(row["file"], []).append(row)
    for row in rows:
        if row["segment"] == "all" and row["file"] in segments:
            parts = segments[row["file"]]
            weights = np.array([r["end_s"] - r["start_s"] for r in parts])
            probs = np.array([[r[n] for n in class_names] for r in parts])
            mean = weights @ probs / weights.sum()
            row.update({"prediction": class_names[int(mean.argmax())],
                        **{n: float(v) for n, v in zip(class_names, mean)}})


def _standardise(x: np.ndarray, stats, speaker: str | None, target: str) -> np.ndarray:
    """New recordings are standardised like the target corpus the model was adapted to
    (`stats`: fitted by the input pipeline on the target corpus, label-free); `speaker` as in
    predict_files."""
    if speaker == "self" and stats.kind == "speaker":
        return normalization.apply(normalization.fit("corpus", x), x)
    if speaker is not None and stats.kind == "speaker":
        if speaker not in stats.speakers:  # a speaker below the minimum gets the corpus' statistics
            raise ValueError(f"speaker={speaker!r} is not a speaker of the target corpus {target!r} "
                             f"(its speakers: {', '.join(stats.speakers)}); pass one of "
                             "them, 'self' (the files' own statistics) or none (the corpus')")
        return normalization.apply(stats, x, np.array([speaker] * len(x), dtype=object))
    return normalization.apply(stats, x)


def _add_centroid_labels(rows, predicted_rows, predictions: evaluation.Predictions, class_names) -> None:
    """centroid_prediction of each labelled piece: the set's own class centroids (transductive.py;
    decided for all the pieces together); "" on the other rows."""
    for row, k in zip(predicted_rows, evaluation.by_centroids(predictions).probs.argmax(1)):
        row["centroid_prediction"] = class_names[int(k)]
    for row in rows:
        row.setdefault("centroid_prediction", "")


def _padded_batches(x: np.ndarray, num_devices: int, per_device: int):
    """Eval batches [devices, per_device, T, F] over x, the last one padded and masked (the same
    shapes as the eval stream's, so the compiled eval step is reused)."""
    size = num_devices * per_device
    for start in range(0, len(x), size):
        chunk = x[start:start + size]
        padded = np.zeros((size,) + x.shape[1:], np.float32)
        padded[: len(chunk)] = chunk
        mask = np.arange(size) < len(chunk)
        yield {"features": padded.reshape((num_devices, per_device) + x.shape[1:]),
               "label": np.full((num_devices, per_device), -1, np.int32),
               "mask": mask.reshape(num_devices, per_device)}


def _audio_files(path: str) -> list[str]:
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise FileNotFoundError(f"--predict={path}: no such file or folder")
    found = sorted(os.path.join(root, n) for root, _, names in os.walk(path) for n in names
                   if n.lower().endswith(AUDIO_SUFFIXES))
    if not found:
        raise FileNotFoundError(f"--predict={path}: no audio file ({', '.join(AUDIO_SUFFIXES)}) under it")
    return found


def _prediction_rows(files: list[str], predictions: evaluation.Predictions, class_names, *,
                     centroids: evaluation.Predictions | None = None) -> list[dict[str, Any]]:
    """One row per file: the head's prediction and class probabilities, and, for a set large enough
    to hold every class several times, its label from the set's own class centroids (transductive.py;
    decided for the whole set together; `centroids` if the caller already has them)."""
    rows = [{"file": f, "prediction": class_names[int(p.argmax())],
             **{n: float(v) for n, v in zip(class_names, p)}} for f, p in zip(files, predictions.probs)]
    if len(files) >= CENTROID_MIN_PER_CLASS * len(class_names):
        if centroids is None:
            centroids = evaluation.by_centroids(predictions)
        for row, k in zip(rows, centroids.probs.argmax(1)):
            row["centroid_prediction"] = class_names[int(k)]
    return rows


def _safe_name(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text).strip("_")
