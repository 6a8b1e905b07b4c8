"""Label-free model selection: train a small declared grid, score each point without target labels,
keep the point the declared validator prefers (docs/method.md, evaluation protocol).

A config declares the grid and the validator:

  config.select.grid = "loss.decoupling_weight=0.03,0.1,0.3;pseudo.tau_min=0.5,0.7"
  config.select.validator = "dev"

`;` separates fields, `,` values; the grid is their Cartesian product, in the order written. Each
point is trained by the project's trainer into WORKDIR/grid/<point>/ (a plain run folder: eval.py
reads it), scored by every validator of emodna_jax/eval/validators.py from one inference pass over the
held-out source speakers, the source training split and the target, and WORKDIR/selection.json
records every point. The target UAR of each point is written there too, as an after-the-fact
monitor: it is read from the point's results.json after every score exists and never reaches
`choose`, whose only input is the validators' values. The chosen run's results.json is copied to
WORKDIR/results.json with a `selected` field.

The grid's points hold out the source speakers `config.select.val_speakers` ("auto": a fixed set per
corpus, emodna_jax/audio/input_pipeline.py) for the validators that read held-out source data. With
`config.select.refit` (the default) the chosen setting is then trained once more on the whole source
(the config's own `source_val_speakers`) into WORKDIR/refit/, and that run's results.json is
WORKDIR/results.json: every method, with a grid or without, ends on a model trained on the same
source data.

Started again with the same command, a selection reuses every finished point (results.json and
scores.json present) and resumes an interrupted one (or the refit) from its checkpoint.
"""

import itertools
import json
import os
import re
import shutil
from typing import Any, Callable, Iterable

import ml_collections
import numpy as np

from emodna_jax.eval import validators
from emodna_jax.train import config_checks, run_logging

GRID_DIR = "grid"
REFIT_DIR = "refit"
SCORES_FILE = "scores.json"
SELECTION_FILE = "selection.json"


def parse_grid(text: str, config: ml_collections.ConfigDict) -> list[dict[str, Any]]:
    """The grid's points as {dotted field: value} dicts, values typed like the config's field.

    Raises config_checks.ConfigError for an unknown field, a value of the wrong type, a repeated
    field or a field of `select` itself.
    """
    fields: list[tuple[str, list[Any]]] = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, sep, values = part.partition("=")
        name = name.strip()
        if not sep or not values.strip():
            raise config_checks.ConfigError(
                f"config.select.grid part {part!r} is not FIELD=V1,V2,...; e.g. "
                "'loss.decoupling_weight=0.1,0.3;pseudo.tau_min=0.5,0.7'")
        if name.split(".")[0] == "select":
            raise config_checks.ConfigError(f"config.select.grid cannot vary {name!r}, a field of the selection")
        if name in dict(fields):
            raise config_checks.ConfigError(f"config.select.grid names {name!r} twice; give its values once")
        current = _get(config, name)
        fields.append((name, [_typed(name, current, v.strip()) for v in values.split(",")]))
    return [dict(zip([n for n, _ in fields], combo)) for combo in itertools.product(*(v for _, v in fields))]


def _get(config: ml_collections.ConfigDict, name: str) -> Any:
    node: Any = config
    for key in name.split("."):
        if not isinstance(node, ml_collections.ConfigDict) or key not in node:
            raise config_checks.ConfigError(
                f"config.select.grid names {name!r}, which is not a config field (configs/default.py lists them)")
        node = node[key]
    if isinstance(node, ml_collections.ConfigDict):
        raise config_checks.ConfigError(f"config.select.grid names {name!r}, a group of fields; name one field")
    return node


def _typed(name: str, current: Any, text: str) -> Any:
    """`text` as the type of the field's current value."""
    try:
        if isinstance(current, bool):
            if text.lower() not in ("true", "false"):
                raise ValueError
            return text.lower() == "true"
        if isinstance(current, (int, float, str)):
            return type(current)(text)
    except ValueError:
        pass
    raise config_checks.ConfigError(
        f"config.select.grid: {name}={text!r} is not a {type(current).__name__} like the field's "
        f"value {current!r}" + (" (tuples cannot be varied)" if isinstance(current, (tuple, list)) else ""))


def point_name(settings: dict[str, Any]) -> str:
    """A folder name for a point, e.g. 'loss.decoupling_weight=0.1__pseudo.tau_min=0.5'."""
    name = "__".join(f"{k}={v}" for k, v in settings.items()) or "default"
    return re.sub(r"[^A-Za-z0-9._=+-]", "_", name)


def point_config(config: ml_collections.ConfigDict, settings: dict[str, Any], *,
                 refit: bool = False) -> ml_collections.ConfigDict:
    """A copy of `config` with the point's settings and no grid (each point is a plain run). A grid
    point holds out `select.val_speakers` (when set); the refit keeps the config's own."""
    out = ml_collections.ConfigDict(config.to_dict())
    if not refit and config.select.get("val_speakers", ""):
        out.source_val_speakers = config.select.val_speakers
    for name, value in settings.items():
        *path, last = name.split(".")
        node = out
        for key in path:
            node = node[key]
        node[last] = value
    out.select.grid = ""
    return out


