"""Data-parallel backends that run the one per-device step body of `train_step.py`.

`pmap` (the design card's default) keeps a copy of the state per local device (leading axis);
`shard_map` keeps one replicated global state over a 1-D `Mesh`, which is current JAX practice and
what multi-host pods use. Both take batches shaped [devices, per_device_batch, ...] and give the same
numbers (tests/test_parallel.py checks both against one device).

shard_map runs with `check_vma=False`: the body sums its gradients itself (`lax.psum`), exactly as
under pmap, instead of relying on the implicit cross-device sum that varying-manual-axes typing adds
to gradients of replicated parameters.
"""

import dataclasses
import functools
from typing import Any, Callable

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

AXIS = "batch"
BACKENDS = ("pmap", "shard_map")


@dataclasses.dataclass
class Backend:
    """A compiled data-parallel runner over `devices`.

    replicate(state) -> device state; unreplicate(device state) -> host-side single copy;
    parallelize(body, donate_state) -> fn(device_state, batch [devices, b, ...], ...) -> per-call outputs,
    where outputs of the body are identical on every device and come back as one copy.
    """

    name: str
    devices: list[Any]

    @property
    def num_devices(self) -> int:
        return len(self.devices)

    def replicate(self, tree: Any) -> Any:
        if self.name == "pmap":
            # Stacked copies sharded over the same named axis the pmapped step returns them on.
            # (`flax.jax_utils.replicate` places them on another axis name, so the step's second
            # call saw new input shardings and compiled again: 15-26 s per phase, measured.)
            sharding = NamedSharding(self.mesh, P(AXIS))
            stack = lambda x: np.broadcast_to(np.asarray(x)[None], (self.num_devices,) + np.shape(x))  # noqa: E731
            return jax.device_put(jax.tree.map(stack, tree), sharding)
        return jax.device_put(tree, NamedSharding(self.mesh, P()))

    def unreplicate(self, tree: Any) -> Any:
        if self.name == "pmap":
            return jax.tree.map(lambda x: x[0], tree)
        return tree

    @functools.cached_property
    def mesh(self) -> Mesh:
        return Mesh(np.asarray(self.devices), (AXIS,))

    def parallelize(
        self, body: Callable[..., Any], *, donate_state: bool = True, replicated_outputs: bool = True
    ) -> Callable[..., Any]:
        """Wraps body(state, batch) -> outputs, with `batch` leaves shaped [devices, b, ...].

        With `replicated_outputs` every output is the same on each device (states, psum-ed metrics)
        and comes back as one copy; otherwise outputs are per-example and come back [devices, b, ...].
        """
        donate = (0,) if donate_state else ()
        if self.name == "pmap":
            # Outputs keep their device axis; `host_outputs` takes one copy of replicated ones.
            return jax.pmap(body, axis_name=AXIS, devices=self.devices, donate_argnums=donate)

        def per_device(state, batch):
            return body(state, jax.tree.map(lambda x: x[0], batch))

        out_spec = P() if replicated_outputs else P(AXIS)
        mapped = jax.shard_map(
            per_device if replicated_outputs else _expand_outputs(per_device),
            mesh=self.mesh, in_specs=(P(), P(AXIS)), out_specs=out_spec, check_vma=False)
        return jax.jit(mapped, donate_argnums=donate)

    def put_batch(self, batch: Any) -> Any:
        """Places a host batch [devices, b, ...] on the devices (sharded along axis 0)."""
        if self.name == "pmap":
            return batch  # pmap splits axis 0 over its devices itself
        return jax.device_put(batch, NamedSharding(self.mesh, P(AXIS)))

    def host_outputs(self, outputs: Any, *, replicated: bool) -> Any:
        """Brings outputs to host numpy; replicated outputs as one copy."""
        if replicated and self.name == "pmap":
            outputs = jax.tree.map(lambda x: x[0], outputs)
        return jax.device_get(outputs)


def _expand_outputs(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Adds a leading device axis of size 1 to per-example outputs (shard_map concatenates them)."""

    def wrapped(state, batch):
        return jax.tree.map(lambda x: x[None], fn(state, batch))

    return wrapped


def create_backend(name: str, *, num_devices: int = 0) -> Backend:
    """The backend `name` over the first `num_devices` local devices (0 = all)."""
    if name not in BACKENDS:
        raise ValueError(f"config.backend={name!r} is unknown; choose one of {BACKENDS}")
    available = jax.local_devices()
    if num_devices < 0 or num_devices > len(available):
        raise ValueError(
            f"config.num_devices={num_devices} but this host has {len(available)} devices; "
            "use 0 for all of them or a smaller number")
    return Backend(name=name, devices=available[: num_devices or len(available)])
