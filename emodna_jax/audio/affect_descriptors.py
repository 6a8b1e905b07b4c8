"""Frame-level affect descriptors in the spirit of eGeMAPS (Eyben et al. 2016), librosa + numpy.

`frame_descriptors(wave, sample_rate)` resamples to 16 kHz and returns one row per 10 ms hop
(centred frames, T = 1 + n // 160 for n samples at 16 kHz) with these columns (`NAMES`):

  F0semitoneFrom27.5Hz   12 * log2(F0 / 27.5 Hz) from `librosa.yin` (64 ms frames, 60-700 Hz);
                         0 on unvoiced frames (eGeMAPS' "nz" convention)
  loudness               sum over 26 mel bands of the A-weighted band power ** 0.33 (openSMILE's
                         auditory-spectrum loudness, with A-weighting for its equal-loudness curve);
                         +20 dB of level multiplies it by 100 ** 0.33 = 4.57
  alphaRatio             10 log10(E[1-5 kHz] / E[50 Hz-1 kHz]), dB (openSMILE's sign: more high
                         frequency energy gives a higher value)
  hammarbergIndex        10 log10(max power 0-2 kHz / max power 2-5 kHz), dB
  slope0-500, slope500-1500   least-squares slope of the dB power spectrum over 0-500 Hz and
                         500-1500 Hz, dB/kHz
  spectralFlux           sum of squared differences of consecutive L1-normalised magnitude spectra
  mfcc1..mfcc4           MFCCs 1-4 of the 26-band mel spectrum (dB)
  HNRdBACF               10 log10(r / (1 - r)) with r the normalised autocorrelation at the F0
                         period (Boersma 1993), clipped to [-20, 40] dB; 0 when unvoiced
  jitterLocal            mean |T_i - T_i+1| / mean T over the pitch periods inside the 64 ms frame
                         (periods from cycle peaks on the F0 grid); 0 when unvoiced
  shimmerLocaldB         mean |20 log10(A_i+1 / A_i)| over the same cycles' peak amplitudes
  F1-F3frequency, F1-F3bandwidth   from the roots of an order-16 LPC polynomial (pre-emphasised,
                         Hamming-windowed 32 ms frame): the three lowest roots above 90 Hz with
                         bandwidth under 600 Hz, Hz; 0 when unvoiced or not found
  level_dB               mean power of the 25 ms Hann-windowed frame, dB re full scale (floor -120)
  voicingProb            r above (0 on inactive frames)
  active                 1.0 on frames above the activity gate below, else 0.0
  voiced                 1.0 on voiced frames, else 0.0

Voicing: a frame is voiced when it is active (frame RMS above -65 dBFS and within 40 dB of the
utterance's 95th-percentile frame level), its normalised autocorrelation at the yin period is at
least 0.45 (Praat's voicing threshold), and it lies in a voiced run of at least 3 frames (30 ms).
Digital silence has no active frame, hence no voiced frame. Every column is then smoothed by a
3-frame moving average (eGeMAPS' "sma3"); the voiced-only columns average voiced neighbours only.
Jitter and shimmer here are frame-local approximations of Praat's (no global pitch marks).
"""

from __future__ import annotations

import functools

import librosa
import numpy as np

SAMPLE_RATE = 16000
HOP = 160  # 10 ms
N_FFT = 512  # 32 ms FFT, 25 ms Hann window (librosa centres it in the FFT frame)
WIN = 400
F0_FRAME = 1024  # 64 ms: yin needs >= 2 periods of the lowest F0
FMIN, FMAX = 60.0, 700.0
N_MELS = 26
LPC_ORDER = 16
VOICING_THRESHOLD = 0.45
MIN_VOICED_RUN = 3
ABS_GATE_DB, REL_GATE_DB = -65.0, 40.0

NAMES = ("F0semitoneFrom27.5Hz", "loudness", "alphaRatio", "hammarbergIndex", "slope0-500",
         "slope500-1500", "spectralFlux", "mfcc1", "mfcc2", "mfcc3", "mfcc4", "HNRdBACF",
         "jitterLocal", "shimmerLocaldB", "F1frequency", "F2frequency", "F3frequency",
         "F1bandwidth", "F2bandwidth", "F3bandwidth", "level_dB", "voicingProb", "active", "voiced")
