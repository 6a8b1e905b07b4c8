"""Layers the model uses: BatchNorm with per-corpus statistics, dropout whose masks do not depend on
how the batch is split over devices, and the gradient reversal of the DANN head."""

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

SOURCE_STREAM, TARGET_STREAM = 0, 1  # rows of the per-corpus BatchNorm statistics


def global_example_ids(num_source: int, num_target: int, axis_name: str | None) -> jax.Array:
    """Each row's position in the GLOBAL batch, for a device's rows [source; target].

    The global batch is laid out as every device's source rows (device 0 first), then every device's
    target rows, so the ids of an example are the same on 1 and on N devices (the pipeline gives
    device d the rows d*b .. (d+1)*b - 1 of each stream). Returns int32 [num_source + num_target];
    with `axis_name` None (no device axis) the ids are 0 .. num_source + num_target - 1.
    """
    device, devices = (0, 1) if axis_name is None else (lax.axis_index(axis_name), lax.psum(1, axis_name))
    source = device * num_source + jnp.arange(num_source)
    target = devices * num_source + device * num_target + jnp.arange(num_target)
    return jnp.concatenate([source, target]).astype(jnp.int32)


class ExampleDropout(nn.Module):
    """Inverted dropout whose mask for an example is drawn from fold_in(key, example id).

    nn.Dropout draws one mask for the whole local batch, so the mask of an example depends on which
    device holds it and on its row there: the same seed trained differently on 1 and on 4 devices.
    Here the key is the module's "dropout" key (the same on every device) and each example's mask
    depends only on its id (`global_example_ids`), so a run is the same on any device count.

    Input x [B, ...] and example_ids int [B]; `broadcast_dims` are axes of x (negative, never the
    batch axis) along which one example's mask is shared, e.g. (-2,) for spatial dropout of [B, T, C]
    (whole channels dropped at every frame).
    """

    rate: float
    deterministic: bool
    broadcast_dims: tuple[int, ...] = ()

    @nn.compact
    def __call__(self, x: jax.Array, example_ids: jax.Array) -> jax.Array:
        if self.deterministic or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        shape = list(x.shape[1:])
        for axis in self.broadcast_dims:
            if not -len(shape) <= axis < 0:
                raise ValueError(f"ExampleDropout: broadcast_dims {self.broadcast_dims} must be negative axes "
                                 f"of one example (shape {tuple(shape)}), not the batch axis")
            shape[axis] = 1
        key = self.make_rng("dropout")
        masks = jax.vmap(lambda i: jax.random.bernoulli(jax.random.fold_in(key, i), keep, shape))(example_ids)
        return jnp.where(masks, x / keep, jnp.zeros_like(x))


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

    Several sources with one corpus id each (`num_corpora` D > 2, config.multi_source="per_corpus"):
    one row of statistics per corpus, the target's last (D - 1, which TARGET_STREAM then names);
    `source_corpus` int [num_source] gives each source row's corpus 0..D-2, and each source corpus is
    normalised by its own statistics (masked sums over the global batch). At inference
    `source_corpus` int [B], when given, picks each row's statistics (a source split), else `stream`.
    D = 2 (one source, or a pooled one) runs exactly the two-row code above.
    """

    use_running_average: bool
    momentum: float
    axis_name: str | None
    num_source: int | None = None
    stream: int = TARGET_STREAM
    epsilon: float = 1e-5  # flax.linen.BatchNorm's
    num_corpora: int = 2
    source_corpus: jax.Array | None = None

    @nn.compact
    def __call__(self, x: jax.Array, split: jax.Array | float = 1.0) -> jax.Array:
        channels = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (channels,))
        bias = self.param("bias", nn.initializers.zeros, (channels,))
        rows = self.num_corpora
        running_mean = self.variable("batch_stats", "mean", lambda: jnp.zeros((rows, channels), jnp.float32))
        running_var = self.variable("batch_stats", "var", lambda: jnp.ones((rows, channels), jnp.float32))
        if self.use_running_average:
            if rows > 2 and self.source_corpus is not None:  # each row its own corpus' statistics
                shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (channels,)
                mean = running_mean.value[self.source_corpus].reshape(shape)
                var = running_var.value[self.source_corpus].reshape(shape)
            else:
                row = rows - 1 if self.stream == TARGET_STREAM else self.stream
                mean, var = running_mean.value[row], running_var.value[row]
            return (x - mean) * lax.rsqrt(var + self.epsilon) * scale + bias
        num_source = self.num_source
        if num_source is None or not 0 <= num_source < x.shape[0]:
            raise ValueError(f"per-corpus BatchNorm in training needs 0 <= num_source < batch size "
                             f"({x.shape[0]}), got num_source={num_source}")
        if rows > 2:
            return self._train_per_source(x, split, scale, bias, running_mean, running_var)
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

    def _train_per_source(self, x, split, scale, bias, running_mean, running_var) -> jax.Array:
        """Training with D > 2 rows: source corpus k (rows [:num_source] where source_corpus == k) by
        its own statistics over the global batch, the target (rows [num_source:]) by its own; where
        `split` is 0 every row gets the joint statistics. A corpus absent from the batch keeps its
        running row."""
        num_source, rows, channels = self.num_source, self.num_corpora, x.shape[-1]
        if num_source and self.source_corpus is None:
            raise ValueError("per-corpus BatchNorm with num_corpora > 2 needs source_corpus, the corpus "
                             "id of each source row")
        source_rows = self.source_corpus if num_source else jnp.zeros((0,), jnp.int32)
        row_of = jnp.concatenate([source_rows.astype(jnp.int32),
                                  jnp.full((x.shape[0] - num_source,), rows - 1, jnp.int32)])  # [B]
        member = jax.nn.one_hot(row_of, rows, dtype=x.dtype)  # [B, rows]
        flat = x.reshape(x.shape[0], -1, channels)  # [B, values per example and channel, C]
        sums = jnp.einsum("bvc,br->rc", flat, member)
        sums_sq = jnp.einsum("bvc,br->rc", jnp.square(flat), member)
        counts = member.sum(0) * flat.shape[1]  # [rows]
        if self.axis_name is not None:
            sums, sums_sq, counts = lax.psum((sums, sums_sq, counts), self.axis_name)
        total = jnp.maximum(counts.sum(), 1.0)
        joint_mean, joint_sq = sums.sum(0) / total, sums_sq.sum(0) / total
        safe = jnp.maximum(counts, 1.0)[:, None]
        split = jnp.asarray(split, x.dtype)
        mean = split * sums / safe + (1 - split) * joint_mean  # [rows, C]
        var = jnp.maximum(split * sums_sq / safe + (1 - split) * joint_sq - jnp.square(mean), 0.0)
        if not self.is_initializing():
            m, present = self.momentum, (counts > 0)[:, None]
            running_mean.value = jnp.where(present, m * running_mean.value + (1 - m) * mean, running_mean.value)
            running_var.value = jnp.where(present, m * running_var.value + (1 - m) * var, running_var.value)
        shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (channels,)
        return (x - mean[row_of].reshape(shape)) * lax.rsqrt(var[row_of].reshape(shape) + self.epsilon) * scale + bias


def batch_norm(h: jax.Array, split: jax.Array | float, *, per_corpus: bool, train: bool, momentum: float,
               axis_name: str | None, num_source: int | None, stream: int, num_corpora: int = 2,
               source_corpus: jax.Array | None = None) -> jax.Array:
    """The BatchNorm a model config asks for over h [B, ..., C]: CorpusBatchNorm (per-corpus
    statistics where `split` is 1) or nn.BatchNorm (statistics of the joint batch). Call it inside a
    compact module; it creates the layer there."""
    if per_corpus:
        return CorpusBatchNorm(use_running_average=not train, momentum=momentum, axis_name=axis_name,
                               num_source=num_source, stream=stream, num_corpora=num_corpora,
                               source_corpus=source_corpus)(h, split)
    return nn.BatchNorm(use_running_average=not train, momentum=momentum, axis_name=axis_name)(h)


def example_ids_or_range(example_ids: jax.Array | None, x: jax.Array) -> jax.Array:
    """Example ids for the rows of x [B, ...]: the given ones, or 0 .. B-1 (one device, no split)."""
    return jnp.arange(x.shape[0], dtype=jnp.int32) if example_ids is None else example_ids


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: source_corpus may be an array
class NormSettings:
    """The BatchNorm and dropout settings every encoder block shares, passed down as one field
    (TemporalAwareBlock, DirectionalStack, MLPEncoder); EmoDNAModel builds it for each forward."""

    dropout_rate: float
    train: bool  # BatchNorm on batch statistics (updating the running ones), else on the running ones
    use_dropout: bool
    bn_momentum: float
    axis_name: str | None
    per_corpus_bn: bool = False  # CorpusBatchNorm instead of nn.BatchNorm
    num_source: int | None = None  # rows [:num_source] are source in training
    stream: int = TARGET_STREAM  # whose running statistics an inference forward uses
    num_corpora: int = 2  # rows of per-corpus statistics (CorpusBatchNorm)
    source_corpus: Any = None  # int [num_source]: each source row's corpus, with num_corpora > 2

    def batch_norm(self, h: jax.Array, split: jax.Array | float) -> jax.Array:
        """`batch_norm` with these settings; call it inside a compact module."""
        return batch_norm(h, split, per_corpus=self.per_corpus_bn, train=self.train, momentum=self.bn_momentum,
                          axis_name=self.axis_name, num_source=self.num_source, stream=self.stream,
                          num_corpora=self.num_corpora, source_corpus=self.source_corpus)

    def dropout(self, h: jax.Array, example_ids: jax.Array | None,
                broadcast_dims: tuple[int, ...] = ()) -> jax.Array:
        """ExampleDropout of h [B, ...] with these settings; call it inside a compact module."""
        return ExampleDropout(self.dropout_rate, deterministic=not self.use_dropout, broadcast_dims=broadcast_dims)(
            h, example_ids_or_range(example_ids, h))


@jax.custom_vjp
def gradient_reversal(x: jax.Array, coeff: jax.Array | float) -> jax.Array:
    """Identity forward; the backward pass multiplies the gradient by -coeff (DANN). Any shape."""
    return x


def _reversal_fwd(x, coeff):
    return x, coeff


def _reversal_bwd(coeff, g):
    return (jax.tree.map(lambda t: -coeff * t, g), jnp.zeros_like(jnp.asarray(coeff, jnp.float32)))


gradient_reversal.defvjp(_reversal_fwd, _reversal_bwd)