def check_selection(config: ml_collections.ConfigDict) -> list[dict[str, Any]]:
    """The grid's points, after refusing a selection that cannot work (before anything trains)."""
    validator = config.select.validator
    if validator not in validators.VALIDATORS:
        raise config_checks.ConfigError(f"config.select.validator={validator!r} is unknown; choose one of "
                                        f"{', '.join(validators.VALIDATORS)}")
    held_out = config.select.get("val_speakers", "") or config.source_val_speakers
    if validator in validators.NEEDS_SOURCE_VAL and not held_out:
        raise config_checks.ConfigError(
            f"config.select.validator={validator!r} scores held-out source speakers, and "
            "config.select.val_speakers and config.source_val_speakers are empty: set one (e.g. "
            f"--config.select.val_speakers=auto) or choose a target-only validator "
            f"({', '.join(validators.TARGET_ONLY)})")
    if config.distributed:
        raise config_checks.ConfigError("config.select.grid runs in one process; set config.distributed=False")
    points = parse_grid(config.select.grid, config)
    if not points:
        raise config_checks.ConfigError("config.select.grid is empty: there is nothing to select")
    for settings in points:  # a point that cannot work is refused before the others train
        try:
            config_checks.validate(point_config(config, settings))
            config_checks.validate(point_config(config, settings, refit=True))
        except config_checks.ConfigError as error:
            raise config_checks.ConfigError(f"grid point {point_name(settings)}: {error}") from None
    return points


def score_run(workdir: str) -> dict[str, float | None]:
    """Every validator of a finished run folder, from one inference pass over its latest checkpoint.

    Only the target's predictions and features are passed on; its labels stay in this function.
    """
    from emodna_jax.eval import evaluation  # jax-side imports: only when a run is scored
    from emodna_jax.workflows import inference

    config, data, fns, state = inference.load_run(workdir)
    target = evaluation.predict(fns, state, data.eval_batches("target"))
    kwargs: dict[str, Any] = {}
    if config.source_val_speakers:
        val = evaluation.predict(fns, state, data.eval_batches("source_val"), split="source_val")
        source = evaluation.predict(fns, state, data.eval_batches("source"), split="source")
        kwargs = dict(source_val_probs=val.probs, source_val_labels=val.labels,
                      source_val_features=val.z_e, source_train_features=source.z_e)
    return validators.score_all(target_probs=target.probs, target_features=target.z_e, **kwargs)


def choose(scores: list[dict[str, float | None]], validator: str) -> int:
    """Index of the point whose `validator` value is highest (the first on a tie); a missing or
    non-finite value never wins. `scores` holds only validator values: no target metric enters."""
    values = [s.get(validator) for s in scores]
    finite = [i for i, v in enumerate(values) if v is not None and np.isfinite(v)]
    if not finite:
        raise ValueError(f"validator {validator!r} has no finite value on any grid point: {values}")
    return max(finite, key=lambda i: (values[i], -i))


def _read_json(path: str) -> Any:
    with open(path) as f:
        return json.load(f)


def _check_reusable(folder: str, config: ml_collections.ConfigDict) -> None:
    """Refuses to reuse a point folder trained with another config (a changed grid or command)."""
    path = os.path.join(folder, "config.json")
    if not os.path.exists(path):
        return
    # `select` is left out: the validator that chooses among points does not change how one trains.
    saved = {k: v for k, v in _read_json(path).items() if k != "select"}
    wanted = {k: v for k, v in json.loads(json.dumps(run_logging._jsonable(config.to_dict()))).items()
              if k != "select"}
    if saved != wanted:
        differ = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
        raise config_checks.ConfigError(
            f"{folder} holds a run of another config (fields {', '.join(differ)} differ): use a new "
            "--workdir, or delete that folder to retrain the point")