# Columns defined on voiced frames only (0 elsewhere): the "nz" descriptors of eGeMAPS.
VOICED_ONLY = ("F0semitoneFrom27.5Hz", "HNRdBACF", "jitterLocal", "shimmerLocaldB", "F1frequency",
               "F2frequency", "F3frequency", "F1bandwidth", "F2bandwidth", "F3bandwidth")
_EPS = 1e-12


def num_frames(num_samples: int) -> int:
    """T for `num_samples` samples at 16 kHz (centred frames, 10 ms hop)."""
    return 1 + num_samples // HOP


@functools.lru_cache(maxsize=1)
def _spectral_constants():
    freqs = librosa.fft_frequencies(sr=SAMPLE_RATE, n_fft=N_FFT)
    weight = librosa.db_to_power(librosa.A_weighting(np.maximum(freqs, 1.0), min_db=-80.0))
    mel = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=20.0, fmax=8000.0)
    return freqs, weight, mel


def _slope(db: np.ndarray, freqs: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Least-squares slope of db [K, T] over the bins in [lo, hi] Hz, dB per kHz: [T]."""
    sel = (freqs >= lo) & (freqs <= hi)
    f = freqs[sel] / 1000.0
    f = f - f.mean()
    return (f @ db[sel]) / (f @ f)


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and ends (exclusive) of the runs of True in a 1-D bool mask."""
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def _drop_short_runs(mask: np.ndarray, min_len: int) -> np.ndarray:
    out = mask.copy()
    for s, e in zip(*_runs(mask)):
        if e - s < min_len:
            out[s:e] = False
    return out


def _sma3(x: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """3-frame moving average of x [T] (edges average the frames that exist); with `valid` [T],
    only valid frames are averaged and invalid ones stay 0."""
    w = np.ones_like(x) if valid is None else valid.astype(x.dtype)
    three = lambda v: (lambda p: p[:-2] + p[1:-1] + p[2:])(np.pad(v, 1))  # noqa: E731
    xs, ws = three(x * w), three(w)
    out = xs / np.maximum(ws, _EPS)
    return out if valid is None else np.where(valid, out, 0.0)


def _periodicity(frames: np.ndarray, period: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation of each frame [T, L] with itself shifted by its period
    (best of period-1, period, period+1 samples, so rounding the period costs nothing): [T]."""
    t, length = frames.shape
    w = length - int(np.ceil(SAMPLE_RATE / FMIN)) - 2
    a = frames[:, :w]
    ea = np.sum(a * a, axis=1)
    best = np.zeros(t)
    for shift in (-1, 0, 1):
        idx = np.clip(period + shift, 1, length - w)[:, None] + np.arange(w)[None, :]
        b = np.take_along_axis(frames, idx, axis=1)
        r = np.sum(a * b, axis=1) / np.sqrt(np.maximum(ea * np.sum(b * b, axis=1), _EPS))
        best = np.maximum(best, r)
    return np.clip(best, 0.0, 1.0)


def _jitter_shimmer(frame: np.ndarray, period: int) -> tuple[float, float]:
    """Local jitter (ratio) and shimmer (dB) from cycle peaks of one voiced frame (0, 0 when
    fewer than 3 cycles fit)."""
    first = int(np.argmax(frame[:period]))
    start = first - period // 2 if first >= period // 2 else first + period - period // 2
    n = (len(frame) - start) // period
    if n < 3:
        return 0.0, 0.0
    cycles = frame[start:start + n * period].reshape(n, period)
    pos = np.argmax(cycles, axis=1) + np.arange(n) * period
    amp = np.maximum(cycles.max(axis=1), _EPS)
    periods = np.diff(pos).astype(np.float64)
    if periods.mean() <= 0:
        return 0.0, 0.0
    jitter = np.mean(np.abs(np.diff(periods))) / periods.mean() if len(periods) > 1 else 0.0
    shimmer = np.mean(np.abs(20.0 * np.log10(amp[1:] / amp[:-1])))
    return float(min(jitter, 1.0)), float(min(shimmer, 20.0))


def _formants(frames: np.ndarray) -> np.ndarray:
    """F1-F3 frequencies and bandwidths [T, 6] (Hz; 0 where not found) of frames [T, L]."""
    t = frames.shape[0]
    out = np.zeros((t, 6))
    if t == 0:
        return out
    x = frames.copy()
    x[:, 1:] -= 0.97 * frames[:, :-1]  # pre-emphasis: flattens the glottal tilt for LPC
    x *= np.hamming(x.shape[1])[None, :]
    spec = np.fft.rfft(x, n=2 * x.shape[1], axis=1)
    r = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, :LPC_ORDER + 1]
    r[:, 0] = r[:, 0] * (1.0 + 1e-9) + 1e-12  # white-noise floor keeps Levinson stable
    # Levinson-Durbin, vectorised over frames: a [T, p+1] with a[:, 0] = 1.
    a = np.zeros((t, LPC_ORDER + 1))
    a[:, 0] = 1.0
    err = r[:, 0].copy()
    for i in range(1, LPC_ORDER + 1):
        k = -(np.sum(a[:, :i] * r[:, i:0:-1], axis=1)) / np.maximum(err, _EPS)
        a[:, 1:i + 1] = a[:, 1:i + 1] + k[:, None] * a[:, i - 1::-1][:, :i]
        err = err * (1.0 - k * k)
    # Roots of 1 + a1 z^-1 + ... = eigenvalues of the companion matrix, for all frames at once.
    comp = np.zeros((t, LPC_ORDER, LPC_ORDER))
    comp[:, 0, :] = -a[:, 1:]
    comp[:, np.arange(1, LPC_ORDER), np.arange(LPC_ORDER - 1)] = 1.0
    roots = np.linalg.eigvals(comp)
    freq = np.angle(roots) * SAMPLE_RATE / (2 * np.pi)
    bw = -np.log(np.maximum(np.abs(roots), _EPS)) * SAMPLE_RATE / np.pi
    ok = (np.imag(roots) > 0) & (freq > 90.0) & (freq < SAMPLE_RATE / 2 - 90.0) & (bw < 600.0)
    freq = np.where(ok, freq, np.inf)
    order = np.argsort(freq, axis=1)[:, :3]
    f3 = np.take_along_axis(freq, order, axis=1)
    b3 = np.take_along_axis(bw, order, axis=1)
    found = np.isfinite(f3)
    out[:, :3] = np.where(found, f3, 0.0)
    out[:, 3:] = np.where(found, b3, 0.0)
    return out


def frame_descriptors(wave: np.ndarray, sample_rate: int) -> tuple[np.ndarray, tuple[str, ...]]:
    """Frame-level affect descriptors of one utterance (see the module docstring).

    Args:
      wave: [n] mono samples at `sample_rate` Hz (resampled to 16 kHz here; any length >= 0).
      sample_rate: Hz.

    Returns:
      (float32 [T, len(NAMES)] with T = 1 + n16 // 160 for n16 samples at 16 kHz, NAMES).
      Finite for every input (silence, a click, a few samples).
    """
    y = np.asarray(wave, dtype=np.float32).reshape(-1)
    if not np.all(np.isfinite(y)):
        raise ValueError("frame_descriptors: the wave contains NaN or infinite samples.")
    if sample_rate != SAMPLE_RATE and y.size:
        y = librosa.resample(y, orig_sr=sample_rate, target_sr=SAMPLE_RATE)
    y = y.astype(np.float64)
    t = num_frames(y.size)
    if y.size < F0_FRAME:  # librosa's framing needs a whole frame; the zeros add no frame to T
        y = np.pad(y, (0, F0_FRAME - y.size))
    freqs, a_weight, mel_basis = _spectral_constants()

    # Spectral descriptors from one 25 ms Hann STFT.
    power = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP, win_length=WIN,
                                center=True, pad_mode="constant")) ** 2  # [K, T]
    power = power[:, :t]
    band = lambda lo, hi: (freqs >= lo) & (freqs < hi)  # noqa: E731
    lo_e = power[band(50, 1000)].sum(0)
    hi_e = power[band(1000, 5000)].sum(0)
    alpha = 10 * np.log10((hi_e + _EPS) / (lo_e + _EPS))
    hammarberg = 10 * np.log10((power[band(0, 2000)].max(0) + _EPS)
                               / (power[band(2000, 5000)].max(0) + _EPS))
    db = 10 * np.log10(power + 1e-10)
    slope_lo = _slope(db, freqs, 0, 500)
    slope_hi = _slope(db, freqs, 500, 1500)
    mag = np.sqrt(power)
    norm = mag / np.maximum(mag.sum(0, keepdims=True), _EPS)
    flux = np.concatenate([[0.0], np.sum(np.diff(norm, axis=1) ** 2, axis=0)])
    mel_power = mel_basis @ (power * a_weight[:, None])
    loudness = np.sum(mel_power ** 0.33, axis=0)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel_basis @ power, amin=1e-10), n_mfcc=5)
    mfcc = mfcc[1:5]

    # Activity gate from the 25 ms frame energy (rms of the windowed frame, dBFS).
    win_energy = np.sum(librosa.filters.get_window("hann", WIN) ** 2)
    level_db = 10 * np.log10(power.sum(0) * 2 / (N_FFT * win_energy) + 1e-20)
    gate = max(ABS_GATE_DB, (np.percentile(level_db, 95) if t else 0.0) - REL_GATE_DB)
    active = level_db > gate

    # F0 (yin) and voicing from the normalised autocorrelation at the yin period, 64 ms frames.
    f0 = np.full(t, FMIN)
    r = np.zeros(t)
    jitter = np.zeros(t)
    shimmer = np.zeros(t)
    if active.any():
        f0 = librosa.yin(y, fmin=FMIN, fmax=FMAX, sr=SAMPLE_RATE, frame_length=F0_FRAME,
                         hop_length=HOP, center=True)[:t]
        padded = np.pad(y, F0_FRAME // 2)
        frames = librosa.util.frame(padded, frame_length=F0_FRAME, hop_length=HOP, axis=0)[:t]
        period = np.round(SAMPLE_RATE / f0).astype(np.int64)
        r[active] = _periodicity(frames[active], period[active])
    voiced = _drop_short_runs(active & (r >= VOICING_THRESHOLD), MIN_VOICED_RUN)
    hnr = np.where(voiced, np.clip(10 * np.log10((r + _EPS) / np.maximum(1 - r, _EPS)), -20, 40), 0)
    formants = np.zeros((t, 6))
    if voiced.any():
        for i in np.flatnonzero(voiced):
            jitter[i], shimmer[i] = _jitter_shimmer(frames[i], int(period[i]))
        stft_frames = librosa.util.frame(np.pad(y, N_FFT // 2), frame_length=N_FFT,
                                         hop_length=HOP, axis=0)[:t]
        formants[voiced] = _formants(stft_frames[voiced])
    semitones = np.where(voiced, 12 * np.log2(np.maximum(f0, _EPS) / 27.5), 0.0)

    cols = {"F0semitoneFrom27.5Hz": semitones, "loudness": loudness, "alphaRatio": alpha,
            "hammarbergIndex": hammarberg, "slope0-500": slope_lo, "slope500-1500": slope_hi,
            "spectralFlux": flux, "HNRdBACF": hnr, "jitterLocal": jitter,
            "shimmerLocaldB": shimmer, "voicingProb": np.where(active, r, 0.0),
            "level_dB": np.maximum(level_db, -120.0), "active": active.astype(np.float64),
            "voiced": voiced.astype(np.float64)}
    for i in range(4):
        cols[f"mfcc{i + 1}"] = mfcc[i]
    for i, name in enumerate(("F1frequency", "F2frequency", "F3frequency", "F1bandwidth",
                              "F2bandwidth", "F3bandwidth")):
        cols[name] = formants[:, i]
    out = np.zeros((t, len(NAMES)))
    for j, name in enumerate(NAMES):
        x = cols[name][:t]
        if name in ("voiced", "active"):
            out[:, j] = x
        elif name in VOICED_ONLY:
            valid = voiced & (x != 0) if name.startswith("F") and name[1].isdigit() else voiced
            out[:, j] = _sma3(x, valid)
        else:
            out[:, j] = _sma3(x)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32), NAMES
