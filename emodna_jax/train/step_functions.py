"""Builds the model, optimiser and compiled (data-parallel) step functions a config asks for."""

import dataclasses
import functools
from typing import Any, Callable

import ml_collections
import optax

from emodna_jax.model import models
from emodna_jax.train import parallel, train_state, train_step


@dataclasses.dataclass
class StepFunctions:
    """Compiled steps for one run.

    train(state, batch, adapt) -> (state, metrics): the warm-up or adaptation step (each compiled
    once, on first use). evaluate(state, batch, stream=...) -> per-example outputs [devices, b, ...].
    """

    backend: parallel.Backend
    model: models.EmoDNAModel
    tx: optax.GradientTransformation
    settings: train_step.StepSettings
    _train: dict[bool, Callable[..., Any]] = dataclasses.field(default_factory=dict)
    _eval: dict[int, Callable[..., Any]] = dataclasses.field(default_factory=dict)

    def init_state(self, config: ml_collections.ConfigDict, feature_shape: tuple[int, int]) -> Any:
        """A fresh train state on the devices."""
        state = train_state.create_train_state(config, self.model, self.tx, feature_shape=feature_shape)
        return self.backend.replicate(state)

    def train(self, state: Any, batch: Any, *, adapt: bool) -> tuple[Any, Any]:
        # A method without pseudo-labels has one phase: compile it once, not twice.
        adapt = adapt and self.settings.makes_pseudo_labels
        if adapt not in self._train:
            body = functools.partial(
                train_step.train_step, model=self.model, tx=self.tx, settings=self.settings, adapt=adapt)
            self._train[adapt] = self.backend.parallelize(body)
        return self._train[adapt](state, self.backend.put_batch(batch))

    def evaluate(self, state: Any, batch: Any, *, stream: int = models.TARGET_STREAM) -> Any:
        """Inference outputs; `stream` picks a per-corpus BatchNorm's statistics (source or target)."""
        if self.model.batch_norm != "per_corpus":
            stream = models.TARGET_STREAM  # shared statistics: one compiled function serves both
        if stream not in self._eval:
            body = functools.partial(train_step.eval_step, model=self.model, stream=stream)
            self._eval[stream] = self.backend.parallelize(body, donate_state=False, replicated_outputs=False)
        return self._eval[stream](state, self.backend.put_batch(batch))

    def is_adapting(self, step: int) -> bool:
        """The phase of step `step`: adaptation once the warm-up is over."""
        return step >= self.settings.pseudo.warmup_steps


def make_step_functions(
    config: ml_collections.ConfigDict, *, num_classes: int, num_corpora: int = 2,
    backend: parallel.Backend | None = None,
) -> StepFunctions:
    """Everything needed to train and evaluate `config` on `backend` (default: from the config)."""
    backend = backend or parallel.create_backend(config.backend, num_devices=config.num_devices)
    model = models.create_model(
        config, num_classes=num_classes, num_corpora=num_corpora, axis_name=parallel.AXIS)
    settings = train_step.StepSettings.from_config(
        config, num_classes=num_classes, num_corpora=num_corpora, axis_name=parallel.AXIS)
    return StepFunctions(backend=backend, model=model, tx=train_state.create_optimizer(config),
                         settings=settings)
