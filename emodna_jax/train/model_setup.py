"""What training and inference both build before anything runs: the validated config's backend,
data and step functions, and a fresh train state (restored over by a checkpoint)."""

from typing import Any

import jax
import ml_collections

from emodna_jax.audio import input_pipeline
from emodna_jax.train import config_checks, parallel, recipe, step_functions, train_state


def setup(config: ml_collections.ConfigDict) -> tuple[parallel.Backend, Any, step_functions.StepFunctions]:
    """Validates the config (after filling the adapt recipe's "auto" fields, recipe.resolve), then
    builds backend, data and step functions (nothing compiled yet)."""
    recipe.resolve(config)
    config_checks.validate(config)
    if config.distributed:
        start_processes(config)
    backend = parallel.create_backend(config.backend, num_devices=config.num_devices)
    config_checks.validate(config, num_devices=backend.num_devices, process_count=jax.process_count())
    data = input_pipeline.create_task_data(
        config, num_devices=backend.num_devices, process_index=jax.process_index(),
        process_count=jax.process_count())
    fns = step_functions.make_step_functions(config, num_classes=len(data.class_names),
                                             num_corpora=data.num_corpora, backend=backend)
    return backend, data, fns


def start_processes(config: ml_collections.ConfigDict) -> None:
    """Joins this process to the run's others (`jax.distributed.initialize`), before any device use."""
    # CPU processes need a collectives implementation to reach each other; other platforms ignore it.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    given = {"coordinator_address": config.coordinator_address or None,
             "num_processes": config.num_processes or None,
             "process_id": config.process_id if config.process_id >= 0 else None}
    jax.distributed.initialize(**{k: v for k, v in given.items() if v is not None})


def init_state(config, fns, data) -> Any:
    """A fresh train state on the host, built by one compiled call (initialising eagerly runs
    about a hundred small compilations: seconds on a CPU)."""
    create = lambda: train_state.create_train_state(  # noqa: E731
        config, fns.model, fns.tx, feature_shape=data.feature_shape)
    return jax.device_get(jax.jit(create)())
