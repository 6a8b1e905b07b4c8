"""Methods as flat overrides of one base config (docs/method.md).

`configs/default.py` is the default method, `emodna`, exactly as it runs. Every other method is a small
dict of dotted config fields that it sets differently from that base; no method is built from another
one, so each entry below is the whole difference. Every method runs through the same train step:
nothing here is a separate code path.

    configs/default.py:NAME                      the base with NAME's overrides
    train.py --config=... --config.method=NAME   the same (`expand_method_flag`); later flags still win
"""

from typing import NamedTuple

import ml_collections

Config = ml_collections.ConfigDict

BASE = "emodna"  # the method configs/default.py spells out field by field


class Method(NamedTuple):
    """what: one line for the README's method table; published: the method as its paper describes it
    (a baseline, or Emo-DNA as published), False for this project's own choices and the ablations;
    overrides: dotted field -> value, where the method differs from the base."""

    what: str
    published: bool
    overrides: dict


# Deep CORAL's weight rule (Sun & Saenko 2016): a weight that makes the CORAL loss about as large as
# the classification loss at the end of training. At weight 1 it ended 340-13,000x below the source
# cross-entropy (median 2,300x over 14 runs, read from their logged losses: source labels and
# unlabelled target features only); the weight is that ratio's order of magnitude, fixed before any
# run with it.
DEEP_CORAL_WEIGHT = 1000.0

# Label-free selection (configs/default.py: select): each method's grid over its own weights, declared
# before any run of it; its validator (DEV) picks a point per task. A method without a grid is one plain
# run: source-only and AdaBN have no weight to choose, and emodna_literal is the published setting.
NO_GRID = ""

METHODS: dict[str, Method] = {
    # ---- baselines: every Emo-DNA part off, BatchNorm statistics shared unless said ----------------
    "source_only": Method(
        "Labelled source only; target examples share the BatchNorm call (no free AdaBN).", True, {
            "model.batch_norm": "shared", "loss.corpus_id_weight": 0.0, "loss.decoupling_weight": 0.0,
            "loss.corpus_align": "none", "loss.corpus_align_weight": 0.0,
            "loss.class_align": "none", "loss.class_align_weight": 0.0, "pseudo.threshold": "none",
            "select.grid": NO_GRID}),
    "adabn": Method(
        "Labelled source only with per-corpus BatchNorm statistics (AdaBN, Li et al. 2018): the control "
        "for the default's BatchNorm.", True, {
            "loss.corpus_id_weight": 0.0, "loss.decoupling_weight": 0.0,
            "loss.corpus_align": "none", "loss.corpus_align_weight": 0.0,
            "loss.class_align": "none", "loss.class_align_weight": 0.0, "pseudo.threshold": "none",
            "select.grid": NO_GRID}),
    "mmd": Method(
        "Source classification plus corpus-level MMD (multi-kernel, Long et al. 2015).", True, {
            "model.batch_norm": "shared", "loss.corpus_id_weight": 0.0, "loss.decoupling_weight": 0.0,
            "loss.corpus_align_weight": 1.0,  # the base's MMD, at weight 1
            "loss.class_align": "none", "loss.class_align_weight": 0.0, "pseudo.threshold": "none",
            "select.grid": "loss.corpus_align_weight=0.1,0.3,1.0"}),
    "dann": Method(
        "Source classification plus a corpus discriminator behind gradient reversal (DANN, Ganin et al. "
        "2016).", True, {
            "model.batch_norm": "shared", "loss.corpus_id_weight": 0.0, "loss.decoupling_weight": 0.0,
            "loss.corpus_align": "dann", "loss.corpus_align_weight": 1.0,
            "loss.class_align": "none", "loss.class_align_weight": 0.0, "pseudo.threshold": "none",
            "select.grid": "loss.corpus_align_weight=0.1,0.3,1.0"}),
    "coral": Method(
        "Source classification plus CORAL with Deep CORAL's weight rule (Sun & Saenko 2016; weight "
        f"{DEEP_CORAL_WEIGHT:g}).", True, {
            "model.batch_norm": "shared", "loss.corpus_id_weight": 0.0, "loss.decoupling_weight": 0.0,
            "loss.corpus_align": "coral", "loss.corpus_align_weight": DEEP_CORAL_WEIGHT,
            "loss.class_align": "none", "loss.class_align_weight": 0.0, "pseudo.threshold": "none",
            "select.grid": "loss.corpus_align_weight=100.0,1000.0,10000.0"}),
    "pseudo_label": Method(
        "Self-training: cross-entropy on target pseudo-labels above a fixed confidence threshold "
        "(pseudo.fixed_threshold).", True, {
            "model.batch_norm": "shared", "loss.corpus_id_weight": 0.0, "loss.decoupling_weight": 0.0,
            "loss.corpus_align": "none", "loss.corpus_align_weight": 0.0, "pseudo.threshold": "fixed",
            "select.grid": "pseudo.fixed_threshold=0.8,0.9,0.95"}),
    "self_training_balanced": Method(
        "Class-balanced self-training: cross-entropy on the most confident fraction of each predicted "
        "class (pseudo.quantile_start -> quantile_end over adaptation; Zou et al. 2018).", True, {
            "model.batch_norm": "shared", "loss.corpus_id_weight": 0.0, "loss.decoupling_weight": 0.0,
            "loss.corpus_align": "none", "loss.corpus_align_weight": 0.0}),  # the base's class-level half
    # ---- Emo-DNA --------------------------------------------------------------------------------
    "emodna_literal": Method(
        "Emo-DNA as the design first read it: prototype class-level alignment with FreeMatch thresholds, "
        "BatchNorm statistics shared by the corpora, the decoupling, corpus- and class-level weights at 1.",
        True, {
            "model.batch_norm": "shared", "loss.decoupling_weight": 1.0, "loss.corpus_align_weight": 1.0,
            "loss.class_align": "prototype", "pseudo.threshold": "freematch", "select.grid": NO_GRID}),
    "emodna": Method(
        "Emo-DNA, this project's default (configs/default.py): the published components, class-level "
        "alignment as cross-entropy on class-balanced pseudo-labels, per-corpus BatchNorm statistics, "
        "decoupling and corpus-level weights 0.1.", False, {}),
    "emodna_prototype_align": Method(
        "The default with prototype class-level alignment (weight 0.1 or 1) and FreeMatch or quantile "
        "thresholds: the default before docs/decisions.md §11.", False, {
            "loss.class_align": "prototype", "loss.class_align_weight": 0.1, "pseudo.threshold": "freematch",
            "select.grid": "pseudo.threshold=freematch,quantile;loss.class_align_weight=0.1,1.0"}),
    "emodna_no_decoupling": Method(
        "The default without the corpus encoder's losses and the contrastive decoupling.", False, {
            "loss.corpus_id_weight": 0.0, "loss.decoupling_weight": 0.0}),
    "emodna_no_corpus_align": Method(
        "The default without corpus-level (MMD) alignment.", False, {
            "loss.corpus_align": "none", "loss.corpus_align_weight": 0.0}),
    "emodna_no_class_align": Method(
        "The default without class-level alignment (pseudo-labels still feed the decoupling and the "
        "emotion prototypes).", False, {
            "loss.class_align": "none", "loss.class_align_weight": 0.0}),
    "emodna_fixed_threshold": Method(
        "The default with a fixed confidence threshold (pseudo.fixed_threshold) instead of the "
        "class-balanced ones.", False, {
            "pseudo.threshold": "fixed", "select.grid": "pseudo.fixed_threshold=0.8,0.9,0.95"}),
}

