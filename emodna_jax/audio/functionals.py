"""Utterance functionals over the affect descriptors (eGeMAPSv02's set, Eyben et al. 2016).

`utterance_functionals(wave, sample_rate)` computes `affect_descriptors.frame_descriptors` over the
WHOLE utterance (no pad or crop) and summarises them into `len(NAMES)` numbers. Where a functional
is one of eGeMAPSv02's it carries openSMILE's name (`F0semitoneFrom27.5Hz_sma3nz_amean`,
`loudness_sma3_amean`, `alphaRatioV_sma3nz_amean`, `VoicedSegmentsPerSec`, ...) so that it can be
compared with openSMILE's by name; the units and estimators are this project's (see
affect_descriptors), so compare by rank, not by value.

Frames each functional uses (eGeMAPS' convention):
  * F0, jitter, shimmer, HNR, formants ("sma3nz"): voiced frames (formants: where one was found).
  * loudness, spectral flux, MFCC 1-4 ("sma3"): every active frame (speech, not leading/trailing
    digital silence: the frames above the activity gate of affect_descriptors).
  * the spectral balance "V" and "UV" variants: voiced frames, and active unvoiced frames.
Functionals:
  amean; stddevNorm (std / |mean|, eGeMAPS' coefficient of variation) for positive descriptors,
  stddev for signed ones (MFCCs, alpha ratio, Hammarberg index, slopes, HNR) whose mean can be 0;
  percentile20.0/50.0/80.0 and pctlrange0-2 (80th - 20th); mean and std of the rising and falling
  slopes (units per second; a rising slope is a run of consecutive increases inside one voiced
  segment, for loudness inside one active segment, its rise divided by its duration);
  loudnessPeaksPerSec (local maxima over +-20 ms above the utterance's mean loudness, per second of
  active span); VoicedSegmentsPerSec, Mean/StddevVoicedSegmentLengthSec and
  Mean/StddevUnvoicedSegmentLength (unvoiced gaps BETWEEN voiced segments: leading and trailing
  silence is a recording artefact, not speech); equivalentSoundLevel_dBp (10 log10 of the mean
  energy over active frames, dB re full scale; -120 without any). Rates are per second of the span
  from the first to the last voiced frame.
A functional without frames to summarise (no voiced frame, fewer than two segments, ...) is 0, so
the vector is finite for every input: silence gives 0 for every voiced-frame functional (and
-120 dB for equivalentSoundLevel_dBp). The jitter and shimmer here are frame-local estimates from
cycle peaks (affect_descriptors), much larger than Praat's; they are kept as GeMAPS lists them.
"""

from __future__ import annotations

import numpy as np

from emodna_jax.audio import affect_descriptors as ad

_FRAME_SEC = ad.HOP / ad.SAMPLE_RATE
_PROSODY = ("amean", "stddevNorm", "percentile20.0", "percentile50.0", "percentile80.0",
            "pctlrange0-2", "meanRisingSlope", "stddevRisingSlope", "meanFallingSlope",
            "stddevFallingSlope")
_SPECTRAL_V = ("alphaRatio", "hammarbergIndex", "slope0-500", "slope500-1500", "spectralFlux",
               "mfcc1", "mfcc2", "mfcc3", "mfcc4")
_SIGNED = {"alphaRatio", "hammarbergIndex", "slope0-500", "slope500-1500", "mfcc1", "mfcc2",
           "mfcc3", "mfcc4", "HNRdBACF"}
_VOICED_NZ = ("jitterLocal", "shimmerLocaldB", "HNRdBACF", "F1frequency", "F1bandwidth",
              "F2frequency", "F2bandwidth", "F3frequency", "F3bandwidth")
_TEMPORAL = ("loudnessPeaksPerSec", "VoicedSegmentsPerSec", "MeanVoicedSegmentLengthSec",
             "StddevVoicedSegmentLengthSec", "MeanUnvoicedSegmentLength",
             "StddevUnvoicedSegmentLength", "equivalentSoundLevel_dBp")


def _spread_name(descriptor: str) -> str:
    return "stddev" if descriptor in _SIGNED else "stddevNorm"


def _names() -> tuple[str, ...]:
    names = [f"F0semitoneFrom27.5Hz_sma3nz_{f}" for f in _PROSODY]
    names += [f"loudness_sma3_{f}" for f in _PROSODY]
    for d in ("spectralFlux", "mfcc1", "mfcc2", "mfcc3", "mfcc4"):
        names += [f"{d}_sma3_amean", f"{d}_sma3_{_spread_name(d)}"]
    for d in _VOICED_NZ:
        names += [f"{d}_sma3nz_amean", f"{d}_sma3nz_{_spread_name(d)}"]
    for d in _SPECTRAL_V:  # eGeMAPS puts the V/UV tag after the descriptor's stem
        stem, rng = (d[:5], d[5:]) if d.startswith("slope") else (d, "")
        names += [f"{stem}V{rng}_sma3nz_amean", f"{stem}V{rng}_sma3nz_{_spread_name(d)}"]
    for d in ("alphaRatio", "hammarbergIndex", "slope0-500", "slope500-1500", "spectralFlux"):
        stem, rng = (d[:5], d[5:]) if d.startswith("slope") else (d, "")
        names.append(f"{stem}UV{rng}_sma3nz_amean")
    return tuple(names) + _TEMPORAL