def select_and_train(config: ml_collections.ConfigDict, workdir: str, *,
                     train_fn: Callable[[ml_collections.ConfigDict, str], dict] | None = None,
                     score_fn: Callable[[str], dict] = score_run) -> dict[str, Any]:
    """Trains every grid point of `config.select.grid` (or reuses it), scores it, chooses by
    `config.select.validator`, writes WORKDIR/selection.json and WORKDIR/results.json; returns the
    selection record.

    train_fn(config, workdir) -> results (default: trainer.train_and_evaluate); score_fn(workdir) ->
    {validator: value}: replaceable for tests.
    """
    if train_fn is None:
        from emodna_jax.train import trainer
        train_fn = trainer.train_and_evaluate
    points = check_selection(config)
    workdir = os.path.abspath(workdir)
    rows = []
    for i, settings in enumerate(points):
        name = point_name(settings)
        folder = os.path.join(workdir, GRID_DIR, name)
        run_config = point_config(config, settings)
        _check_reusable(folder, run_config)
        if not os.path.exists(os.path.join(folder, "results.json")):
            print(f"[select] point {i + 1}/{len(points)}: {name}", flush=True)
            train_fn(run_config, folder)
        scores_path = os.path.join(folder, SCORES_FILE)
        if not os.path.exists(scores_path):
            run_logging.write_json(scores_path, score_fn(folder))
        rows.append({"point": name, "settings": settings, "workdir": folder,
                     "validators": _read_json(scores_path)})
    validator = config.select.validator
    best = choose([r["validators"] for r in rows], validator)
    # The target UAR is read only now, after the choice, as a monitor for the rank-correlation table.
    for row in rows:
        row["target_uar"] = _read_json(os.path.join(row["workdir"], "results.json")).get("uar")
    chosen = rows[best]
    record = {"task": config.task or f"{config.source}2{config.target}", "method": config.method,
              "seed": config.seed, "grid": config.select.grid, "validator": validator,
              "chosen": chosen["point"], "chosen_settings": chosen["settings"],
              "chosen_value": chosen["validators"][validator], "points": rows,
              "note": "target_uar is a monitor written after the choice; only validator values choose"}
    refit = bool(config.select.get("refit", False))
    final = chosen["workdir"]
    if refit:
        final = record["refit"] = os.path.join(workdir, REFIT_DIR)
        refit_config = point_config(config, chosen["settings"], refit=True)
        _check_reusable(final, refit_config)
        if not os.path.exists(os.path.join(final, "results.json")):
            print(f"[select] refit: {chosen['point']} on the whole source", flush=True)
            train_fn(refit_config, final)
    run_logging.write_json(os.path.join(workdir, SELECTION_FILE), record)
    results = _read_json(os.path.join(final, "results.json"))
    results["selected"] = {"point": chosen["point"], "settings": chosen["settings"],
                           "validator": validator, "value": chosen["validators"][validator],
                           "workdir": final, "selection": os.path.join(workdir, SELECTION_FILE),
                           "points": len(rows), "refit": refit}
    run_logging.write_json(os.path.join(workdir, "results.json"), results)
    _copy_chosen_pictures(final, workdir)
    print(f"[select] {validator} prefers {chosen['point']} ({chosen['validators'][validator]:.4g}) of "
          f"{len(rows)} points -> {workdir}/selection.json", flush=True)
    return record


def _copy_chosen_pictures(src: str, dst: str) -> None:
    for name in ("confusion.png", "embeddings.png", "curves.png"):
        if os.path.exists(os.path.join(src, name)):
            shutil.copyfile(os.path.join(src, name), os.path.join(dst, name))


# ---- after the fact: how far each validator can be trusted ------------------------------------

def spearman(a: Iterable[float], b: Iterable[float]) -> float | None:
    """Spearman's rank correlation (ties get their average rank); None for fewer than 2 pairs or a
    constant side."""
    a, b = np.asarray(list(a), np.float64), np.asarray(list(b), np.float64)
    if len(a) != len(b):
        raise ValueError(f"spearman needs equal lengths, got {len(a)} and {len(b)}")
    if len(a) < 2:
        return None
    ra, rb = _ranks(a), _ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x), dtype=np.float64)
    for value in np.unique(x):  # ties: the mean of their ranks
        tied = x == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def rank_correlations(selection_files: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Each validator's Spearman correlation with target UAR over the grid points of each selection
    (one selection.json per task/seed/method), and their mean: how far each validator can be trusted.

    Returns {validator: {"per_selection": {path: rho or None}, "mean": float or None, "count": int}};
    points without a target UAR or a validator value are left out of that selection's correlation.
    """
    out: dict[str, dict[str, Any]] = {v: {"per_selection": {}} for v in validators.VALIDATORS}
    for path in selection_files:
        points = _read_json(path)["points"]
        for name, entry in out.items():
            pairs = [(p["validators"].get(name), p.get("target_uar")) for p in points]
            pairs = [(v, u) for v, u in pairs if v is not None and u is not None]
            entry["per_selection"][path] = spearman(*zip(*pairs)) if len(pairs) >= 2 else None
    for entry in out.values():
        rhos = [r for r in entry["per_selection"].values() if r is not None]
        entry["mean"] = float(np.mean(rhos)) if rhos else None
        entry["count"] = len(rhos)
    return out


def format_rank_table(table: dict[str, dict[str, Any]]) -> str:
    """A markdown table of `rank_correlations`: one row per validator, its mean Spearman rho with
    target UAR and over how many selections (grids with at least two scored points)."""
    lines = ["| validator | mean Spearman rho with target UAR | selections |", "|---|---|---|"]
    for name, entry in table.items():
        mean = "n/a" if entry["mean"] is None else f"{entry['mean']:+.2f}"
        lines.append(f"| {name} | {mean} | {entry['count']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    # python -m emodna_jax.workflows.selection runs/*/selection.json: the validators' rank-correlation table.
    import sys

    if len(sys.argv) < 2:
        raise SystemExit("usage: python -m emodna_jax.workflows.selection WORKDIR/selection.json ...")
    print(format_rank_table(rank_correlations(sys.argv[1:])))
