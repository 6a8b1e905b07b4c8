"""Audio front end: load a file, pick a channel, resample, centre pad/crop, MFCC or log-mel.

The default ("mfcc39") is the authors' front end from their earlier cross-corpus work: 39 MFCCs
from librosa with its defaults (n_fft 2048, hop 512, 128 mel bands, centred frames, dB with
top_db 80) at 22,050 Hz, every utterance centre-padded with zeros or centre-cropped to 96,000
samples (4.35 s), giving T = 1 + 96000 // 512 = 188 frames, with no normalisation (the input
pipeline standardises per corpus). Feature settings are a TFDS builder config, so other front ends
can be built side by side.

Affect front ends (librosa + numpy, in the spirit of eGeMAPS; see affect_descriptors.py and
functionals.py): "affect" is the utterance functionals of the WHOLE utterance as a sequence of one
frame, [1, 78], so every [T, F] consumer works unchanged; "affect_frames" is the frame descriptors
(10 ms hop at 16 kHz) of the whole utterance, centre-padded with zero frames or centre-cropped to
401 frames (4 s), [401, 24]. "egemaps" [1, 88] and "compare" [1, 6373] are openSMILE's
eGeMAPSv02 and ComParE_2016 functionals through the optional `opensmile` package
(emodna_jax.audio.opensmile_features; audEERING's research licence).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os

import librosa
import numpy as np
import soundfile as sf


KINDS = ("mfcc", "logmel", "affect", "affect_frames", "egemaps", "compare")
_AFFECT_KINDS = ("affect", "affect_frames")
_OPENSMILE_SIZES = {"egemaps": 88, "compare": 6373}
_OPENSMILE_SETS = {"egemaps": "eGeMAPSv02", "compare": "ComParE_2016"}
_UTTERANCE_KINDS = ("affect", "egemaps", "compare")


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
    """One audio front end.

    Attributes:
      name: the TFDS builder config name.
      kind: "mfcc" (librosa.feature.mfcc), "logmel" (log-power mel spectrogram, dB re 1.0),
        "affect" (functionals.utterance_functionals, [1, F]), "affect_frames"
        (affect_descriptors.frame_descriptors, centre pad/crop of the frames), "egemaps" or
        "compare" (openSMILE functionals, [1, F]; needs the optional `opensmile` package).
      sample_rate: Hz; every file is resampled to it.
      num_samples: every utterance is centre-padded or centre-cropped to this many samples
        (mfcc, logmel); for affect_frames, the frames of this many samples are kept; the
        utterance-level kinds (affect, egemaps, compare) use the whole utterance.
      n_mfcc: number of MFCCs (kind "mfcc" only).
      n_mels: number of mel bands.
      n_fft: FFT size in samples.
      hop_length: frame hop in samples.
    """

    name: str = "mfcc39"
    kind: str = "mfcc"
    sample_rate: int = 22050
    num_samples: int = 96000
    n_mfcc: int = 39
    n_mels: int = 128
    n_fft: int = 2048
    hop_length: int = 512

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"FeatureConfig {self.name!r}: kind must be one of {KINDS}, "
                             f"got {self.kind!r}.")
        if self.kind in _AFFECT_KINDS and (self.sample_rate, self.hop_length) != (16000, 160):
            raise ValueError(f"FeatureConfig {self.name!r}: the affect descriptors are defined at "
                             "16 kHz with a 160-sample hop; set sample_rate=16000, hop_length=160.")
        for field in ("sample_rate", "num_samples", "n_mels", "n_fft", "hop_length", "n_mfcc"):
            if getattr(self, field) <= 0:
                raise ValueError(f"FeatureConfig {self.name!r}: {field} must be positive.")

    @property
    def num_frames(self) -> int:
        """T: frames of a centred STFT over `num_samples` samples; 1 for utterance functionals."""
        if self.kind in _UTTERANCE_KINDS:
            return 1
        return 1 + self.num_samples // self.hop_length

    @property
    def num_features(self) -> int:
        """F: coefficients per frame."""
        if self.kind in _OPENSMILE_SIZES:
            return _OPENSMILE_SIZES[self.kind]
        if self.kind == "affect":
            from emodna_jax.audio import functionals
            return len(functionals.NAMES)
        if self.kind == "affect_frames":
            from emodna_jax.audio import affect_descriptors
            return len(affect_descriptors.NAMES)
        return self.n_mfcc if self.kind == "mfcc" else self.n_mels

    def describe(self) -> str:
        """One line for the TFDS builder config's description."""
        t, f = self.shape
        if self.kind == "affect":
            return (f"affect functionals (librosa, eGeMAPS-like) of the whole utterance at 16 kHz, "
                    f"[{t}, {f}].")
        if self.kind == "affect_frames":
            return (f"affect frame descriptors (librosa, eGeMAPS-like), 16 kHz, 10 ms hop, centre "
                    f"pad/crop to {self.num_samples} samples, [{t}, {f}].")
        if self.kind in _OPENSMILE_SIZES:
            return (f"openSMILE {_OPENSMILE_SETS[self.kind]} functionals of the whole utterance "
                    f"at 16 kHz, [{t}, {f}] (optional opensmile package, research licence).")
        return (f"{self.kind} features [{t}, {f}] at {self.sample_rate} Hz, centre pad/crop to "
                f"{self.num_samples} samples, n_fft {self.n_fft}, hop {self.hop_length}, "
                f"{self.n_mels} mel bands.")

    @property
    def shape(self) -> tuple[int, int]:
        """(T, F) of `compute_features`."""
        return (self.num_frames, self.num_features)


