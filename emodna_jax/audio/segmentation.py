"""Energy-based voice activity: where a long recording speaks, as segments the model can label.

A recording longer than the utterances a model was trained on (minutes of a call, a shift on a
factory floor) is labelled segment by segment (`eval.py --predict`; docs/method.md §3 for the front
ends' utterance lengths). Pure numpy, no model and no file access:

1. frame energy: RMS of 25 ms frames every 10 ms, in dB re full scale (dBFS);
2. speech frames: energy above `threshold_db = max(floor_db, min(noise_db + margin_db,
   peak_db - margin_db))`, where noise_db is the 10th percentile of the frame energies (the
   recording's pauses) and peak_db the loudest frame; floor_db (-55 dBFS) keeps digital silence and
   faint hiss out whatever the percentiles say, and `peak_db - margin_db` keeps a recording without
   pauses (all speech) from having no speech frame at all;
3. runs of speech frames separated by less than `min_gap_s` (0.3 s: pauses between words) are
   joined; runs shorter than `min_speech_s` (0.5 s) are dropped (clicks, coughs, door slams);
4. a run longer than `max_segment_s` is cut into the fewest equal pieces no longer than it. The
   caller passes the front end's utterance length (4 s for the default `affect`), so no segment is
   longer than what the model saw in training.

Energy is all it looks at: steady noise louder than the floor and the recording's own pauses by
`margin_db` counts as speech, and speech quieter than the floor as silence.
"""

from __future__ import annotations

import numpy as np

FRAME_S = 0.025  # analysis frame
HOP_S = 0.010  # frame hop: the resolution of segment boundaries
FLOOR_DB = -55.0  # frames quieter than this (dBFS RMS) are never speech
MARGIN_DB = 10.0  # speech is this much above the pauses (or within this of the loudest frame)
NOISE_PERCENTILE = 10.0  # the frame energy taken as the recording's pauses
MIN_GAP_S = 0.3  # shorter silences inside speech are bridged
MIN_SPEECH_S = 0.5  # shorter speech runs are dropped


def frame_energy_db(wave: np.ndarray, sample_rate: int, *, frame_s: float = FRAME_S,
                    hop_s: float = HOP_S) -> np.ndarray:
    """RMS energy of frames of `frame_s` every `hop_s`, in dB re full scale.

    Args:
      wave: [n] samples in [-1, 1].
      sample_rate: Hz.

    Returns:
      float64 [m] with m = 1 + max(0, n - frame) // hop (one frame for a recording shorter than a
      frame); frame i covers samples [i * hop, i * hop + frame). Silence is -200 dB, not -inf.
    """
    wave = np.asarray(wave, dtype=np.float64)
    if wave.ndim != 1:
        raise ValueError(f"frame_energy_db expects a 1-D signal, got shape {wave.shape}")
    frame, hop = max(1, round(frame_s * sample_rate)), max(1, round(hop_s * sample_rate))
    m = 1 + max(0, len(wave) - frame) // hop
    # Frame sums of squares from one cumulative sum: O(n) whatever the frame length.
    c = np.concatenate([[0.0], np.cumsum(np.pad(wave, (0, max(0, frame - len(wave)))) ** 2)])
    starts = hop * np.arange(m)
    mean_square = (c[starts + frame] - c[starts]) / frame
    return 10.0 * np.log10(np.maximum(mean_square, 1e-20))


def speech_mask(energy_db: np.ndarray, *, floor_db: float = FLOOR_DB, margin_db: float = MARGIN_DB,
                noise_percentile: float = NOISE_PERCENTILE) -> np.ndarray:
    """Frames louder than max(floor_db, min(noise + margin_db, peak - margin_db)): bool [m]."""
    energy_db = np.asarray(energy_db, dtype=np.float64)
    noise, peak = np.percentile(energy_db, noise_percentile), energy_db.max()
    return energy_db > max(floor_db, min(noise + margin_db, peak - margin_db))


def mask_runs(mask: np.ndarray) -> np.ndarray:
    """[k, 2] int: the (first, one past last) index of each run of True in a bool [m] mask."""
    edges = np.diff(np.concatenate([[0], np.asarray(mask, dtype=np.int8), [0]]))
    return np.stack([np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)], axis=1)


def join_and_filter(runs: np.ndarray, *, min_gap: float, min_length: float) -> np.ndarray:
    """Joins runs [k, 2] separated by less than `min_gap`, then drops those shorter than
    `min_length` (any one unit: frames or seconds). Returns [k', 2], sorted."""
    joined: list[list[float]] = []
    for start, end in np.asarray(runs).tolist():
        if joined and start - joined[-1][1] < min_gap:
            joined[-1][1] = end
        else:
            joined.append([start, end])
    kept = [r for r in joined if r[1] - r[0] >= min_length]
    return np.array(kept, dtype=np.asarray(runs).dtype).reshape(-1, 2)


def split_long(runs: np.ndarray, max_length: float) -> np.ndarray:
    """Cuts each run [start, end) longer than `max_length` into ceil(length / max_length) equal
    pieces. Returns float [k', 2]."""
    out = []
    for start, end in np.asarray(runs, dtype=np.float64).tolist():
        pieces = max(1, int(np.ceil((end - start) / max_length - 1e-9)))
        edges = np.linspace(start, end, pieces + 1)
        out.extend(zip(edges[:-1], edges[1:]))
    return np.array(out, dtype=np.float64).reshape(-1, 2)


def speech_segments(wave: np.ndarray, sample_rate: int, *, max_segment_s: float,
                    min_speech_s: float = MIN_SPEECH_S, min_gap_s: float = MIN_GAP_S,
                    floor_db: float = FLOOR_DB, margin_db: float = MARGIN_DB) -> np.ndarray:
    """Where `wave` speaks, as segments of at most `max_segment_s` seconds (module docstring).

    Args:
      wave: [n] mono samples in [-1, 1].
      sample_rate: Hz.
      max_segment_s: the longest segment returned (the front end's utterance length).
      min_speech_s, min_gap_s, floor_db, margin_db: as in the module docstring.

    Returns:
      float64 [k, 2]: (start, end) in seconds, sorted, within [0, n / sample_rate]; k = 0 for a
      recording without speech.

    Example:
      >>> sr = 16000
      >>> tone = 0.1 * np.sin(2 * np.pi * 200 * np.arange(sr) / sr)  # 1 s at -23 dBFS
      >>> wave = np.concatenate([np.zeros(sr), tone, np.zeros(sr)])
      >>> speech_segments(wave, sr, max_segment_s=4.0).round(1).tolist()
      [[1.0, 2.0]]
    """
    if max_segment_s <= 0 or min_speech_s < 0 or min_gap_s < 0:
        raise ValueError(f"max_segment_s={max_segment_s} must be > 0, min_speech_s={min_speech_s} "
                         f"and min_gap_s={min_gap_s} >= 0")
    energy = frame_energy_db(wave, sample_rate)
    runs = mask_runs(speech_mask(energy, floor_db=floor_db, margin_db=margin_db))
    # Frame i is centred at i * hop + frame / 2 and stands for the hop around its centre: a run of
    # frames [a, b) spans [a * hop, b * hop) shifted by (frame - hop) / 2 (boundaries within a hop).
    seconds = runs * HOP_S + (FRAME_S - HOP_S) / 2
    seconds = np.clip(seconds, 0.0, len(wave) / sample_rate)
    runs = join_and_filter(seconds, min_gap=min_gap_s, min_length=min_speech_s)
    return split_long(runs, max_segment_s)
