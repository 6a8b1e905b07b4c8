"""Flax linen modules: the two Emo-DNA encoders (TIM-Net, MLP or linear backbone) and the heads.

Backbones (config.model.backbone): "timnet", the TIM-Net-style temporal encoder over frame sequences
(the authors'); "mlp", MLPs over utterance functionals (frames are averaged first, so a frame front end
works too); "linear", z = Dense(mean over frames of x), no hidden layer, BatchNorm or dropout, so the
logits are affine in the input: a logistic-regression probe trained by the same trainer.

Speed is the reason for the shape of this file. TIM-Net (its blocks: timnet.py) runs a forward and a
backward stack of thin (39-channel) dilated causal convolutions; Emo-DNA has two such encoders (emotion
and corpus), so a plain port runs four thin networks one after another. Here the four (encoder,
direction) "members" are one `nn.vmap`-ed stack with stacked parameters: every convolution of all
members is one batched matmul.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from emodna_jax.model.layers import (  # noqa: F401  (re-exported: the model's public names)
    SOURCE_STREAM, TARGET_STREAM, CorpusBatchNorm, ExampleDropout, NormSettings, batch_norm,
    example_ids_or_range, global_example_ids, gradient_reversal)
from emodna_jax.model.timnet import (  # noqa: F401  (re-exported: the model's public names)
    CausalConv, DirectionalStack, EncoderTop, TemporalAwareBlock)

BACKBONES = ("timnet", "mlp", "linear")


def resolve_backbone(backbone: str, feature_frames: int | None) -> str:
    """config.model.backbone as it runs: "auto" is the MLP over a one-frame front end (utterance
    functionals such as `affect`) and TIM-Net over frame sequences (`mfcc39`, `affect_frames`)."""
    if backbone != "auto":
        return backbone
    return "mlp" if feature_frames == 1 else "timnet"


def backbone_of(config: Any) -> str:
    """The backbone a config runs (resolves "auto" from the front end's frame count)."""
    from emodna_jax.audio import features  # librosa; imported here so the model module stays light to import

    name = config.get("features", "")
    frames = features.get_feature_config(name).shape[0] if name in features.FEATURE_CONFIGS else None
    return resolve_backbone(config.model.get("backbone", "timnet"), frames)


def batch_norm_momentum(momentum: float, num_steps: int) -> float:
    """The BatchNorm running-statistics momentum of a run: `momentum`, or for 0 the one tied to the
    schedule, m = clip(1 - 10 / num_steps, 0, 0.99).

    Why: the running statistics start at mean 0 and variance 1 and after N steps still hold m**N of
    that start; 0.99 over 200 steps leaves 13 %. (1 - 10/N)**N < exp(-10) < 1e-4 for every N, so the
    tied momentum leaves less than 1e-4 at the end of any schedule, and 0.99 caps it for long runs
    (0.99**N < 1e-4 once N > 917)."""
    if momentum:
        return float(momentum)
    return float(min(0.99, max(0.0, 1.0 - 10.0 / num_steps)))


class MLPEncoder(nn.Module):
    """One MLP encoder over utterance-level inputs: num_layers x (Dense(hidden_dim) -> BatchNorm ->
    ReLU -> dropout), then Dense(embed_dim). num_layers = 0 is the linear encoder (Dense only).

    [B, F] -> [B, embed_dim]. BatchNorm as in the TIM-Net blocks: per-corpus statistics where `split`
    is 1 (per_corpus_bn), else the joint batch's.
    """

    hidden_dim: int
    num_layers: int
    embed_dim: int
    norm: NormSettings  # BatchNorm and dropout (layers.NormSettings)

    @nn.compact
    def __call__(self, x: jax.Array, split: jax.Array | float = 1.0,
                 example_ids: jax.Array | None = None) -> jax.Array:
        h = x
        for layer in range(self.num_layers):
            # No bias: the BatchNorm after it removes it (see TemporalAwareBlock).
            h = nn.Dense(self.hidden_dim, use_bias=False, name=f"hidden_{layer}")(h)
            h = self.norm.batch_norm(h, split)
            h = nn.relu(h)
            h = self.norm.dropout(h, example_ids)
        return nn.Dense(self.embed_dim, name="projection")(h)


class EmoDNAModel(nn.Module):
    """Emotion encoder E_e, optional corpus encoder E_c, their classifiers, optional DANN head.

    Attributes:
      num_classes: K, emotion classes.
      num_corpora: D, corpora in training (source(s) + target).
      backbone: "timnet", "mlp" or "linear" (module docstring).
      with_corpus_encoder: build E_e and E_c (Emo-DNA) or E_e only (baselines).
      with_domain_head: build a DANN discriminator on gradient-reversed z_e.
    """

    num_classes: int
    num_corpora: int
    backbone: str = "timnet"
    filters: int = 39
    kernel_size: int = 2
    dilations: int = 8
    hidden_dim: int = 256  # mlp
    num_layers: int = 2  # mlp
    dropout_rate: float = 0.1
    embed_dim: int = 64
    bn_momentum: float = 0.99
    # "shared": one set of BatchNorm statistics over the joint batch; "per_corpus": CorpusBatchNorm.
    batch_norm: str = "shared"
    # Lower temporal blocks shared by the emotion and corpus encoders (0 = two separate encoders).
    shared_blocks: int = 0
    with_corpus_encoder: bool = True
    with_domain_head: bool = False
    axis_name: str | None = None

    @property
    def num_encoders(self) -> int:
        return 2 if self.with_corpus_encoder else 1

    @nn.compact
    def __call__(
        self,
        x: jax.Array,
        *,
        train: bool,
        use_dropout: bool | None = None,
        reversal_coeff: jax.Array | float = 1.0,
        num_source: int | None = None,
        stream: int = TARGET_STREAM,
        example_ids: jax.Array | None = None,
        source_corpus: jax.Array | None = None,
    ) -> dict[str, jax.Array]:
        """Runs the model on features x [B, T, F].

        `train` selects batch statistics for BatchNorm (and updates the running ones when
        `batch_stats` is mutable); `use_dropout` defaults to `train` (False for the pseudo-label
        forward, which uses batch statistics but no dropout). `reversal_coeff` scales the reversed
        gradient into the DANN head. With per-corpus BatchNorm, a training forward needs
        `num_source` (rows [:num_source] are source, the rest target), and an inference forward
        normalises with the running statistics of `stream` (TARGET_STREAM by default).
        `example_ids` int [B]: each row's position in the global batch (layers.global_example_ids),
        from which its dropout masks are drawn; default 0 .. B-1. With num_corpora > 2 (one corpus
        id per source) a per-corpus BatchNorm keeps a row of statistics per corpus: `source_corpus`
        int [num_source] says whose each source row is in training, int [B] at inference picks
        each row's statistics (a source split; without it `stream`, TARGET_STREAM the target's).

        Returns a dict with z_e [B, h], logits_e [B, K] and, when built, z_c [B, h],
        logits_c [B, D], logits_domain [B, D].
        """
        if self.backbone not in BACKBONES:
            raise ValueError(f"model.backbone={self.backbone!r} is unknown; choose one of {BACKBONES}")
        norm = NormSettings(
            dropout_rate=self.dropout_rate,
            train=train,
            use_dropout=train if use_dropout is None else use_dropout,
            bn_momentum=self.bn_momentum,
            axis_name=self.axis_name,
            per_corpus_bn=self.batch_norm == "per_corpus",
            num_source=num_source,
            stream=stream,
            num_corpora=self.num_corpora,
            source_corpus=source_corpus,
        )
        ids = example_ids_or_range(example_ids, x)
        if self.backbone == "timnet":
            z = self._timnet(x, ids, norm)
        else:
            z = self._mlp(x, ids, norm)
        out = {"z_e": z[0]}
        out["logits_e"] = nn.Dense(self.num_classes, name="emotion_classifier")(z[0])
        if self.with_corpus_encoder:
            out["z_c"] = z[1]
            out["logits_c"] = nn.Dense(self.num_corpora, name="corpus_classifier")(z[1])
        if self.with_domain_head:
            h = gradient_reversal(z[0], reversal_coeff)
            h = nn.relu(nn.Dense(self.embed_dim, name="domain_hidden")(h))
            out["logits_domain"] = nn.Dense(self.num_corpora, name="domain_classifier")(h)
        return out

    def _split(self, members_per_encoder: int, dtype: Any) -> jax.Array:
        """Per-corpus statistics in the emotion encoder's members only, [members]: the corpus encoder
        must still see what tells the corpora apart, which per-corpus normalisation would remove."""
        return jnp.asarray(([1.0] * members_per_encoder + [0.0] * members_per_encoder)
                           [: members_per_encoder * self.num_encoders], dtype)

    def _mlp(self, x: jax.Array, ids: jax.Array, norm: NormSettings) -> jax.Array:
        """Both MLP (or linear) encoders as one vmapped computation: x [B, T, F] -> z [encoders, B, h]."""
        pooled = jnp.mean(x, axis=-2)  # [B, F]: functional front ends have T = 1
        encoders = nn.vmap(
            MLPEncoder,
            variable_axes={"params": 0, "batch_stats": 0},
            split_rngs={"params": True, "dropout": True},
            in_axes=(0, 0, 0),
            out_axes=0,
            axis_size=self.num_encoders,
        )(hidden_dim=self.hidden_dim, num_layers=self.num_layers if self.backbone == "mlp" else 0,
          embed_dim=self.embed_dim, norm=norm, name="encoders")
        n = self.num_encoders
        return encoders(jnp.stack([pooled] * n), self._split(1, x.dtype), jnp.stack([ids] * n))

    def _timnet(self, x: jax.Array, ids: jax.Array, norm: NormSettings) -> jax.Array:
        """Both TIM-Net encoders: x [B, T, F] -> z [encoders, B, h]."""
        members = 2 * self.num_encoders  # (encoder, direction) pairs, ordered e_fwd, e_bwd, c_fwd, c_bwd
        stack_args = dict(filters=self.filters, kernel_size=self.kernel_size, dilations=self.dilations, norm=norm)

        def vmapped_stacks(size: int, name: str, **extra: Any) -> nn.Module:
            return nn.vmap(
                DirectionalStack,
                variable_axes={"params": 0, "batch_stats": 0},
                split_rngs={"params": True, "dropout": True},
                in_axes=(0, 0, 0),
                out_axes=0,
                axis_size=size,
            )(**{**stack_args, **extra}, name=name)

        directions = jnp.stack([x, jnp.flip(x, axis=-2)])  # [2, B, T, F]
        member_ids = jnp.stack([ids] * members)
        # The shared trunk belongs to the emotion path (its pseudo-label forward runs it), so it takes
        # the emotion encoder's statistics.
        split = self._split(2, x.dtype)
        if self.shared_blocks:
            trunk = vmapped_stacks(2, "shared_trunk", dilations=self.shared_blocks)
            trunk_scales, h = trunk(directions, split[:2], member_ids[:2])  # [2, B, s, C], [2, B, T, C]
            upper = vmapped_stacks(members, "temporal_stacks", first_level=self.shared_blocks)
            upper_scales, _ = upper(jnp.concatenate([h] * self.num_encoders), split, member_ids)
            scales = jnp.concatenate([jnp.concatenate([trunk_scales] * self.num_encoders), upper_scales],
                                     axis=-2)  # [members, B, dilations, filters]
        else:
            stacked = jnp.concatenate([directions] * self.num_encoders)  # [members, B, T, F]
            scales, _ = vmapped_stacks(members, "temporal_stacks")(stacked, split, member_ids)
        # TIM-Net adds the forward and backward outputs of each scale.
        scales = scales.reshape((self.num_encoders, 2) + scales.shape[1:]).sum(axis=1)
        tops = nn.vmap(
            EncoderTop,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=0,
            out_axes=0,
            axis_size=self.num_encoders,
        )(embed_dim=self.embed_dim, name="encoder_tops")
        return tops(scales)  # [encoders, B, h]


def create_model(config: Any, *, num_classes: int, num_corpora: int, axis_name: str | None) -> EmoDNAModel:
    """Builds the model a config asks for (the corpus encoder only when a loss uses it)."""
    loss, model = config.loss, config.model
    return EmoDNAModel(
        num_classes=num_classes,
        num_corpora=num_corpora,
        backbone=backbone_of(config),
        filters=model.filters,
        kernel_size=model.kernel_size,
        dilations=model.dilations,
        hidden_dim=model.get("hidden_dim", 256),
        num_layers=model.get("num_layers", 2),
        dropout_rate=model.dropout_rate,
        embed_dim=model.embed_dim,
        bn_momentum=batch_norm_momentum(model.bn_momentum, config.num_steps),
        batch_norm=model.batch_norm,
        shared_blocks=model.shared_blocks,
        with_corpus_encoder=loss.corpus_id_weight > 0 or loss.decoupling_weight > 0,
        with_domain_head=loss.corpus_align == "dann" and loss.corpus_align_weight > 0,
        axis_name=axis_name,
    )


# Vmapped parameter stacks and how many of their leading members the emotion encoder owns.
_EMOTION_MEMBERS = {"temporal_stacks": 2, "encoder_tops": 1, "encoders": 1}


def emotion_encoder_view(model: EmoDNAModel, variables: dict[str, Any]) -> tuple[EmoDNAModel, dict[str, Any]]:
    """The emotion encoder and classifier alone, as a model and its variables (no copy of weights
    beyond slicing), for every backbone.

    Every encoder (and TIM-Net direction) member has its own BatchNorm, so on the same input this
    gives exactly the z_e and logits_e of the full model: a pseudo-label forward needs only this half
    of the work (the shared trunk, when there is one, is kept whole: it is part of the emotion path).
    """
    view = {}
    for collection, tree in variables.items():
        tree = dict(tree)
        for name, members in _EMOTION_MEMBERS.items():
            if name in tree:
                tree[name] = jax.tree.map(lambda a, m=members: a[:m], tree[name])
        for name in ("corpus_classifier", "domain_hidden", "domain_classifier"):
            tree.pop(name, None)
        view[collection] = tree
    return model.clone(with_corpus_encoder=False, with_domain_head=False), view
