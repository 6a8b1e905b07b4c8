"""Tests of the affect front end (affect_descriptors, functionals, the affect feature configs):
each descriptor against a synthetic signal with a known answer, shapes, and finiteness."""

import numpy as np
import pytest
import soundfile as sf

from emodna_jax.audio import affect_descriptors as ad
from emodna_jax.audio import features
from emodna_jax.audio import functionals as fu

SR = 16000
COL = {n: i for i, n in enumerate(ad.NAMES)}


def harmonic(f0: float, seconds: float = 1.0, amplitude: float = 0.1, tilt: float = 1.0,
             sr: int = SR) -> np.ndarray:
    """A harmonic signal: harmonics k of f0 below 7 kHz with amplitude amplitude * k**-tilt
    (tilt < 0: energy rises with frequency)."""
    t = np.arange(int(seconds * sr)) / sr
    ks = np.arange(1, int(7000 // f0) + 1)
    return amplitude * np.sum(ks[:, None] ** -tilt * np.sin(2 * np.pi * f0 * ks[:, None] * t), 0)


def voiced_mean(frames: np.ndarray, name: str) -> float:
    v = frames[:, COL["voiced"]] > 0.5
    return float(frames[v, COL[name]].mean())


def test_tone_f0_in_semitones():
    frames, names = ad.frame_descriptors(harmonic(220.0), SR)
    assert names == ad.NAMES
    assert frames[:, COL["voiced"]].mean() > 0.9
    # 12 * log2(220 / 27.5) = 36.0 semitones.
    assert voiced_mean(frames, "F0semitoneFrom27.5Hz") == pytest.approx(36.0, abs=0.5)
    # The same tone recorded at 22,050 Hz is resampled to 16 kHz first.
    frames22, _ = ad.frame_descriptors(harmonic(220.0, sr=22050), 22050)
    assert voiced_mean(frames22, "F0semitoneFrom27.5Hz") == pytest.approx(36.0, abs=0.5)
    # A clean periodic signal has a high HNR.
    assert voiced_mean(frames, "HNRdBACF") > 15.0


def test_level_20_db_apart():
    quiet, _ = ad.frame_descriptors(harmonic(150.0, amplitude=0.01), SR)
    loud, _ = ad.frame_descriptors(harmonic(150.0, amplitude=0.1), SR)
    mid = slice(20, -20)  # away from the edges, where frames see the zero padding
    level_diff = loud[mid, COL["level_dB"]].mean() - quiet[mid, COL["level_dB"]].mean()
    assert level_diff == pytest.approx(20.0, abs=0.1)
    # Loudness = sum of band power ** 0.33: +20 dB multiplies it by 100 ** 0.33.
    ratio = loud[mid, COL["loudness"]].mean() / quiet[mid, COL["loudness"]].mean()
    assert ratio == pytest.approx(100 ** 0.33, rel=0.01)
    # Level-free descriptors do not move.
    for name in ("F0semitoneFrom27.5Hz", "alphaRatio", "hammarbergIndex", "slope500-1500"):
        assert voiced_mean(loud, name) == pytest.approx(voiced_mean(quiet, name), abs=0.05)


def test_spectral_balance_follows_the_tilt():
    bright, _ = ad.frame_descriptors(harmonic(200.0, tilt=-0.5), SR)
    dark, _ = ad.frame_descriptors(harmonic(200.0, tilt=2.0), SR)
    # More energy at 1-5 kHz than at 50 Hz-1 kHz: higher alpha ratio, lower Hammarberg index.
    assert voiced_mean(bright, "alphaRatio") > voiced_mean(dark, "alphaRatio") + 10
    assert voiced_mean(bright, "hammarbergIndex") < voiced_mean(dark, "hammarbergIndex") - 10
    assert voiced_mean(bright, "slope500-1500") > voiced_mean(dark, "slope500-1500")


def test_silence_click_and_short_inputs_are_finite_and_unvoiced():
    click = np.zeros(SR // 2)
    click[SR // 4] = 1.0
    noise = np.random.default_rng(0).normal(0, 0.1, SR // 2)
    for wave in (np.zeros(SR), np.zeros(0), np.zeros(5), click, noise, harmonic(200.0, 0.1)):
        frames, _ = ad.frame_descriptors(wave, SR)
        assert frames.shape == (ad.num_frames(wave.size), len(ad.NAMES))
        assert np.all(np.isfinite(frames))
        values, names = fu.utterance_functionals(wave, SR)
        assert values.shape == (len(fu.NAMES),) and values.dtype == np.float32
        assert np.all(np.isfinite(values))
    frames, _ = ad.frame_descriptors(np.zeros(SR), SR)
    assert frames[:, COL["voiced"]].sum() == 0 and frames[:, COL["active"]].sum() == 0
    frames, _ = ad.frame_descriptors(noise, SR)
    assert frames[:, COL["voiced"]].sum() == 0  # white noise is active but never voiced
    values, _ = fu.utterance_functionals(np.zeros(SR), SR)
    silent = dict(zip(fu.NAMES, values))
    assert silent["F0semitoneFrom27.5Hz_sma3nz_amean"] == 0.0
    assert silent["VoicedSegmentsPerSec"] == 0.0
    assert silent["equivalentSoundLevel_dBp"] == -120.0


def test_functional_names_and_values():
    assert len(fu.NAMES) == len(set(fu.NAMES)) and 60 <= len(fu.NAMES) <= 90
    for name in ("F0semitoneFrom27.5Hz_sma3nz_amean", "loudness_sma3_amean",
                 "alphaRatioV_sma3nz_amean", "hammarbergIndexV_sma3nz_amean", "mfcc1_sma3_amean",
                 "slopeV0-500_sma3nz_amean", "slopeUV500-1500_sma3nz_amean",
                 "VoicedSegmentsPerSec", "MeanVoicedSegmentLengthSec"):
        assert name in fu.NAMES
    # Two 0.3 s tones at 220 Hz separated by 0.2 s of silence, inside 0.2 s of silence.
    gap = np.zeros(int(0.2 * SR))
    wave = np.concatenate([gap, harmonic(220.0, 0.3), gap, harmonic(220.0, 0.3), gap])
    values = dict(zip(fu.NAMES, fu.utterance_functionals(wave, SR)[0]))
    assert values["F0semitoneFrom27.5Hz_sma3nz_amean"] == pytest.approx(36.0, abs=0.5)
    assert values["F0semitoneFrom27.5Hz_sma3nz_pctlrange0-2"] < 0.5
    assert values["MeanVoicedSegmentLengthSec"] == pytest.approx(0.3, abs=0.04)
    assert values["MeanUnvoicedSegmentLength"] == pytest.approx(0.2, abs=0.04)
    # 2 voiced segments over the 0.8 s from the first voiced frame to the last one.
    assert values["VoicedSegmentsPerSec"] == pytest.approx(2 / 0.8, rel=0.1)


def test_rising_and_falling_slopes_of_a_glide():
    t = np.arange(SR) / SR
    f = 150.0 * 2 ** (t * 12 / 12)  # +12 semitones per second
    wave = 0.1 * np.sin(2 * np.pi * np.cumsum(f) / SR)
    values = dict(zip(fu.NAMES, fu.utterance_functionals(wave, SR)[0]))
    assert values["F0semitoneFrom27.5Hz_sma3nz_meanRisingSlope"] == pytest.approx(12.0, rel=0.2)


def test_affect_configs_shapes(tmp_path):
    affect = features.get_feature_config("affect")
    frames_cfg = features.get_feature_config("affect_frames")
    assert affect.shape == (1, len(fu.NAMES))
    assert frames_cfg.shape == (401, len(ad.NAMES))
    assert features.get_feature_config("egemaps").shape == (1, 88)
    assert features.get_feature_config("compare").shape == (1, 6373)
    short, long = harmonic(200.0, 0.5), harmonic(200.0, 6.0)
    for seconds, wave in ((0.5, short), (6.0, long)):
        path = str(tmp_path / f"x{seconds}.wav")
        sf.write(path, wave, 22050 if seconds < 1 else SR)
        out = features.features_from_file(path, affect)
        assert out.shape == (1, len(fu.NAMES)) and np.all(np.isfinite(out))
        framed = features.features_from_file(path, frames_cfg)
        assert framed.shape == (401, len(ad.NAMES)) and np.all(np.isfinite(framed))
    # Short files are centre-padded with zero frames; long ones centre-cropped, all voiced.
    framed_short = features.compute_features(short, frames_cfg)
    assert framed_short[0].sum() == 0 and framed_short[200, ad.NAMES.index("voiced")] == 1
    framed_long = features.compute_features(long, frames_cfg)
    assert framed_long[:, ad.NAMES.index("voiced")].mean() > 0.95
    # The whole utterance counts, not a crop: the 6 s tone's functionals equal its own.
    np.testing.assert_allclose(features.compute_features(long, affect)[0],
                               fu.utterance_functionals(long, SR)[0])


def test_mfcc39_unchanged_by_the_new_kinds():
    cfg = features.get_feature_config("mfcc39")
    assert cfg.shape == (188, 39) and features.get_feature_config("logmel64").shape == (401, 64)
    with pytest.raises(ValueError, match="kind must be one of"):
        features.FeatureConfig(name="x", kind="nope")
    with pytest.raises(ValueError, match="16 kHz"):
        features.FeatureConfig(name="x", kind="affect", sample_rate=22050)


def test_opensmile_kinds_call_extract_functionals(monkeypatch):
    """The egemaps kind hands the whole wave to opensmile_features (faked here: the package is
    optional) and turns its NaNs into 0."""
    from emodna_jax.audio import opensmile_features
    calls = []

    def fake(wave, sample_rate, feature_set):
        calls.append((wave.size, sample_rate, feature_set))
        out = np.arange(88, dtype=np.float32)
        out[3] = np.nan
        return out

    monkeypatch.setattr(opensmile_features, "extract_functionals", fake)
    out = features.compute_features(np.zeros(12345, np.float32),
                                    features.get_feature_config("egemaps"))
    assert calls == [(12345, 16000, "egemaps")]
    assert out.shape == (1, 88) and out[0, 3] == 0 and out[0, 87] == 87


def test_linear_probe_helpers():
    from benchmarks import linear_probe
    # UAR: recall 1/2 for class 0, 1 for class 1, 0 for class 2 -> 50 %, whatever the counts.
    y = np.array([0, 0, 1, 2, 2, 2])
    assert linear_probe.uar(y, np.array([0, 1, 1, 0, 0, 1])) == pytest.approx(100 / 2)
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    np.testing.assert_allclose(linear_probe.pooled(x)[0], [4, 5, 6, 7] + [np.sqrt(32 / 3)] * 4,
                               rtol=1e-6)
    assert linear_probe.pooled(x[:, :1]).shape == (2, 4)
    kept = linear_probe.kept_columns("affect", len(fu.NAMES), "jitter|shimmer")
    assert len(kept) == len(fu.NAMES) - 4
    assert not any("jitter" in fu.NAMES[i] for i in kept)
