"""Linear probe of a front end: logistic regression on utterance features, cross-corpus UAR.

    .venv/bin/python benchmarks/linear_probe.py --features=affect[,mfcc39,...] \
        [--corpora_root=../shared/corpora] [--data_dir=~/.cache/emodna_jax/tfds] [--within_corpus]
        [--exclude=REGEX]  (drop affect functionals by name, to compare variants within corpus)

For each feature config, the three corpora (emodb, emovo, casia) are read through the project's
TFDS builders (`input_pipeline.load_corpus_arrays`, building them on first use into data_dir) and
restricted to the 5 shared classes (angry, fear, happy, neutral, sad) by `select_classes`. A
sequence feature [N, T, F] with T > 1 (mfcc39, logmel64, affect_frames) is pooled to the mean and
std over its T frames (padding frames included, as the models see them); a [N, 1, F] one (affect,
egemaps, compare) is used as it is. Each corpus is standardised without labels by
`normalization.fit/apply` (kind "speaker", the project's per-speaker minimum with corpus fallback,
`--min_per_speaker`, default configs/default.py's), each corpus with its own statistics.

Cross-corpus (default): sklearn LogisticRegression(C=0.1, max_iter=2000), fixed beforehand, fits
the whole source and is scored on the whole target: UAR (macro recall, %) for C->B C->E B->C B->E
E->C E->B and their mean, as a markdown table.

--within_corpus: leave-one-speaker-out UAR inside each corpus (predictions pooled over the
folds), the only score to compare descriptor variants on; the cross-corpus targets are never used
to choose anything.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import ml_collections  # noqa: E402
import numpy as np  # noqa: E402

from configs import default  # noqa: E402
from emodna_jax.audio import input_pipeline, normalization  # noqa: E402

CORPORA = {"B": "emodb", "E": "emovo", "C": "casia"}
TASKS = ("c2b", "c2e", "b2c", "b2e", "e2c", "e2b")
CLASSES = ("angry", "fear", "happy", "neutral", "sad")


def pooled(features: np.ndarray) -> np.ndarray:
    """[N, T, F] -> [N, F] for T == 1, else [N, 2F] (mean and std over T)."""
    if features.shape[1] == 1:
        return features[:, 0, :].astype(np.float64)
    return np.concatenate([features.mean(1), features.std(1)], axis=1).astype(np.float64)


def load_corpus(name: str, features: str, args) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(pooled features [N, D] float64, labels [N] in 0..4, speakers [N], seconds to build/read)."""
    config = ml_collections.ConfigDict({"data_dir": args.data_dir,
                                        "corpora_root": args.corpora_root, "features": features})
    start = time.time()
    arrays = input_pipeline.load_corpus_arrays(name, config=config, split="train")
    seconds = time.time() - start
    arrays = input_pipeline.select_classes(arrays, CLASSES, role="source")
    return pooled(arrays.features), arrays.labels, arrays.speakers, seconds


def standardise(x: np.ndarray, speakers: np.ndarray, min_per_speaker: int) -> np.ndarray:
    """Per-speaker standardisation of x [N, D] (corpus fallback), through normalization.py."""
    stats = normalization.fit("speaker", x[:, None, :], speakers, min_per_speaker=min_per_speaker)
    out = normalization.apply(stats, x[:, None, :], speakers)[:, 0, :]
    if not np.all(np.isfinite(out)):
        raise ValueError("non-finite standardised features.")
    return out.astype(np.float64)


def kept_columns(features: str, dims: int, exclude: str) -> np.ndarray:
    """Indices of the `affect` functionals whose names do not match the regex `exclude`."""
    if features != "affect":
        raise ValueError(f"--exclude names functionals of features=affect, not {features!r}.")
    from emodna_jax.audio import functionals
    keep = [i for i, n in enumerate(functionals.NAMES) if not re.search(exclude, n)]
    if len(functionals.NAMES) != dims or not keep:
        raise ValueError(f"--exclude={exclude!r} keeps {len(keep)} of {dims} columns.")
    return np.asarray(keep)


