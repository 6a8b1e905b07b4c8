"""Data-parallel backends that run the one per-device step body of `train_step.py`.

`pmap` (the design card's default) keeps a copy of the state per local device (leading axis);
`shard_map` keeps one replicated global state over a 1-D `Mesh`, which is current JAX practice and
what multi-host pods use. Both take batches shaped [devices, per_device_batch, ...] and give the same
numbers (tests/test_parallel.py checks both against one device).

Multi-process runs (`jax.distributed`): each process feeds its local devices with its own slice of the
global batch, and the collectives (`psum`, `all_gather`) span every device of every process, so the
processes train one model, not one each (tests/test_workflow_multiprocess.py checks two processes against one).

shard_map runs with `check_vma=False`: the body sums its gradients itself (`lax.psum`), exactly as
under pmap, instead of relying on the implicit cross-device sum that varying-manual-axes typing adds
to gradients of replicated parameters.
"""

import dataclasses
import functools
from typing import Any, Callable

import jax
import numpy as np
from jax.experimental import multihost_utils
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
    devices: list[Any]  # this process' devices, which its batches feed
    global_devices: list[Any] | None = None  # every process' devices (default: `devices`)

    def __post_init__(self) -> None:
        self.global_devices = self.global_devices or list(self.devices)

    @property
    def num_devices(self) -> int:
        """Devices of this process: the leading axis of its batches."""
        return len(self.devices)

    @property
    def multi_process(self) -> bool:
        return len(self.global_devices) > len(self.devices)

    def replicate(self, tree: Any) -> Any:
        if self.name == "pmap":
            # Stacked copies sharded over the same named axis the pmapped step returns them on.
            # (`flax.jax_utils.replicate` places them on another axis name, so the step's second
            # call saw new input shardings and compiled again: 15-26 s per phase, measured.)
            sharding = NamedSharding(Mesh(np.asarray(self.devices), (AXIS,)), P(AXIS))
            stack = lambda x: np.broadcast_to(np.asarray(x)[None], (self.num_devices,) + np.shape(x))  # noqa: E731
            return jax.device_put(jax.tree.map(stack, tree), sharding)
        return jax.device_put(tree, NamedSharding(self.mesh, P()))

    def unreplicate(self, tree: Any) -> Any:
        if self.name == "pmap":
            return jax.tree.map(self._first_copy, tree)
        return tree

    def _first_copy(self, x: Any) -> Any:
        """Device 0's copy of a pmap output [devices, ...]. In a multi-process run it is read from this
        process' first shard: indexing runs a computation that spans every process, and deadlocks
        when the processes do not run it in lockstep (seen: at a checkpoint save)."""
        if not (self.multi_process and isinstance(x, jax.Array)):
            return x[0]
        shard = x.addressable_shards[0].data
        return shard[0] if shard.ndim == x.ndim else shard

    @functools.cached_property
    def mesh(self) -> Mesh:
        """The 1-D mesh of every process' devices (shard_map's)."""
        return Mesh(np.asarray(self.global_devices), (AXIS,))

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
            # Over every process' devices: with the local ones only, each process would sum its own.
            return jax.pmap(body, axis_name=AXIS, devices=self.global_devices, donate_argnums=donate)

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
            return batch  # pmap splits axis 0 over its (local) devices itself
        sharding = NamedSharding(self.mesh, P(AXIS))
        if self.multi_process:  # this process' rows of the global batch
            return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), batch)
        return jax.device_put(batch, sharding)

    def host_outputs(self, outputs: Any, *, replicated: bool) -> Any:
        """Brings outputs to host numpy; replicated outputs as one copy, per-example ones as this
        process' rows [devices, b, ...] (pmap returns only those; shard_map's span every process)."""
        if replicated and self.name == "pmap":
            outputs = jax.tree.map(self._first_copy, outputs)
        if not replicated and self.name == "shard_map" and self.multi_process:
            outputs = multihost_utils.global_array_to_host_local_array(outputs, self.mesh, P(AXIS))
        return jax.device_get(outputs)


def _expand_outputs(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Adds a leading device axis of size 1 to per-example outputs (shard_map concatenates them)."""

    def wrapped(state, batch):
        return jax.tree.map(lambda x: x[None], fn(state, batch))

    return wrapped


def create_backend(name: str, *, num_devices: int = 0) -> Backend:
    """The backend `name` over the first `num_devices` local devices (0 = all); in a multi-process
    run, over every device of every process."""
    if name not in BACKENDS:
        raise ValueError(f"config.backend={name!r} is unknown; choose one of {BACKENDS}")
    available = jax.local_devices()
    if num_devices < 0 or num_devices > len(available):
        raise ValueError(
            f"config.num_devices={num_devices} but this host has {len(available)} devices; "
            "use 0 for all of them or a smaller number")
    if jax.process_count() > 1:
        if num_devices not in (0, len(available)):
            raise ValueError(f"config.num_devices={num_devices}: a multi-process run uses every device of "
                             f"every process ({len(available)} here); use config.num_devices=0")
        # Process-major, so that each process' rows of a global batch are contiguous.
        every = sorted(jax.devices(), key=lambda d: d.process_index)
        mine = [d for d in every if d.process_index == jax.process_index()]
        return Backend(name=name, devices=mine, global_devices=every)
    return Backend(name=name, devices=available[: num_devices or len(available)])
