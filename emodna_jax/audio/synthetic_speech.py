"""Speech-like synthetic emotional corpora, by source-filter synthesis (pure numpy).

The embedded default data of the project: three small "corpora" a, b and c whose factors are known by
construction, so that design choices can be made without touching a real target's labels (docs/method.md §10).

* EMOTION lives in prosody only, with the same effect table in every corpus: pitch level and range,
  speaking rate and pausing, loudness, and voice quality (breathiness, jitter, shimmer, spectral tilt).
  Every effect is drawn per utterance with a spread and scaled by a per-speaker expressivity, so the
  classes overlap (fear and happy share a high pitch, sad and neutral a low energy, ...).
* The CORPUS lives in everything else: its speakers (base pitch, vocal-tract length), its
  "language" (vowel formants, consonant bands, syllable structure, lexical tones in c), its acting
  intensity and its recording channel (EQ, reverberation, noise, hum, gain).

Synthesis: a glottal pulse train (phase accumulation, with jitter and shimmer on each pulse) plus
aspiration noise in vowels and frication noise in consonants is filtered frame by frame in the STFT
domain by a time-varying spectral envelope (cascade formant resonances times a glottal/radiation tilt
for vowels, a band resonance for consonants, interpolated between phones for coarticulation), then
overlap-added. No scipy: every filter is a multiplication of spectra, so one utterance of 3 s takes about
20 ms (measured on the 2-core CPU).

Determinism: each utterance has its own `numpy.random.SeedSequence([seed, corpus, index])`, so the
audio of one utterance does not depend on which others are generated, or in which order.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

CLASSES = ("angry", "fear", "happy", "neutral", "sad")
CORPUS_NAMES = ("a", "b", "c")
SPEAKERS_PER_CORPUS = 4  # two female, two male
UTTERANCES_PER_SPEAKER_AND_CLASS = 10  # 4 speakers x 5 classes x 10 = 200 utterances per corpus

_FFT = 1024  # synthesis STFT size (46 ms at 22,050 Hz)
_HOP = 256


@dataclasses.dataclass(frozen=True)
class Prosody:
    """Emotion effect, relative to the speaker's neutral voice.

    f0_st: pitch level shift (semitones); range_st: pitch accent size (semitones); rate: syllables/s;
    energy_db: loudness (dB); breath: aspiration noise / pulse amplitude ratio; jitter: pulse timing
    perturbation (fraction of a period); shimmer: pulse amplitude perturbation (fraction);
    tilt_db: extra spectral slope (dB/octave, > 0 = tense/bright); pause: pause probability after a syllable.
    """

    f0_st: float
    range_st: float
    rate: float
    energy_db: float
    breath: float
    jitter: float
    shimmer: float
    tilt_db: float
    pause: float


# Means follow the usual acoustic correlates of acted emotions (e.g. Banse & Scherer 1996). These are
# the SAME in every corpus; only the acting intensity (CorpusSpec.intensity) scales the deviations.
EMOTION_PROSODY = {
    "neutral": Prosody(0.0, 2.5, 4.6, 0.0, 0.08, 0.010, 0.04, 0.0, 0.20),
    "angry": Prosody(3.0, 4.5, 5.2, 9.0, 0.04, 0.016, 0.06, 5.0, 0.10),
    "happy": Prosody(4.5, 6.5, 4.9, 5.0, 0.08, 0.012, 0.05, 2.0, 0.15),
    "fear": Prosody(6.0, 2.0, 5.8, 1.0, 0.35, 0.035, 0.10, -1.5, 0.22),
    "sad": Prosody(-2.0, 1.2, 3.6, -7.0, 0.30, 0.014, 0.06, -5.0, 0.32),
}
# Per-utterance standard deviation of every field: wide enough that classes overlap.
PROSODY_SPREAD = Prosody(1.5, 1.2, 0.5, 3.0, 0.06, 0.007, 0.03, 1.5, 0.08)


@dataclasses.dataclass(frozen=True)
class Speaker:
    """One talker: name, gender ("female"/"male"), base pitch (Hz), vocal-tract formant scale,
    habitual breathiness, loudness offset (dB) and expressivity (multiplies emotion effects)."""

    name: str
    gender: str
    f0_hz: float
    formant_scale: float
    breath: float
    loudness_db: float
    expressivity: float


@dataclasses.dataclass(frozen=True)
class Channel:
    """Recording chain: EQ curve as (frequency Hz, gain dB) points on a log axis, reverberation time
    (s) and wet/dry ratio, noise SNR (dB) and colour (spectral slope exponent: 0 white, 1 pink),
    mains hum (Hz, dB below speech; 0 = none) and overall gain (dB)."""

    eq: tuple[tuple[float, float], ...]
    rt60_s: float
    wet: float
    snr_db: float
    noise_slope: float
    hum_hz: float
    hum_db: float
    gain_db: float


@dataclasses.dataclass(frozen=True)
class CorpusSpec:
    """A synthetic corpus: its language (vowel formant triples in Hz, consonant noise bands as
    (centre Hz, bandwidth Hz), onset/coda consonant probabilities, lexical tone size in semitones),
    its speakers' pitch population (female, male base f0 in Hz), acting intensity and channel."""

    name: str
    vowels: tuple[tuple[float, float, float], ...]
    consonants: tuple[tuple[float, float], ...]
    onset_prob: float
    coda_prob: float
    tone_st: float
    f0_female: float
    f0_male: float
    intensity: float
    channel: Channel


