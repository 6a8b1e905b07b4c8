"""Pictures of a run: confusion matrix, t-SNE of the emotion and corpus features, training curves.

matplotlib runs headless (Agg); every function writes one PNG and closes its figure.
"""

import os
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

MARKERS = ("o", "^", "s", "D", "v", "P", "X", "*")
# Exact t-SNE: on 2 busy CPU cores it took 3 s for 400 points and 15 s for 1000, where Barnes-Hut
# (sklearn's default, OpenMP) took 12 s and 25 s; a picture needs no more points than this.
MAX_TSNE_POINTS = 1000
TSNE_ITERATIONS = 500  # sklearn's default 1000 doubles the time for no visible change at this size


def _save(fig, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_confusion(confusion: np.ndarray, class_names: Sequence[str], path: str, *, title: str = "") -> None:
    """Row-normalised confusion matrix (rows = true class) with the counts written in each cell."""
    confusion = np.asarray(confusion, np.float64)
    recall = confusion / np.maximum(confusion.sum(1, keepdims=True), 1)
    k = len(class_names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * k, 0.8 + 0.85 * k))
    image = ax.imshow(recall, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{int(confusion[i, j])}\n{100 * recall[i, j]:.0f}%", ha="center", va="center",
                    fontsize=8, color="white" if recall[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), class_names, rotation=45, ha="right")
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    uar = 100 * np.mean([recall[i, i] for i in range(k) if confusion[i].sum() > 0] or [0.0])
    ax.set_title(f"{title}\nUAR {uar:.1f}%" if title else f"UAR {uar:.1f}%", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="recall")
    _save(fig, path)


def _tsne(x: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.manifold import TSNE

    x = np.asarray(x, np.float64)
    if len(x) < 5:  # t-SNE needs perplexity < N; so few points are shown by their first 2 PCs
        centred = x - x.mean(0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        out = centred @ vt[:2].T
        return np.pad(out, ((0, 0), (0, 2 - out.shape[1])))
    perplexity = float(min(30.0, (len(x) - 1) / 3))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                max_iter=TSNE_ITERATIONS, method="exact").fit_transform(x)


def plot_embeddings(*, emotion_features: np.ndarray, corpus_features: np.ndarray | None,
                    labels: np.ndarray, corpora: np.ndarray, class_names: Sequence[str],
                    corpus_names: Sequence[str], path: str, title: str = "", seed: int = 0) -> None:
    """2-D t-SNE of the emotion features z_e and (when given) the corpus features z_c, side by side;
    colour = emotion (grey where the label is unknown, -1), marker = corpus.

    Decoupling worked when the emotion panel groups by colour across markers and the corpus panel
    groups by marker.

    Args:
      emotion_features: [N, h]; corpus_features: [N, h] or None.
      labels: [N] class ids (-1 = unknown); corpora: [N] indices into corpus_names.
    """
    labels, corpora = np.asarray(labels), np.asarray(corpora)
    n = len(labels)
    keep = np.arange(n)
    if n > MAX_TSNE_POINTS:
        keep = np.sort(np.random.default_rng(seed).choice(n, MAX_TSNE_POINTS, replace=False))
    panels = [("emotion features $z_e$", emotion_features)]
    if corpus_features is not None:
        panels.append(("corpus features $z_c$", corpus_features))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.8), squeeze=False)
    colours = plt.get_cmap("tab10")
    for ax, (name, feats) in zip(axes[0], panels):
        xy = _tsne(np.asarray(feats)[keep], seed)
        for d, corpus in enumerate(corpus_names):
            for k in list(range(len(class_names))) + [-1]:
                sel = (corpora[keep] == d) & (labels[keep] == k)
                if sel.any():
                    ax.scatter(xy[sel, 0], xy[sel, 1], s=12, alpha=0.7, marker=MARKERS[d % len(MARKERS)],
                               color=colours(k % 10) if k >= 0 else "0.6", linewidths=0)
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [plt.Line2D([], [], ls="", marker="o", color=colours(k % 10), label=c)
               for k, c in enumerate(class_names)]
    if (labels < 0).any():
        handles.append(plt.Line2D([], [], ls="", marker="o", color="0.6", label="unlabelled"))
    handles += [plt.Line2D([], [], ls="", marker=MARKERS[d % len(MARKERS)], color="k", label=c)
                for d, c in enumerate(corpus_names)]
    fig.legend(handles=handles, loc="center right", fontsize=8, frameon=False)
    fig.subplots_adjust(right=0.82)
    sub = f"t-SNE of {len(keep)} of {n} examples" if len(keep) < n else f"t-SNE of {n} examples"
    fig.suptitle(f"{title}\n{sub}" if title else sub, fontsize=10)
    _save(fig, path)


def _curve_panels(names: list[str]) -> list[tuple[str, list[str]]]:
    """Scalars grouped by prefix ("loss", "pseudo", "monitor"); each per-class family
    ("pseudo/thresholds/<class>") in its own panel."""
    panels: dict[str, list[str]] = {}
    for name in names:
        parts = name.split("/")
        key = "/".join(parts[:2]) if len(parts) > 2 else parts[0] if len(parts) > 1 else "other"
        panels.setdefault(key, []).append(name)
    order = {"loss": 0, "pseudo": 1, "monitor": 2}
    return sorted(panels.items(), key=lambda kv: (order.get(kv[0].split("/")[0], 3), kv[0]))


def plot_training_curves(history: Mapping[int, Mapping[str, float]], path: str) -> None:
    """Every logged scalar against the step: one panel per group (losses, pseudo-label rate,
    monitors) and per per-class family (thresholds, confident counts, prediction histogram).

    Args:
      history: {step: {metric name: value}} as MetricWriter.history.
    """
    steps = sorted(history)
    names = sorted({k for s in steps for k in history[s]})
    panels = _curve_panels(names) or [("(nothing logged)", [])]
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.0 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, (title, group) in zip(axes.flat, panels):
        prefix = title + "/" if "/" in title else ""
        for name in group:
            xs = [s for s in steps if name in history[s]]
            ys = [history[s][name] for s in xs]
            ax.plot(xs, ys, label=name[len(prefix):], lw=1.2, marker="." if len(xs) < 30 else None)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        if group:
            ax.legend(fontsize=6, ncol=1 + len(group) // 10)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
