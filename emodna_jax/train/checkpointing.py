"""Orbax checkpoints of the train state: the only module that calls orbax (STYLE item 7).

A checkpoint is a plain nested dict of numpy arrays (`flax.serialization.to_state_dict` of the
state, so the structure does not depend on Python classes), saved with `StandardSave`, next to a
small JSON metadata item. Typed random keys are stored as their `key_data` (uint32) and wrapped
again on restore; legacy raw uint32 keys are plain arrays already. `None` fields (the train state's
`teacher` without an EMA teacher) and empty optimiser states round-trip as they are.

Layout: DIRECTORY/<step>/{state,metadata}/ as orbax's CheckpointManager writes it.
"""

import os
from typing import Any

import flax.serialization
import jax
import numpy as np
import orbax.checkpoint as ocp


def _is_key(x: Any) -> bool:
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _to_plain(state: Any) -> Any:
    """A nested dict of host numpy arrays (typed keys as key_data)."""
    tree = flax.serialization.to_state_dict(state)
    tree = jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, tree)
    return jax.tree.map(np.asarray, jax.device_get(tree))


def _from_plain(template: Any, restored: Any) -> Any:
    """`restored` (plain dict) poured into the structure and key types of `template`."""
    template_dict = flax.serialization.to_state_dict(template)

    def rewrap(t, r):
        if _is_key(t):
            return jax.random.wrap_key_data(np.asarray(r), impl=jax.random.key_impl(t))
        return np.asarray(r, dtype=np.asarray(t).dtype)

    leaves = jax.tree.map(rewrap, template_dict, restored)
    return flax.serialization.from_state_dict(template, leaves)


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be restored into this run's state (e.g. the config changed)."""


class Checkpointer:
    """Saves and restores train states under `directory`, keeping the newest `max_to_keep`.

    save(step, host_state, metadata) writes asynchronously; wait() blocks until every save is on
    disk. restore(template) reads the latest step into the structure of `template` and returns
    (state, metadata).
    """

    def __init__(self, directory: str, *, max_to_keep: int = 2) -> None:
        self.directory = os.path.abspath(directory)
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        """The newest finished checkpoint's step, or None when there is none."""
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self._manager.all_steps())

    def save(self, step: int, host_state: Any, *, metadata: dict[str, Any] | None = None) -> bool:
        """Saves `host_state` (one host copy, not replicated) as step `step`.

        Returns False and writes nothing when that step is already saved (a resumed run reaching a
        step it had saved before it was stopped)."""
        if step in self._manager.all_steps():
            return False
        args = ocp.args.Composite(state=ocp.args.StandardSave(_to_plain(host_state)),
                                  metadata=ocp.args.JsonSave(dict(metadata or {})))
        return bool(self._manager.save(int(step), args=args))

    def restore(self, template: Any, *, step: int | None = None) -> tuple[Any, dict[str, Any]]:
        """The state of `step` (default: the latest) in the structure of `template`, and its metadata.

        Raises FileNotFoundError when there is no checkpoint, CheckpointError when its arrays do not
        fit `template` (the run's config changed since it was saved)."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        target = _to_plain(template)
        try:
            restored = self._manager.restore(int(step), args=ocp.args.Composite(
                state=ocp.args.StandardRestore(target), metadata=ocp.args.JsonRestore()))
            _check_shapes(target, restored.state, f"{self.directory}/{step}")
            state = _from_plain(template, restored.state)
        except (ValueError, KeyError, TypeError) as error:
            raise CheckpointError(
                f"checkpoint {self.directory}/{step} does not fit this run's state ({error}); "
                "was the config changed? Use a new --workdir for a different config") from error
        return state, dict(restored.metadata or {})

    def wait(self) -> None:
        """Blocks until every asynchronous save has finished."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()


def _check_shapes(target: Any, restored: Any, where: str) -> None:
    """Orbax restores a differently shaped array without complaint in some versions: refuse it."""
    bad = []

    def compare(path, t, r):
        if np.shape(t) != np.shape(r):
            bad.append(f"{jax.tree_util.keystr(path)}: saved {np.shape(r)}, expected {np.shape(t)}")

    jax.tree_util.tree_map_with_path(compare, target, restored)
    if bad:
        raise CheckpointError(f"checkpoint {where} does not fit this run's state: {'; '.join(bad[:5])}; "
                              "use a new --workdir for a different config")