CORPORA = {
    # "a": a five-vowel language, studio recording (dry, flat, quiet).
    "a": CorpusSpec(
        name="a",
        vowels=((730, 1090, 2440), (530, 1840, 2480), (270, 2290, 3010), (570, 840, 2410),
                (300, 870, 2240)),
        consonants=((4500, 2500), (6500, 3000), (2500, 1200), (1500, 800)),
        onset_prob=0.8, coda_prob=0.2, tone_st=0.0, f0_female=215.0, f0_male=118.0, intensity=1.0,
        channel=Channel(eq=((50, -3), (200, 0), (6000, 0), (10000, -4)), rt60_s=0.08, wet=0.1,
                        snr_db=40.0, noise_slope=0.0, hum_hz=0.0, hum_db=0.0, gain_db=0.0)),
    # "b": front rounded vowels and consonant clusters, lower voices, telephone-band channel.
    "b": CorpusSpec(
        name="b",
        vowels=((680, 1200, 2600), (400, 2000, 2550), (250, 1750, 2150), (370, 1500, 2200),
                (500, 1450, 2450), (350, 700, 2300), (600, 1000, 2500)),
        consonants=((3500, 1500), (7500, 2500), (1200, 600), (5000, 2000), (2800, 900)),
        onset_prob=0.9, coda_prob=0.6, tone_st=0.0, f0_female=195.0, f0_male=102.0, intensity=0.85,
        channel=Channel(eq=((100, -30), (300, 0), (3400, 0), (4500, -30)), rt60_s=0.25, wet=0.25,
                        snr_db=24.0, noise_slope=0.0, hum_hz=0.0, hum_db=0.0, gain_db=-4.0)),
    # "c": CV syllables with lexical tones, higher voices, reverberant room, muffled and humming.
    "c": CorpusSpec(
        name="c",
        vowels=((800, 1300, 2700), (300, 2300, 3100), (320, 800, 2500), (460, 1100, 2450),
                (520, 1900, 2600)),
        consonants=((5500, 2000), (3000, 1000), (2000, 1500)),
        onset_prob=0.95, coda_prob=0.1, tone_st=3.0, f0_female=235.0, f0_male=132.0, intensity=1.1,
        channel=Channel(eq=((60, -6), (250, 3), (1500, 0), (4500, -8), (9000, -30)), rt60_s=0.55,
                        wet=0.35, snr_db=22.0, noise_slope=1.0, hum_hz=50.0, hum_db=-30.0,
                        gain_db=3.0)),
}


@dataclasses.dataclass(frozen=True)
class Utterance:
    """Metadata of one synthetic utterance; `seed` fully determines its audio."""

    corpus: str
    index: int
    speaker: Speaker
    emotion: str
    file: str
    seed: tuple[int, ...]


def _corpus_index(corpus: str) -> int:
    if corpus not in CORPORA:
        raise ValueError(f"unknown synthetic corpus {corpus!r}; expected one of {CORPUS_NAMES}")
    return CORPUS_NAMES.index(corpus)


def make_speakers(corpus: str, seed: int = 0) -> tuple[Speaker, ...]:
    """The corpus' speakers, drawn from its pitch population with `seed` (female first)."""
    spec = CORPORA[corpus]
    rng = np.random.default_rng(np.random.SeedSequence([seed, _corpus_index(corpus), 10**6]))
    speakers = []
    for i in range(SPEAKERS_PER_CORPUS):
        female = i < SPEAKERS_PER_CORPUS // 2
        base = spec.f0_female if female else spec.f0_male
        speakers.append(Speaker(
            name=f"{corpus}{'f' if female else 'm'}{i % (SPEAKERS_PER_CORPUS // 2) + 1}",
            gender="female" if female else "male",
            f0_hz=float(base * 2 ** (rng.normal(0, 1.5) / 12)),
            formant_scale=float((1.14 if female else 1.0) * rng.uniform(0.95, 1.05)),
            breath=float(rng.uniform(0.0, 0.12)),
            loudness_db=float(rng.normal(0, 2.0)),
            expressivity=float(rng.uniform(0.7, 1.3))))
    return tuple(speakers)