FEATURE_CONFIGS: dict[str, FeatureConfig] = {
    c.name: c
    for c in (
        # The authors' front end (docs/method.md §3.1): [188, 39].
        FeatureConfig(name="mfcc39"),
        # A log-mel alternative common in SER: 16 kHz, 25 ms windows, 10 ms hop, 4 s: [401, 64].
        FeatureConfig(name="logmel64", kind="logmel", sample_rate=16000, num_samples=64000,
                      n_mels=64, n_fft=400, hop_length=160),
        # The affect front end (docs/method.md): functionals of the whole utterance, [1, 78].
        FeatureConfig(name="affect", kind="affect", sample_rate=16000, num_samples=64000,
                      n_fft=512, hop_length=160),
        # Its frame descriptors over 4 s (centre pad/crop of the frames), [401, 24].
        FeatureConfig(name="affect_frames", kind="affect_frames", sample_rate=16000,
                      num_samples=64000, n_fft=512, hop_length=160),
        # openSMILE (optional package): eGeMAPSv02 [1, 88] and ComParE_2016 [1, 6373].
        FeatureConfig(name="egemaps", kind="egemaps", sample_rate=16000, num_samples=64000),
        FeatureConfig(name="compare", kind="compare", sample_rate=16000, num_samples=64000),
    )
}


def get_feature_config(name: str) -> FeatureConfig:
    """Looks up a front end by name; an unknown name raises a ValueError listing valid ones."""
    if name not in FEATURE_CONFIGS:
        raise ValueError(f"Unknown feature config {name!r}; valid: {sorted(FEATURE_CONFIGS)} "
                         "(--config.features).")
    return FEATURE_CONFIGS[name]


class AudioFileError(ValueError):
    """An audio file that cannot be used; the message names the file and what to do."""


def load_audio(path: str, *, sample_rate: int, channel: int | None = 0) -> np.ndarray:
    """Reads one audio file (wav, flac, ... anything libsndfile reads) as mono float32.

    Args:
      path: the file.
      sample_rate: target rate in Hz; the file is resampled (soxr, librosa's default) if needed.
      channel: which channel of a multi-channel file to keep. Channels of corpora such as EMOVO
        are different microphones, so they are never averaged unless `channel=None` asks for it.
        A mono file is used as it is, whatever `channel` says.

    Returns:
      float32 [n] samples in [-1, 1] at `sample_rate`.

    Raises:
      AudioFileError: missing, unreadable, corrupt or empty file, non-finite samples, or a
        channel the file does not have.
    """
    if not os.path.isfile(path):
        raise AudioFileError(f"Audio file {path!r} does not exist.")
    try:
        data, file_rate = sf.read(path, dtype="float32", always_2d=True)
    except Exception as e:  # libsndfile raises several types for corrupt files
        raise AudioFileError(
            f"Cannot read audio file {path!r} ({type(e).__name__}: {e}). It is corrupt or not "
            "an audio format libsndfile reads (wav, flac, ogg); re-export or remove it.") from e
    num_frames, num_channels = data.shape
    if num_frames == 0 or num_channels == 0:
        raise AudioFileError(f"Audio file {path!r} is empty (0 samples); remove it.")
    if num_channels == 1:
        wave = data[:, 0]
    elif channel is None:
        wave = data.mean(axis=1)
    elif 0 <= channel < num_channels:
        wave = data[:, channel]
    else:
        raise AudioFileError(
            f"Audio file {path!r} has {num_channels} channels; channel {channel} does not exist "
            f"(choose 0..{num_channels - 1}).")
    if not np.all(np.isfinite(wave)):
        raise AudioFileError(f"Audio file {path!r} contains NaN or infinite samples; remove it.")
    if file_rate != sample_rate:
        wave = librosa.resample(wave, orig_sr=file_rate, target_sr=sample_rate)
    return np.ascontiguousarray(wave, dtype=np.float32)


def center_pad_or_crop(wave: np.ndarray, num_samples: int) -> np.ndarray:
    """Centre-pads with zeros or centre-crops a 1-D signal to exactly `num_samples`.

    An odd surplus or deficit puts the extra sample at the end (pad) / drops it from the end
    (crop), as `(n - num_samples) // 2` samples go before.

    Args:
      wave: [n] samples.
      num_samples: output length.

    Returns:
      [num_samples] array of the input dtype.
    """
    wave = np.asarray(wave)
    if wave.ndim != 1:
        raise ValueError(f"center_pad_or_crop expects a 1-D signal, got shape {wave.shape}.")
    n = wave.shape[0]
    if n >= num_samples:
        start = (n - num_samples) // 2
        return wave[start:start + num_samples]
    before = (num_samples - n) // 2
    return np.pad(wave, (before, num_samples - n - before))


