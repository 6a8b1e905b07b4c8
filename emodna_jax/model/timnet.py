"""TIM-Net's building blocks (Ye et al., ICASSP 2023): dilated causal convolutions in gated temporal
blocks, a forward and a backward stack fused over dilation scales (docs/method.md §4.1).

The causal convolution is written as shifted copies of the input concatenated on the channel axis and
one matmul (kernel 2 = two taps), which XLA's CPU backend runs much faster than a thin dilated
`conv_general_dilated`; models.py runs the (encoder, direction) members of a stack as one `nn.vmap`.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from emodna_jax.model.layers import NormSettings


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


class TemporalAwareBlock(nn.Module):
    """TIM-Net's temporal-aware block: two causal convs with BN, ReLU and spatial dropout, whose
    sigmoid output gates the (1x1-projected) input.  [B, T, C] -> [B, T, filters]."""

    filters: int
    kernel_size: int
    dilation: int
    norm: NormSettings  # BatchNorm and dropout (layers.NormSettings)

    @nn.compact
    def __call__(self, x: jax.Array, split: jax.Array | float = 1.0,
                 example_ids: jax.Array | None = None) -> jax.Array:
        h = x
        for _ in range(2):
            # No bias: the BatchNorm after it removes any bias, whose gradient is then pure float
            # noise that Adam would scale up to full-size updates.
            h = CausalConv(self.filters, self.kernel_size, self.dilation, use_bias=False)(h)
            h = self.norm.batch_norm(h, split)
            h = nn.relu(h)
            # Spatial dropout: whole channels are dropped, the same at every frame.
            h = self.norm.dropout(h, example_ids, broadcast_dims=(-2,))
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
    norm: NormSettings  # BatchNorm and dropout (layers.NormSettings)
    first_level: int = 0

    @nn.compact
    def __call__(self, x: jax.Array, split: jax.Array | float = 1.0,
                 example_ids: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
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
                norm=self.norm,
                name=f"block_{level}",
            )(h, split, example_ids)
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