def corpus_utterances(corpus: str, seed: int = 0,
                      per_speaker_and_class: int = UTTERANCES_PER_SPEAKER_AND_CLASS) -> list[Utterance]:
    """Every utterance of a corpus (speakers x classes x repetitions), in a fixed order."""
    cidx = _corpus_index(corpus)
    out = []
    for speaker in make_speakers(corpus, seed):
        for emotion in CLASSES:
            for k in range(per_speaker_and_class):
                index = len(out)
                out.append(Utterance(corpus, index, speaker, emotion,
                                     file=f"{speaker.name}/{emotion}_{k:02d}.wav",
                                     seed=(seed, cidx, index)))
    return out


def _draw_prosody(rng: np.random.Generator, emotion: str, scale: float) -> Prosody:
    """Emotion means scaled around neutral by `scale`, plus per-utterance spread."""
    mean, neutral = EMOTION_PROSODY[emotion], EMOTION_PROSODY["neutral"]
    values = {}
    for field in dataclasses.fields(Prosody):
        m, n = getattr(mean, field.name), getattr(neutral, field.name)
        values[field.name] = n + scale * (m - n) + rng.normal(0, getattr(PROSODY_SPREAD, field.name))
    values["rate"] = float(np.clip(values["rate"], 2.5, 7.5))
    for name in ("breath", "jitter", "shimmer"):
        values[name] = float(max(values[name], 0.0))
    values["pause"] = float(np.clip(values["pause"], 0.0, 0.6))
    return Prosody(**values)


def _resonance(freqs: np.ndarray, centre: np.ndarray, bandwidth: np.ndarray) -> np.ndarray:
    """|H(f)| of a 2-pole resonator, unit gain at DC. freqs [B], centre/bandwidth [N, 1] -> [N, B]."""
    half = bandwidth / 2
    num = centre**2 + half**2
    return num / np.sqrt(((freqs - centre) ** 2 + half**2) * ((freqs + centre) ** 2 + half**2))