@functools.lru_cache(maxsize=8)
def _mel_basis(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """librosa's default (Slaney) mel filter bank, float32 [n_mels, 1 + n_fft // 2]; read-only."""
    basis = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels)
    basis.setflags(write=False)
    return basis


def compute_features(wave: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """Frame-level features of one utterance.

    Args:
      wave: [n] mono samples at `config.sample_rate`; centre-padded/cropped to
        `config.num_samples` here (a no-op when already that long) for mfcc/logmel; the
        affect and openSMILE kinds read the whole utterance (affect_frames pads/crops frames).
      config: the front end.

    Returns:
      float32 [config.num_frames, config.num_features] (time major).
    """
    if config.kind in _AFFECT_KINDS or config.kind in _OPENSMILE_SIZES:
        out = _utterance_features(np.asarray(wave, dtype=np.float32), config)
        if out.shape != config.shape:
            raise RuntimeError(f"Front end {config.name!r} produced {out.shape}, expected "
                               f"{config.shape}.")
        return out
    y = center_pad_or_crop(np.asarray(wave, dtype=np.float32), config.num_samples)
    # librosa.feature.mfcc / melspectrogram step by step, with the mel projection as one BLAS
    # matmul instead of their einsum and the filter bank cached: 4.3 instead of 6.0 ms an
    # utterance (1 BLAS thread), with identical output (tested against librosa).
    power = np.abs(librosa.stft(y, n_fft=config.n_fft, hop_length=config.hop_length)) ** 2
    mel = _mel_basis(config.sample_rate, config.n_fft, config.n_mels) @ power
    if config.kind == "mfcc":
        # The defaults of librosa.feature.mfcc: power_to_db(ref=1.0, top_db=80), DCT-II, ortho.
        feats = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=config.n_mfcc)
    else:
        # Absolute dB (ref 1.0, no top_db clipping) so that levels stay comparable across files.
        feats = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)
    out = np.ascontiguousarray(feats.T, dtype=np.float32)
    if out.shape != config.shape:  # a librosa behaviour change must not silently change shapes
        raise RuntimeError(f"Front end {config.name!r} produced {out.shape}, expected "
                           f"{config.shape}.")
    return out


def _utterance_features(wave: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """The affect and openSMILE kinds, computed from the whole utterance: float32 [T, F]."""
    if config.kind == "affect":
        from emodna_jax.audio import functionals
        values, _ = functionals.utterance_functionals(wave, config.sample_rate)
        return values[None, :].astype(np.float32)
    if config.kind == "affect_frames":
        from emodna_jax.audio import affect_descriptors
        frames, _ = affect_descriptors.frame_descriptors(wave, config.sample_rate)
        # Centre pad (zero frames: silence is unvoiced and inactive) or crop the frame axis, as
        # center_pad_or_crop does to samples; descriptors see the whole utterance's context.
        t = config.num_frames
        n = frames.shape[0]
        if n >= t:
            frames = frames[(n - t) // 2:(n - t) // 2 + t]
        else:
            before = (t - n) // 2
            frames = np.pad(frames, ((before, t - n - before), (0, 0)))
        return np.ascontiguousarray(frames, dtype=np.float32)
    try:  # openSMILE is optional (research licence): imported only when asked for
        from emodna_jax.audio import opensmile_features
    except ImportError as e:
        raise ImportError(f"Front end {config.name!r} needs emodna_jax.audio.opensmile_features and the "
                          "optional `opensmile` package (pip install opensmile); or choose "
                          "features=affect.") from e
    values = opensmile_features.extract_functionals(wave, config.sample_rate, config.kind)
    # openSMILE leaves some functionals NaN on pathological input (no voiced frame): 0, as the
    # affect functionals define them, so that no NaN reaches the normalisation or the model.
    return np.nan_to_num(np.asarray(values, dtype=np.float32).reshape(1, -1), nan=0.0)


def single_threaded_blas():
    """A context in which BLAS uses one thread (threadpoolctl, a dependency of librosa).

    Builders compute features in several Python threads; OpenBLAS threads on top of them spin
    against each other: measured on a busy 2-core machine, the 128 x 1025 @ 1025 x 188 mel
    projection took 18 ms with 2 BLAS threads and 0.5 ms with 1.
    """
    try:
        import threadpoolctl
    except ImportError:  # pragma: no cover - librosa depends on scikit-learn, which brings it
        return contextlib.nullcontext()
    return threadpoolctl.threadpool_limits(1, user_api="blas")


def features_from_file(path: str, config: FeatureConfig, channel: int | None = 0) -> np.ndarray:
    """`compute_features(load_audio(path, ...), config)`: float32 [T, F]."""
    return compute_features(
        load_audio(path, sample_rate=config.sample_rate, channel=channel), config)
