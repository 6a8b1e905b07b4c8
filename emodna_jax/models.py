"""Flax linen modules: the TIM-Net-style temporal encoder, the two Emo-DNA encoders and the heads.

Speed is the reason for the shape of this file. TIM-Net runs a forward and a backward stack of thin
(39-channel) dilated causal convolutions; Emo-DNA has two such encoders (emotion and corpus), so a
plain port runs four thin networks one after another. Here the four (encoder, direction) "members" are
one `nn.vmap`-ed stack with stacked parameters: every convolution of all members is one batched
matmul, and the causal convolution itself is written as shifted copies of the input concatenated on
the channel axis and one matmul (kernel 2 = two taps), which XLA's CPU backend runs much faster than a
thin dilated `conv_general_dilated`.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from emodna_jax import losses

SOURCE_STREAM, TARGET_STREAM = 0, 1  # rows of the per-corpus BatchNorm statistics


class CausalConv(nn.Module):
    """Dilated causal 1-D convolution: y[t] = sum_j W_j x[t - (k-1-j) * dilation] + b.

    Input [B, T, C_in] -> output [B, T, features]; frames before t = 0 are zeros (Keras "causal").
    """

    features: int
    kernel_size: int
    dilation: int = 1
    use_bias: bool = True

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        length = x.shape[-2]
        taps = []
        for j in range(self.kernel_size):
            shift = (self.kernel_size - 1 - j) * self.dilation
            if shift >= length:
                taps.append(jnp.zeros_like(x))
            elif shift == 0:
                taps.append(x)
            else:
                pad = [(0, 0)] * (x.ndim - 2) + [(shift, 0), (0, 0)]
                taps.append(jnp.pad(x[..., : length - shift, :], pad))
        taps = jnp.concatenate(taps, axis=-1)
        return nn.Dense(self.features, use_bias=self.use_bias, name="taps")(taps)


class CorpusBatchNorm(nn.Module):
    """BatchNorm with separate statistics per corpus and one shared scale and bias (domain-specific
    BatchNorm; with no loss on the target it is AdaBN). Project choice, not in Emo-DNA's description.

    Training: rows [:num_source] of x [B, ..., C] are the source stream and the rest the target
    stream. Where `split` is 1, each stream is normalised by its own batch statistics (averaged over
    devices on `axis_name`) and updates its own row of the running statistics (batch_stats
    "mean"/"var" of shape [2, C]); where `split` is 0 (a scalar array, so that vmapped members can
    differ), both streams share the joint statistics, exactly as nn.BatchNorm, and both rows get them.
    num_source=0 is a batch of target rows only: with `split` 1 they get exactly what the target half
    of a joint batch gets (the pseudo-label forward relies on it).
    Inference: every row uses the running statistics of `stream` (SOURCE_STREAM or TARGET_STREAM).
    """

    use_running_average: bool
    momentum: float
    axis_name: str | None
    num_source: int | None = None
    stream: int = TARGET_STREAM
    epsilon: float = 1e-5  # flax.linen.BatchNorm's

    @nn.compact
    def __call__(self, x: jax.Array, split: jax.Array | float = 1.0) -> jax.Array:
        channels = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (channels,))
        bias = self.param("bias", nn.initializers.zeros, (channels,))
        running_mean = self.variable("batch_stats", "mean", lambda: jnp.zeros((2, channels), jnp.float32))
        running_var = self.variable("batch_stats", "var", lambda: jnp.ones((2, channels), jnp.float32))
        if self.use_running_average:
            mean, var = running_mean.value[self.stream], running_var.value[self.stream]
            return (x - mean) * lax.rsqrt(var + self.epsilon) * scale + bias
        num_source = self.num_source
        if num_source is None or not 0 <= num_source < x.shape[0]:
            raise ValueError(f"per-corpus BatchNorm in training needs 0 <= num_source < batch size "
                             f"({x.shape[0]}), got num_source={num_source}")
        # (row of the running statistics, rows of x) for each stream present; num_source=0 is a
        # target-only batch (the pseudo-label forward), whose source row of statistics stays as it is.
        halves = ((SOURCE_STREAM, x[:num_source]), (TARGET_STREAM, x[num_source:]))
        streams = [(row, part) for row, part in halves if part.shape[0]]
        moments = []  # per stream: (mean, mean of squares) [C], averaged over devices
        for _, part in streams:
            axes = tuple(range(part.ndim - 1))
            moments.append((part.mean(axes), jnp.square(part).mean(axes)))
        if self.axis_name is not None:
            moments = lax.pmean(moments, self.axis_name)
        # Joint statistics of the whole batch (source and target counts are the same on every device).
        weights = [part.shape[0] / x.shape[0] for _, part in streams]
        joint = [sum(w * m[i] for w, m in zip(weights, moments)) for i in range(2)]
        split = jnp.asarray(split, x.dtype)
        means, variances = [], []
        for mean, mean_sq in moments:
            mean = split * mean + (1 - split) * joint[0]
            mean_sq = split * mean_sq + (1 - split) * joint[1]
            means.append(mean)
            variances.append(jnp.maximum(mean_sq - jnp.square(mean), 0.0))
        if not self.is_initializing():
            m = self.momentum
            for (row, _), mean, var in zip(streams, means, variances):
                running_mean.value = running_mean.value.at[row].set(m * running_mean.value[row] + (1 - m) * mean)
                running_var.value = running_var.value.at[row].set(m * running_var.value[row] + (1 - m) * var)
        sizes = [part.shape[0] for _, part in streams]
        mean = jnp.concatenate([jnp.broadcast_to(m, (n, channels)) for m, n in zip(means, sizes)])
        var = jnp.concatenate([jnp.broadcast_to(v, (n, channels)) for v, n in zip(variances, sizes)])
        shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (channels,)
        return (x - mean.reshape(shape)) * lax.rsqrt(var.reshape(shape) + self.epsilon) * scale + bias


class TemporalAwareBlock(nn.Module):
    """TIM-Net's temporal-aware block: two causal convs with BN, ReLU and spatial dropout, whose
    sigmoid output gates the (1x1-projected) input.  [B, T, C] -> [B, T, filters]."""

    filters: int
    kernel_size: int
    dilation: int
    dropout_rate: float
    train: bool
    use_dropout: bool
    bn_momentum: float
    axis_name: str | None
    per_corpus_bn: bool = False
    num_source: int | None = None
    stream: int = TARGET_STREAM

    @nn.compact
    def __call__(self, x: jax.Array, split: jax.Array | float = 1.0) -> jax.Array:
        h = x
        for _ in range(2):
            # No bias: the BatchNorm after it removes any bias, whose gradient is then pure float
            # noise that Adam would scale up to full-size updates.
            h = CausalConv(self.filters, self.kernel_size, self.dilation, use_bias=False)(h)
            if self.per_corpus_bn:
                h = CorpusBatchNorm(use_running_average=not self.train, momentum=self.bn_momentum,
                                    axis_name=self.axis_name, num_source=self.num_source,
                                    stream=self.stream)(h, split)
            else:
                h = nn.BatchNorm(
                    use_running_average=not self.train,
                    momentum=self.bn_momentum,
                    axis_name=self.axis_name,
                )(h)
            h = nn.relu(h)
            # Spatial dropout: whole channels are dropped, the same at every frame.
            h = nn.Dropout(self.dropout_rate, broadcast_dims=(-2,), deterministic=not self.use_dropout)(h)
        residual = x if x.shape[-1] == self.filters else nn.Dense(self.filters, name="residual")(x)
        return residual * nn.sigmoid(h)


class DirectionalStack(nn.Module):
    """One direction of one encoder: 1x1 conv, then one temporal-aware block per dilation.

    Input [B, T, F] (already time-reversed for the backward direction) -> the time-averaged output of
    every block, [B, num_dilations, filters] (TIM-Net pools each scale before fusing them), and the
    last block's output [B, T, filters].

    `first_level` > 0 makes the upper part of a stack whose lower blocks run elsewhere (the shared
    trunk): no input projection, and blocks first_level ... dilations-1 with their own dilations.
    """

    filters: int
    kernel_size: int
    dilations: int
    dropout_rate: float
    train: bool
    use_dropout: bool
    bn_momentum: float
    axis_name: str | None
    per_corpus_bn: bool = False
    num_source: int | None = None
    stream: int = TARGET_STREAM
    first_level: int = 0

    @nn.compact
    def __call__(self, x: jax.Array, split: jax.Array | float = 1.0) -> tuple[jax.Array, jax.Array]:
        if not 0 <= self.first_level < self.dilations:
            raise ValueError(f"a stack's first level {self.first_level} must be in [0, dilations={self.dilations}): "
                             "config.model.shared_blocks must be below config.model.dilations")
        h = nn.Dense(self.filters, name="input_projection")(x) if self.first_level == 0 else x
        pooled = []
        for level in range(self.first_level, self.dilations):
            h = TemporalAwareBlock(
                filters=self.filters,
                kernel_size=self.kernel_size,
                dilation=2**level,
                dropout_rate=self.dropout_rate,
                train=self.train,
                use_dropout=self.use_dropout,
                bn_momentum=self.bn_momentum,
                axis_name=self.axis_name,
                per_corpus_bn=self.per_corpus_bn,
                num_source=self.num_source,
                stream=self.stream,
                name=f"block_{level}",
            )(h, split)
            pooled.append(jnp.mean(h, axis=-2))
        return jnp.stack(pooled, axis=-2), h


class EncoderTop(nn.Module):
    """Learned weighted fusion of the scales, then a projection to the embedding.

    [B, num_dilations, filters] -> [B, embed_dim]."""

    embed_dim: int

    @nn.compact
    def __call__(self, scales: jax.Array) -> jax.Array:
        weights = self.param("scale_weights", nn.initializers.zeros, (scales.shape[-2],))
        fused = jnp.einsum("bdc,d->bc", scales, jax.nn.softmax(weights))
        return nn.Dense(self.embed_dim, name="projection")(fused)


class EmoDNAModel(nn.Module):
    """Emotion encoder E_e, optional corpus encoder E_c, their classifiers, optional DANN head.

    Attributes:
      num_classes: K, emotion classes.
      num_corpora: D, corpora in training (source(s) + target).
      with_corpus_encoder: build E_e and E_c (Emo-DNA) or E_e only (baselines).
      with_domain_head: build a DANN discriminator on gradient-reversed z_e.
    """

    num_classes: int
    num_corpora: int
    filters: int = 39
    kernel_size: int = 2
    dilations: int = 8
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
    ) -> dict[str, jax.Array]:
        """Runs the model on features x [B, T, F].

        `train` selects batch statistics for BatchNorm (and updates the running ones when
        `batch_stats` is mutable); `use_dropout` defaults to `train` (False for the pseudo-label
        forward, which uses batch statistics but no dropout). `reversal_coeff` scales the reversed
        gradient into the DANN head. With per-corpus BatchNorm, a training forward needs
        `num_source` (rows [:num_source] are source, the rest target), and an inference forward
        normalises with the running statistics of `stream` (TARGET_STREAM by default).

        Returns a dict with z_e [B, h], logits_e [B, K] and, when built, z_c [B, h],
        logits_c [B, D], logits_domain [B, D].
        """
        members = 2 * self.num_encoders  # (encoder, direction) pairs, ordered e_fwd, e_bwd, c_fwd, c_bwd
        stack_args = dict(
            filters=self.filters,
            kernel_size=self.kernel_size,
            dilations=self.dilations,
            dropout_rate=self.dropout_rate,
            train=train,
            use_dropout=train if use_dropout is None else use_dropout,
            bn_momentum=self.bn_momentum,
            axis_name=self.axis_name,
            per_corpus_bn=self.batch_norm == "per_corpus",
            num_source=num_source,
            stream=stream,
        )

        def vmapped_stacks(size: int, name: str, **extra: Any) -> nn.Module:
            return nn.vmap(
                DirectionalStack,
                variable_axes={"params": 0, "batch_stats": 0},
                split_rngs={"params": True, "dropout": True},
                in_axes=(0, 0),
                out_axes=0,
                axis_size=size,
            )(**{**stack_args, **extra}, name=name)

        directions = jnp.stack([x, jnp.flip(x, axis=-2)])  # [2, B, T, F]
        # Per-corpus statistics in the emotion encoder only: the corpus encoder must still see what
        # tells the corpora apart, which per-corpus normalisation would remove. The shared trunk
        # belongs to the emotion path (its pseudo-label forward runs it), so it takes its statistics.
        split = jnp.asarray([1.0, 1.0, 0.0, 0.0][:members], x.dtype)
        if self.shared_blocks:
            trunk = vmapped_stacks(2, "shared_trunk", dilations=self.shared_blocks)
            trunk_scales, h = trunk(directions, split[:2])  # [2, B, s, C], [2, B, T, C]
            upper = vmapped_stacks(members, "temporal_stacks", first_level=self.shared_blocks)
            upper_scales, _ = upper(jnp.concatenate([h] * self.num_encoders), split)
            scales = jnp.concatenate([jnp.concatenate([trunk_scales] * self.num_encoders), upper_scales],
                                     axis=-2)  # [members, B, dilations, filters]
        else:
            stacked = jnp.concatenate([directions] * self.num_encoders)  # [members, B, T, F]
            scales, _ = vmapped_stacks(members, "temporal_stacks")(stacked, split)
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
        z = tops(scales)  # [encoders, B, h]
        out = {"z_e": z[0]}
        out["logits_e"] = nn.Dense(self.num_classes, name="emotion_classifier")(z[0])
        if self.with_corpus_encoder:
            out["z_c"] = z[1]
            out["logits_c"] = nn.Dense(self.num_corpora, name="corpus_classifier")(z[1])
        if self.with_domain_head:
            h = losses.gradient_reversal(z[0], reversal_coeff)
            h = nn.relu(nn.Dense(self.embed_dim, name="domain_hidden")(h))
            out["logits_domain"] = nn.Dense(self.num_corpora, name="domain_classifier")(h)
        return out


def create_model(config: Any, *, num_classes: int, num_corpora: int, axis_name: str | None) -> EmoDNAModel:
    """Builds the model a config asks for (the corpus encoder only when a loss uses it)."""
    loss = config.loss
    return EmoDNAModel(
        num_classes=num_classes,
        num_corpora=num_corpora,
        filters=config.model.filters,
        kernel_size=config.model.kernel_size,
        dilations=config.model.dilations,
        dropout_rate=config.model.dropout_rate,
        embed_dim=config.model.embed_dim,
        bn_momentum=config.model.bn_momentum,
        batch_norm=config.model.batch_norm,
        shared_blocks=config.model.shared_blocks,
        with_corpus_encoder=loss.corpus_id_weight > 0 or loss.decoupling_weight > 0,
        with_domain_head=loss.corpus_align == "dann" and loss.corpus_align_weight > 0,
        axis_name=axis_name,
    )


def emotion_encoder_view(model: EmoDNAModel, variables: dict[str, Any]) -> tuple[EmoDNAModel, dict[str, Any]]:
    """The emotion encoder and classifier alone, as a model and its variables (no copy of weights
    beyond slicing).

    Every (encoder, direction) member has its own BatchNorm, so on the same input this gives exactly
    the z_e and logits_e of the full model: a pseudo-label forward needs only this half of the work
    (the shared trunk, when there is one, is kept whole: it is part of the emotion path).
    """
    members, encoders = 2, 1
    view = {}
    for collection, tree in variables.items():
        tree = dict(tree)
        if "temporal_stacks" in tree:
            tree["temporal_stacks"] = jax.tree.map(lambda a: a[:members], tree["temporal_stacks"])
        if "encoder_tops" in tree:
            tree["encoder_tops"] = jax.tree.map(lambda a: a[:encoders], tree["encoder_tops"])
        for name in ("corpus_classifier", "domain_hidden", "domain_classifier"):
            tree.pop(name, None)
        view[collection] = tree
    return model.clone(with_corpus_encoder=False, with_domain_head=False), view