def _phone_plan(rng: np.random.Generator, spec: CorpusSpec, pros: Prosody, sr: int) -> list[tuple]:
    """Sequence of (kind, samples, params, accent) with kind in sil|cons|vowel."""
    plan = [("sil", int(rng.uniform(0.10, 0.25) * sr), None, 0.0)]
    n_syllables = int(rng.integers(8, 14))  # a "sentence": its length is fixed by the text
    for s in range(n_syllables):
        dur = rng.lognormal(0, 0.25) / pros.rate
        accent = float(rng.random() < 0.35)
        tone = rng.choice([-1.0, 0.0, 1.0, 0.5]) * spec.tone_st if spec.tone_st else 0.0
        if rng.random() < spec.onset_prob:
            plan.append(("cons", int(0.3 * dur * sr), spec.consonants[rng.integers(len(spec.consonants))], 0.0))
        vowel = spec.vowels[rng.integers(len(spec.vowels))]
        plan.append(("vowel", int(0.6 * dur * sr), (vowel, tone), accent))
        if rng.random() < spec.coda_prob:
            plan.append(("cons", int(0.2 * dur * sr), spec.consonants[rng.integers(len(spec.consonants))], 0.0))
        if s < n_syllables - 1 and rng.random() < pros.pause:
            plan.append(("sil", int(rng.uniform(0.06, 0.2) * sr), None, 0.0))
    plan.append(("sil", int(rng.uniform(0.10, 0.30) * sr), None, 0.0))
    return plan


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Moving average along axis 0 (edge-padded), width in samples/frames; O(N) via cumsum."""
    if width <= 1:
        return np.asarray(x, dtype=float)
    pad = [(width // 2, width - 1 - width // 2)] + [(0, 0)] * (np.ndim(x) - 1)
    c = np.cumsum(np.pad(np.asarray(x, dtype=float), pad, mode="edge"), axis=0)
    c = np.concatenate([np.zeros((1,) + c.shape[1:]), c], axis=0)
    return (c[width:] - c[:-width]) / width


def _excitation(rng, plan, speaker: Speaker, pros: Prosody, f0_center: float, sr: int):
    """Per-sample excitation [N] and per-sample vowel weight [N] (1 in vowels, 0 elsewhere)."""
    n = sum(p[1] for p in plan)
    t = np.arange(n) / sr
    semitones = -1.5 * (t - t[-1] / 2) / max(t[-1], 1e-3) * 2  # declination, about 3 st overall
    voiced = np.zeros(n)
    noise_gain = np.zeros(n)
    pos = 0
    for kind, length, params, accent in plan:
        seg = slice(pos, pos + length)
        if kind == "vowel":
            ramp = np.sin(np.pi * (np.arange(length) + 0.5) / length) ** 0.5  # syllable energy arc
            voiced[seg] = ramp * (1.0 + 0.4 * accent)
            tone = params[1]
            semitones[seg] += accent * pros.range_st * ramp + tone * np.linspace(-0.5, 0.5, length)
        elif kind == "cons":
            noise_gain[seg] = 0.6
        pos += length
    semitones += _smooth(rng.normal(0, 0.8, n // 400 + 1).repeat(400)[:n], 800)  # slow wander
    f0 = f0_center * 2 ** (_smooth(semitones, 441) / 12)
    phase = np.cumsum(f0 / sr)
    pulses = np.flatnonzero(np.diff(np.floor(phase)) > 0)
    period = sr / f0[pulses]
    pulses = np.clip(np.round(pulses + pros.jitter * period * rng.normal(0, 1, len(pulses))), 0, n - 1)
    pulses = pulses.astype(int)
    amps = voiced[pulses] * (1 + pros.shimmer * rng.normal(0, 1, len(pulses)))
    excitation = np.zeros(n)
    np.add.at(excitation, pulses, amps)
    # Noise power matched to the pulse train (f0/sr impulses of unit energy per sample).
    sigma = np.sqrt(f0_center / sr)
    breath = pros.breath + speaker.breath
    excitation += sigma * rng.normal(0, 1, n) * (breath * voiced + noise_gain)
    return excitation, _smooth(voiced > 0, 64)


def _envelopes(plan, spec, speaker, sr, n_frames, vowel_weight, frame_centres) -> np.ndarray:
    """Spectral envelope per STFT frame [n_frames, _FFT//2+1]."""
    freqs = np.fft.rfftfreq(_FFT, 1 / sr).astype(np.float32)  # float32: half the time, ample precision
    last_v = np.array(spec.vowels[0] + (3500.0, 4500.0)) * speaker.formant_scale
    last_c = np.array(spec.consonants[0], dtype=float) * speaker.formant_scale
    per_sample_v = np.empty((sum(p[1] for p in plan), 5))
    per_sample_c = np.empty((per_sample_v.shape[0], 2))
    pos = 0
    for kind, length, params, _ in plan:
        if kind == "vowel":
            last_v = np.array(tuple(params[0]) + (3500.0, 4500.0)) * speaker.formant_scale
        elif kind == "cons":
            last_c = np.array(params, dtype=float) * speaker.formant_scale
        per_sample_v[pos:pos + length] = last_v
        per_sample_c[pos:pos + length] = last_c
        pos += length
    formants = _smooth(per_sample_v[frame_centres], 5).astype(np.float32)  # coarticulation, ~50 ms
    band = per_sample_c[frame_centres].astype(np.float32)
    bw = np.array([80.0, 100.0, 150.0, 200.0, 250.0], dtype=np.float32)
    vowel_env = np.ones((n_frames, len(freqs)), dtype=np.float32)
    for k in range(5):
        vowel_env *= _resonance(freqs, formants[:, k:k + 1], np.full((n_frames, 1), bw[k]))
    cons_env = _resonance(freqs, band[:, :1], band[:, 1:])
    w = vowel_weight[frame_centres][:, None].astype(np.float32)
    return w * vowel_env + (1 - w) * cons_env


def _apply_channel(rng, x: np.ndarray, channel: Channel, sr: int) -> np.ndarray:
    """Reverberation, EQ, noise and hum of the corpus' recording chain, in one FFT pass.

    The FFT size is a power of two above N + reverb tail: arbitrary N can be prime and slow.
    """
    n = len(x)
    speech_rms = np.sqrt(np.mean(x**2)) + 1e-12
    m = int(channel.rt60_s * sr)
    size = 1 << int(np.ceil(np.log2(n + m + 1)))
    freqs = np.maximum(np.fft.rfftfreq(size, 1 / sr), 1.0)
    points = np.array(channel.eq, dtype=float)
    transfer = 10 ** (np.interp(np.log(freqs), np.log(points[:, 0]), points[:, 1]) / 20)
    if m > 0:
        tail = rng.normal(0, 1, m) * np.exp(-6.9 * np.arange(m) / m)
        ir = np.concatenate([[1.0], channel.wet * tail / np.sqrt(np.sum(tail**2))])
        transfer = transfer * np.fft.rfft(ir, size)
    # Noise drawn directly as a spectrum (one FFT fewer); its mean square follows from Parseval.
    shape = freqs ** (-channel.noise_slope / 2)
    noise_spec = (rng.normal(0, 1, len(freqs)) + 1j * rng.normal(0, 1, len(freqs))) * shape
    weights = np.full(len(freqs), 2.0)
    weights[[0, -1]] = 1.0
    noise_ms = np.sum(weights * np.abs(noise_spec) ** 2) / size**2
    noise_spec *= speech_rms * 10 ** (-channel.snr_db / 20) / np.sqrt(noise_ms)
    x = np.fft.irfft(np.fft.rfft(x, size) * transfer + noise_spec, size)[:n]
    noise = np.zeros(n)
    if channel.hum_hz:
        noise += speech_rms * 10 ** (channel.hum_db / 20) * np.sqrt(2) * np.sin(
            2 * np.pi * channel.hum_hz * np.arange(n) / sr + rng.uniform(0, 2 * np.pi))
    return (x + noise) * 10 ** (channel.gain_db / 20)


def _overlap_add(frames: np.ndarray) -> np.ndarray:
    """Sum frames [M, _FFT] placed every _HOP samples -> [(M - 1) * _HOP + _FFT] (no np.add.at)."""
    m, k = frames.shape[0], _FFT // _HOP
    blocks = frames.reshape(m, k, _HOP)
    out = np.zeros((m + k - 1, _HOP))
    for j in range(k):  # block j of frame i lands on output block i + j
        out[j:j + m] += blocks[:, j]
    return out.reshape(-1)


def synthesize(utt: Utterance, sample_rate: int = 22050) -> np.ndarray:
    """Audio of one utterance: float32 [N] in [-1, 1] at `sample_rate` Hz (N about 2-4 s)."""
    spec = CORPORA[utt.corpus]
    speaker = utt.speaker
    rng = np.random.default_rng(np.random.SeedSequence(list(utt.seed)))
    pros = _draw_prosody(rng, utt.emotion, spec.intensity * speaker.expressivity)
    f0_center = speaker.f0_hz * 2 ** (pros.f0_st / 12)
    plan = _phone_plan(rng, spec, pros, sample_rate)
    excitation, vowel_weight = _excitation(rng, plan, speaker, pros, f0_center, sample_rate)
    n = len(excitation)
    # STFT-domain time-varying filter: Hann analysis and synthesis windows, 75 % overlap.
    padded = np.pad(excitation, (_FFT // 2, _FFT // 2 + _HOP))
    n_frames = (len(padded) - _FFT) // _HOP + 1
    idx = np.arange(_FFT)[None, :] + _HOP * np.arange(n_frames)[:, None]
    window = np.hanning(_FFT).astype(np.float32)
    centres = np.clip(_HOP * np.arange(n_frames), 0, n - 1)
    env = _envelopes(plan, spec, speaker, sample_rate, n_frames, vowel_weight, centres)
    freqs = np.maximum(np.fft.rfftfreq(_FFT, 1 / sample_rate), 50.0)
    # Glottal source (-12 dB/oct) + lip radiation (+6 dB/oct) = -6 dB/oct above 100 Hz, plus voice tension.
    tilt = ((freqs / 100.0) ** ((-6.0 + pros.tilt_db) / 6.02) * (freqs > 60)).astype(np.float32)
    frames = np.fft.irfft(np.fft.rfft(padded[idx].astype(np.float32) * window, axis=1) * (env * tilt),
                          _FFT, axis=1) * window
    speech = (_overlap_add(frames) / np.maximum(_overlap_add(np.broadcast_to(window**2, frames.shape)),
                                                 1e-3))[_FFT // 2:_FFT // 2 + n]
    # Loudness: RMS over the voiced part, relative to -26 dBFS.
    active = vowel_weight > 0.5
    rms = np.sqrt(np.mean(speech[active] ** 2)) if active.any() else 1.0
    level_db = -26.0 + pros.energy_db + speaker.loudness_db
    speech *= 10 ** (level_db / 20) / (rms + 1e-12)
    audio = _apply_channel(rng, speech, spec.channel, sample_rate)
    return (0.95 * np.tanh(audio / 0.95)).astype(np.float32)  # soft clip, as a hot recording would


def class_counts(utts: Sequence[Utterance]) -> dict[str, int]:
    """Number of utterances per emotion (for READMEs and tests)."""
    return {c: sum(u.emotion == c for u in utts) for c in CLASSES}