def uar(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Unweighted average recall (macro recall over the classes present in y_true), %."""
    recalls = [np.mean(y_pred[y_true == k] == k) for k in np.unique(y_true)]
    return 100.0 * float(np.mean(recalls))


def probe():
    from sklearn.linear_model import LogisticRegression
    return LogisticRegression(C=0.1, max_iter=2000)


def cross_corpus(data: dict) -> dict[str, float]:
    scores = {}
    for task in TASKS:
        src, tgt = data[task[0].upper()], data[task[2].upper()]
        model = probe().fit(src[0], src[1])
        scores[task] = uar(tgt[1], model.predict(tgt[0]))
    scores["mean"] = float(np.mean([scores[t] for t in TASKS]))
    return scores


def within_corpus(data: dict) -> dict[str, float]:
    scores = {}
    for letter, (x, y, speakers) in data.items():
        pred = np.empty_like(y)
        for s in np.unique(speakers):
            test = speakers == s
            pred[test] = probe().fit(x[~test], y[~test]).predict(x[test])
        scores[letter] = uar(y, pred)
    scores["mean"] = float(np.mean([scores[k] for k in CORPORA]))
    return scores


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--features", default="affect",
                        help="comma-separated feature configs (features.FEATURE_CONFIGS)")
    parser.add_argument("--corpora_root", default=os.path.join(ROOT, "..", "shared", "corpora"))
    parser.add_argument("--data_dir", default=input_pipeline.DEFAULT_DATA_DIR)
    parser.add_argument("--min_per_speaker", type=int,
                        default=default.get_config().normalization_min_per_speaker)
    parser.add_argument("--exclude", default="",
                        help="regex: drop the affect functionals whose names match; several "
                        "variants separated by ';' each give a row ('' = all functionals)")
    parser.add_argument("--within_corpus", action="store_true",
                        help="leave-one-speaker-out UAR inside each corpus instead")
    args = parser.parse_args(argv)
    args.data_dir = os.path.expanduser(args.data_dir)

    rows = []
    for features in args.features.split(","):
        raw = {k: load_corpus(name, features, args) for k, name in CORPORA.items()}
        seconds = sum(d[3] for d in raw.values())
        print(f"{features}: {raw['B'][0].shape[1]} numbers per utterance; built/read the three "
              f"corpora in {seconds:.0f} s", flush=True)
        for exclude in (e.strip() for e in args.exclude.split(";")):
            data = {}
            for k, (x, y, speakers, _) in raw.items():
                if exclude:
                    x = x[:, kept_columns(features, x.shape[1], exclude)]
                data[k] = (standardise(x, speakers, args.min_per_speaker), y, speakers)
            scores = within_corpus(data) if args.within_corpus else cross_corpus(data)
            rows.append((features + (f" minus /{exclude}/" if exclude else ""),
                         data["B"][0].shape[1], scores))

    cols = list(CORPORA) if args.within_corpus else list(TASKS)
    head = [c.upper() if len(c) == 1 else f"{c[0].upper()}->{c[2].upper()}" for c in cols]
    what = "leave-one-speaker-out UAR within each corpus" if args.within_corpus else \
        "cross-corpus UAR, whole source -> whole target"
    print(f"\nLinear probe (LogisticRegression C=0.1; per-speaker statistics, min "
          f"{args.min_per_speaker} recordings; 5 classes): {what}, %\n")
    print("| features | dims | " + " | ".join(head) + " | mean |")
    print("|---|---|" + "---|" * (len(cols) + 1))
    for features, dims, scores in rows:
        print(f"| {features} | {dims} | " + " | ".join(f"{scores[c]:.1f}" for c in cols)
              + f" | {scores['mean']:.1f} |")


if __name__ == "__main__":
    main()
