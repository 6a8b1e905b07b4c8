"""Checkpoint round trips: every leaf, dtype, random key type, None field and metadata comes back."""

import os
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from emodna_jax.train import checkpointing


class _State(flax.struct.PyTreeNode):
    step: jax.Array
    params: Any
    opt_state: Any
    teacher: Any
    rng: jax.Array  # legacy raw uint32[2] key, as train_state.TrainState holds
    key: jax.Array  # a typed key: must be saved as key_data


def _state(seed: int, *, teacher: bool = False, width: int = 3) -> _State:
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-3))
    rng = np.random.default_rng(seed)
    params = {"dense": {"kernel": jnp.asarray(rng.normal(size=(width, 2)), jnp.float32),
                        "bias": jnp.asarray(rng.normal(size=(2,)), jnp.float32)}}
    opt_state = tx.init(params)
    # A non-trivial optimiser state: one update step.
    _, opt_state = tx.update(jax.tree.map(jnp.ones_like, params), opt_state, params)
    return _State(step=jnp.asarray(seed, jnp.int32), params=params, opt_state=opt_state,
                  teacher={"params": params} if teacher else None,
                  rng=jax.random.PRNGKey(seed), key=jax.random.key(seed + 100))


def _assert_same(a, b):
    la, ta = jax.tree.flatten(a)
    lb, tb = jax.tree.flatten(b)
    assert ta == tb
    for x, y in zip(la, lb):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            assert jax.dtypes.issubdtype(y.dtype, jax.dtypes.prng_key)
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        assert np.asarray(x).dtype == np.asarray(y).dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("teacher", [False, True])
def test_round_trip_restores_every_leaf_key_and_metadata(tmp_path, teacher):
    ckpt = checkpointing.Checkpointer(str(tmp_path / "ckpt"), max_to_keep=2)
    assert ckpt.latest_step() is None
    saved = _state(7, teacher=teacher)
    assert ckpt.save(7, jax.device_get(saved), metadata={"step": 7, "method": "emodna"})
    ckpt.wait()
    assert ckpt.latest_step() == 7
    restored, metadata = ckpt.restore(_state(0, teacher=teacher))  # template with other values
    _assert_same(restored, saved)
    assert (restored.teacher is None) == (not teacher)
    assert metadata == {"step": 7, "method": "emodna"}
    # The restored key draws the same numbers as the saved one.
    np.testing.assert_array_equal(jax.random.normal(restored.key, (3,)), jax.random.normal(saved.key, (3,)))


def test_keeps_newest_and_skips_a_step_already_saved(tmp_path):
    ckpt = checkpointing.Checkpointer(str(tmp_path / "ckpt"), max_to_keep=2)
    for step in (1, 2, 3):
        ckpt.save(step, _state(step), metadata={"step": step})
    ckpt.wait()
    assert ckpt.all_steps() == [2, 3] and ckpt.latest_step() == 3
    assert ckpt.save(3, _state(99)) is False  # a resumed run reaching a saved step
    ckpt.wait()
    restored, _ = ckpt.restore(_state(0))
    _assert_same(restored, _state(3))
    older, meta = ckpt.restore(_state(0), step=2)
    _assert_same(older, _state(2))
    assert meta == {"step": 2}
    # A new Checkpointer on the same folder sees the same steps (what a restarted process does).
    assert checkpointing.Checkpointer(str(tmp_path / "ckpt")).latest_step() == 3


def test_refuses_a_checkpoint_of_another_shape_and_a_missing_one(tmp_path):
    ckpt = checkpointing.Checkpointer(str(tmp_path / "ckpt"))
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        ckpt.restore(_state(0))
    ckpt.save(1, _state(1))
    ckpt.wait()
    with pytest.raises(checkpointing.CheckpointError, match="config"):
        ckpt.restore(_state(0, width=5))
    with pytest.raises(checkpointing.CheckpointError):
        ckpt.restore(_state(0, teacher=True))  # a structure the checkpoint does not have


def test_a_save_cut_off_by_a_kill_is_ignored_and_redone(tmp_path):
    """A process killed while saving leaves `<step>.orbax-checkpoint-tmp`: the restart resumes from
    the newest finished step and can save that step again."""
    directory = str(tmp_path / "ckpt")
    ckpt = checkpointing.Checkpointer(directory)
    for step in (6, 9):
        ckpt.save(step, _state(step))
    ckpt.close()
    os.rename(os.path.join(directory, "9"), os.path.join(directory, "9.orbax-checkpoint-tmp"))
    ckpt = checkpointing.Checkpointer(directory)
    assert ckpt.latest_step() == 6
    restored, _ = ckpt.restore(_state(0))
    _assert_same(restored, _state(6))
    assert ckpt.save(9, _state(9))
    ckpt.wait()
    assert ckpt.all_steps() == [6, 9]
    assert sorted(os.listdir(directory)) == ["6", "9"]