# Every field some method sets: `expand_method_flag` writes all of them, so that a method chosen by
# flag replaces whichever method the config file had chosen instead of mixing with it.
METHOD_FIELDS: tuple[str, ...] = tuple(sorted({k for m in METHODS.values() for k in m.overrides}))


def _get(c: Config, field: str):
    for part in field.split("."):
        c = c[part]
    return c


def _set(c: Config, field: str, value) -> None:
    *path, last = field.split(".")
    for part in path:
        c = c[part]
    c[last] = value


def apply(c: Config, name: str) -> None:
    """Writes method `name`'s overrides into `c` (in place), which must hold the base method's settings."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of: {', '.join(METHODS)}")
    if c.method != BASE:
        raise ValueError(f"methods.apply({name!r}): the config already holds method {c.method!r}; a method "
                         f"overrides the base ({BASE!r}), so give one method per config")
    for field, value in METHODS[name].overrides.items():
        _set(c, field, value)
    c.method = name


def method_flags(name: str, base: Config) -> list[str]:
    """`--config.FIELD=VALUE` for the method name and every field in METHOD_FIELDS, at method `name`'s
    value (its override, else the base's `base`, e.g. configs/default.py's get_config())."""
    if name not in METHODS:
        raise ValueError(f"--config.method={name!r} is not a method; choose one of: {', '.join(METHODS)}")
    overrides = METHODS[name].overrides
    values = {f: overrides[f] if f in overrides else _get(base, f) for f in METHOD_FIELDS}
    return [f"--config.method={name}"] + [f"--config.{f}={v}" for f, v in values.items()]


def expand_method_flag(argv: list[str], base: Config) -> list[str]:
    """Turns `--config.method=NAME` (or `--config.method NAME`) into NAME's method_flags, placed right
    after the `--config=` flag, so that every other `--config.x=y` flag still wins over the method.

    Returns argv unchanged when it has no method flag."""
    names, rest, i = [], [], 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--config.method="):
            names.append(arg.split("=", 1)[1])
        elif arg == "--config.method" and i + 1 < len(argv):
            names.append(argv[i + 1])
            i += 1
        else:
            rest.append(arg)
        i += 1
    if not names:
        return argv
    if len(set(names)) > 1:
        raise ValueError(f"--config.method is given {len(names)} times ({', '.join(names)}); give it once")
    at = next((j for j, a in enumerate(rest) if a.startswith("--config=") or a == "--config"), None)
    if at is None:
        raise ValueError("--config.method needs --config=FILE before it, e.g. --config=configs/default.py")
    at += 1 if rest[at].startswith("--config=") else 2
    return rest[:at] + method_flags(names[0], base) + rest[at:]


def describe() -> list[tuple[str, str, str]]:
    """The README's method table: (name, what it is, "yes"/"no" published) per registered method."""
    return [(name, m.what, "yes" if m.published else "no") for name, m in METHODS.items()]


def markdown_table() -> str:
    """describe() as a Markdown table."""
    rows = ["| method | what it is | published |", "|---|---|---|"]
    rows += [f"| `{name}` | {what} | {published} |" for name, what, published in describe()]
    return "\n".join(rows)
