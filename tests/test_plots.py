"""The pictures are written, are real PNGs of a sensible size, and accept the shapes runs produce."""

import numpy as np
import pytest

from emodna_jax.eval import plots

PNG = b"\x89PNG\r\n\x1a\n"


def _is_png(path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == PNG


def _size(path) -> tuple[int, int]:
    import matplotlib.image

    return matplotlib.image.imread(str(path)).shape[:2]


def test_confusion_png(tmp_path):
    path = tmp_path / "sub" / "confusion.png"
    plots.plot_confusion(np.array([[5, 1, 0], [2, 3, 1], [0, 0, 0]]), ["angry", "happy", "sad"], str(path),
                         title="x -> y")
    assert _is_png(path)
    h, w = _size(path)
    assert 150 < h < 1500 and 150 < w < 1500


@pytest.mark.parametrize("with_corpus", [True, False])
def test_embeddings_png(tmp_path, with_corpus):
    rng = np.random.default_rng(0)
    n = 60
    labels = rng.integers(-1, 3, n)  # -1: an unlabelled example
    path = tmp_path / "embeddings.png"
    plots.plot_embeddings(
        emotion_features=rng.normal(size=(n, 8)), corpus_features=rng.normal(size=(n, 8)) if with_corpus else None,
        labels=labels, corpora=(np.arange(n) >= n // 2).astype(int), class_names=["a", "b", "c"],
        corpus_names=["src", "tgt"], path=str(path), title="t", seed=0)
    assert _is_png(path)
    h, w = _size(path)
    assert w > h if with_corpus else w > 0.6 * h  # two panels side by side are wider than tall


def test_embeddings_with_very_few_points(tmp_path):
    path = tmp_path / "few.png"
    plots.plot_embeddings(emotion_features=np.eye(3), corpus_features=np.eye(3)[::-1], labels=np.array([0, 1, 1]),
                          corpora=np.array([0, 0, 1]), class_names=["a", "b"], corpus_names=["s", "t"],
                          path=str(path))
    assert _is_png(path)


def test_training_curves_png(tmp_path):
    history = {s: {"loss/total": 2.0 / s, "loss/cls": 1.0 / s, "pseudo/confident_fraction": s / 10,
                   "monitor/z_e_norm": 1.0, "pseudo/thresholds/angry": 0.7} for s in range(1, 11)}
    history[11] = {"monitor/target_uar": 40.0}  # a step that logged only the monitor
    path = tmp_path / "curves.png"
    plots.plot_training_curves(history, str(path))
    assert _is_png(path)
