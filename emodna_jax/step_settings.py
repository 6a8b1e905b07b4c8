"""The static settings of the train step: everything the config decides, hashable so jit keys on it."""

import dataclasses

import ml_collections

from emodna_jax import thresholds


@dataclasses.dataclass(frozen=True)
class StepSettings:
    """The static part of the step: everything the config decides (hashable, so jit can key on it)."""

    num_classes: int
    num_corpora: int
    num_steps: int
    warmup_steps: int
    label_smoothing: float
    temperature: float
    corpus_id_weight: float
    decoupling_weight: float
    corpus_align: str
    corpus_align_weight: float
    class_align: str
    class_align_weight: float
    diversity_weight: float
    consistency_weight: float
    mmd_bandwidths: tuple[float, ...]
    threshold: str
    tau_min: float
    fixed_threshold: float
    threshold_ema: float
    quantile_start: float
    quantile_end: float
    teacher: str
    teacher_decay: float
    distribution_alignment: bool
    agreement: bool
    prototype_momentum: float
    labeller: str = "head"
    axis_name: str = "batch"

    @classmethod
    def from_config(
        cls, config: ml_collections.ConfigDict, *, num_classes: int, num_corpora: int, axis_name: str = "batch"
    ) -> "StepSettings":
        loss, pseudo = config.loss, config.pseudo
        ema = pseudo.threshold_ema or thresholds.schedule_tied_ema(config.num_steps)
        return cls(
            num_classes=num_classes,
            num_corpora=num_corpora,
            num_steps=config.num_steps,
            warmup_steps=pseudo.warmup_steps,
            label_smoothing=loss.label_smoothing,
            temperature=loss.temperature,
            corpus_id_weight=loss.corpus_id_weight,
            decoupling_weight=loss.decoupling_weight,
            corpus_align=loss.corpus_align,
            corpus_align_weight=loss.corpus_align_weight,
            class_align=loss.class_align,
            class_align_weight=loss.class_align_weight,
            diversity_weight=loss.diversity_weight,
            consistency_weight=loss.consistency_weight,
            mmd_bandwidths=tuple(loss.mmd_bandwidths),
            threshold=pseudo.threshold,
            tau_min=pseudo.tau_min,
            fixed_threshold=pseudo.fixed_threshold,
            threshold_ema=ema,
            quantile_start=pseudo.quantile_start,
            quantile_end=pseudo.quantile_end,
            teacher=pseudo.teacher,
            teacher_decay=pseudo.teacher_decay,
            distribution_alignment=pseudo.distribution_alignment,
            agreement=pseudo.agreement,
            prototype_momentum=config.prototype_momentum,
            labeller=pseudo.get("labeller", "head"),
            axis_name=axis_name,
        )

    @property
    def uses_centroid_table(self) -> bool:
        """Whether the step reads the host's target class-centroid table ("labeller_probs")."""
        return self.uses_pseudo_labels and self.labeller != "head"

    @property
    def uses_pseudo_labels(self) -> bool:
        """Whether the adaptation phase makes target pseudo-labels at all."""
        return thresholds.makes_pseudo_labels(
            threshold=self.threshold, decoupling_weight=self.decoupling_weight,
            class_align=self.class_align, class_align_weight=self.class_align_weight)
