"""The host-side centroid labeller (target_labeller.py): when it relabels, that it reads no target
label, and that train batches get their own rows."""

import numpy as np
import pytest

from emodna_jax.eval import target_labeller
from emodna_jax.method import transductive
from emodna_jax.train import parallel, step_functions
from tests import helpers

NUM_CLASSES = 3


def test_relabels_at_the_first_adaptation_step_and_at_multiples_of_every():
    labeller = target_labeller.CentroidLabeller(every=5, warmup_steps=3)
    assert [s for s in range(3) if labeller.due(s)] == []
    assert labeller.due(3) and labeller.due(7)  # no table yet: due at any adaptation step
    labeller.table = np.zeros((4, NUM_CLASSES))
    assert [s for s in range(3, 21) if labeller.due(s)] == [5, 10, 15, 20]
    with pytest.raises(ValueError, match="every=0"):
        target_labeller.CentroidLabeller(every=0, warmup_steps=0)


def eval_stream(features, labels):
    """Two eval batches [1 device, 8, T, F] with the last two rows padding."""
    def batches():
        for j in range(2):
            rows = slice(8 * j, 8 * j + 8)
            mask = np.arange(8 * j, 8 * j + 8) < len(labels)
            x = np.zeros((8,) + helpers.TINY_SHAPE, np.float32)
            y = np.full(8, -1, np.int32)
            x[: mask.sum()] = features[rows]
            y[: mask.sum()] = labels[rows]
            yield {"features": x[None], "label": y[None], "mask": mask[None],
                   "index": np.where(mask, np.arange(8 * j, 8 * j + 8), -1)[None].astype(np.int32)}
    return batches


class FakeData:
    def __init__(self, batches):
        self.batches = batches

    def eval_batches(self, which="target"):
        assert which == "target"
        return self.batches()


def test_refresh_labels_the_target_by_its_centroids_without_reading_labels():
    config = helpers.tiny_config(**{"pseudo.labeller": "centroid"})
    backend = parallel.create_backend("pmap", num_devices=1)
    fns = step_functions.make_step_functions(config, num_classes=NUM_CLASSES, backend=backend)
    state = fns.init_state(config, helpers.TINY_SHAPE)
    rng = np.random.default_rng(0)
    features = rng.normal(size=(14,) + helpers.TINY_SHAPE).astype(np.float32)
    labels = rng.integers(0, NUM_CLASSES, size=14)

    tables = []
    for y in (labels, (labels + 1) % NUM_CLASSES):  # other labels: the same table
        labeller = target_labeller.CentroidLabeller(every=5, warmup_steps=0)
        monitors = labeller.refresh(fns, state, FakeData(eval_stream(features, y)))
        tables.append(labeller.table)
    np.testing.assert_array_equal(tables[0], tables[1])
    assert tables[0].shape == (14, NUM_CLASSES)  # padding dropped
    np.testing.assert_allclose(tables[0].sum(1), 1.0, rtol=1e-5)
    assert 0.0 <= monitors["pseudo/centroid_head_agreement"] <= 1.0
    assert 1.0 / NUM_CLASSES <= monitors["pseudo/centroid_largest_class_share"] <= 1.0

    # The table is transductive.centroid_probs of the model's own eval outputs.
    from emodna_jax.eval import evaluation
    predictions = evaluation.predict(fns, state, eval_stream(features, labels)())
    np.testing.assert_allclose(tables[0], transductive.centroid_probs(
        probs=predictions.probs, features=predictions.z_e), rtol=1e-6)

    batch = helpers.two_domain_batch(rng, devices=1, per_device=4, num_classes=NUM_CLASSES)
    batch["target"]["index"] = np.array([[13, 0, 5, 5]], np.int32)
    attached = labeller.attach(batch)
    np.testing.assert_array_equal(attached["target"]["labeller_probs"], labeller.table[[[13, 0, 5, 5]]])
    assert "labeller_probs" not in batch["target"]  # the input batch is left as it was
    with pytest.raises(RuntimeError, match="before any refresh"):
        target_labeller.CentroidLabeller(every=1, warmup_steps=0).attach(batch)