NAMES: tuple[str, ...] = _names()


def _mean_std(x: np.ndarray, normalised: bool) -> tuple[float, float]:
    """Mean and std (or std / |mean|) of x; (0, 0) for an empty x, std 0 for one value."""
    if x.size == 0:
        return 0.0, 0.0
    m, s = float(np.mean(x)), float(np.std(x))
    if normalised:
        s = s / abs(m) if abs(m) > 1e-8 else 0.0
    return m, s


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def _slopes(x: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rising and falling slopes (units per second) of contour x [T] within runs of `valid`:
    each maximal run of consecutive increases (decreases) gives its total change over its
    duration."""
    rising, falling = [], []
    for s, e in zip(*_runs(valid)):
        d = np.diff(x[s:e])
        for sign, out in ((1, rising), (-1, falling)):
            for a, b in zip(*_runs(sign * d > 0)):
                out.append(np.sum(d[a:b]) / ((b - a) * _FRAME_SEC))
    return np.asarray(rising), np.asarray(falling)


def _prosody(x: np.ndarray, valid: np.ndarray) -> list[float]:
    """The 10 eGeMAPS functionals of a prosodic contour over its valid frames."""
    v = x[valid]
    mean, cv = _mean_std(v, normalised=True)
    p20, p50, p80 = np.percentile(v, [20, 50, 80]) if v.size else (0.0, 0.0, 0.0)
    rise, fall = _slopes(x, valid)
    return [mean, cv, p20, p50, p80, p80 - p20, *_mean_std(rise, False), *_mean_std(fall, False)]


def functionals_from_descriptors(frames: np.ndarray) -> np.ndarray:
    """Functionals [len(NAMES)] (float64) of descriptors [T, len(ad.NAMES)] from
    `frame_descriptors` (frames of the whole utterance)."""
    col = {n: frames[:, i].astype(np.float64) for i, n in enumerate(ad.NAMES)}
    voiced = col["voiced"] > 0.5
    active = col["active"] > 0.5
    unvoiced = active & ~voiced
    out: list[float] = []
    out += _prosody(col["F0semitoneFrom27.5Hz"], voiced)
    out += _prosody(col["loudness"], active)
    for d in ("spectralFlux", "mfcc1", "mfcc2", "mfcc3", "mfcc4"):
        out += _mean_std(col[d][active], d not in _SIGNED)
    for d in _VOICED_NZ:
        mask = voiced & (col[d] != 0) if d[0] == "F" else voiced
        out += _mean_std(col[d][mask], d not in _SIGNED)
    for d in _SPECTRAL_V:
        out += _mean_std(col[d][voiced], d not in _SIGNED)
    for d in ("alphaRatio", "hammarbergIndex", "slope0-500", "slope500-1500", "spectralFlux"):
        out.append(_mean_std(col[d][unvoiced], False)[0])

    # Temporal functionals over the span from the first to the last voiced frame.
    vs, ve = _runs(voiced)
    span = (ve[-1] - vs[0]) * _FRAME_SEC if vs.size else 0.0
    loud = col["loudness"]
    peaks = 0
    if active.any():
        padded = np.pad(loud, 2, constant_values=-np.inf)
        window = np.stack([padded[k:k + loud.size] for k in range(5)])
        is_peak = (loud >= window.max(0)) & (loud > loud[active].mean()) & active
        peaks = int(is_peak.sum())
    voiced_len = (ve - vs) * _FRAME_SEC
    gaps = (vs[1:] - ve[:-1]) * _FRAME_SEC
    rate = lambda n: n / span if span > 0 else 0.0  # noqa: E731
    out += [rate(peaks), rate(vs.size), *_mean_std(voiced_len, False), *_mean_std(gaps, False)]
    energy = 10 ** (col["level_dB"][active] / 10)
    out.append(10 * np.log10(np.mean(energy)) if energy.size else -120.0)
    result = np.asarray(out, dtype=np.float64)
    if result.shape != (len(NAMES),):
        raise RuntimeError(f"functionals: {result.shape[0]} values for {len(NAMES)} names.")
    return result


def utterance_functionals(wave: np.ndarray, sample_rate: int) -> tuple[np.ndarray, tuple[str, ...]]:
    """Affect functionals of one whole utterance.

    Args:
      wave: [n] mono samples at `sample_rate` Hz, the whole utterance (not padded or cropped).
      sample_rate: Hz (resampled to 16 kHz inside).

    Returns:
      (float32 [len(NAMES)], NAMES); finite for every input, 0 for a functional without frames.
    """
    frames, _ = ad.frame_descriptors(wave, sample_rate)
    values = functionals_from_descriptors(frames)
    return np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32), NAMES
