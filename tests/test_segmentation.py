"""segmentation.py: energy-based voice activity on signals whose speech is known by construction."""

import numpy as np
import pytest

from emodna_jax.audio import segmentation, synthetic_speech

SR = 16000


def tone(seconds, db=-20.0, hz=220.0):
    t = np.arange(int(seconds * SR)) / SR
    return (10 ** (db / 20) * np.sqrt(2) * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def silence(seconds):
    return np.zeros(int(seconds * SR), np.float32)


def test_frame_energy_of_a_sine_and_of_silence():
    energy = segmentation.frame_energy_db(np.concatenate([tone(1.0, db=-20.0), silence(1.0)]), SR)
    assert len(energy) == 1 + (2 * SR - 400) // 160
    np.testing.assert_allclose(energy[5:90], -20.0, atol=0.1)  # RMS of a full-scale-relative sine
    assert energy[-50:].max() == -200.0  # digital silence: -200 dB, not -inf
    assert segmentation.frame_energy_db(np.ones(10), SR).shape == (1,)  # shorter than a frame


def test_runs_join_filter_and_split():
    runs = segmentation.mask_runs(np.array([0, 1, 1, 0, 0, 1, 0, 1, 1, 1], bool))
    assert runs.tolist() == [[1, 3], [5, 6], [7, 10]]
    # gaps of 2 frames (3 -> 5) and 1 frame (6 -> 7): min_gap 2 joins neither... 3 joins all
    assert segmentation.join_and_filter(runs, min_gap=2, min_length=0).tolist() == [[1, 3], [5, 10]]
    assert segmentation.join_and_filter(runs, min_gap=3, min_length=0).tolist() == [[1, 10]]
    assert segmentation.join_and_filter(runs, min_gap=0, min_length=2).tolist() == [[1, 3], [7, 10]]
    pieces = segmentation.split_long(np.array([[0.0, 10.0], [11.0, 12.0]]), 4.0)
    np.testing.assert_allclose(pieces, [[0, 10 / 3], [10 / 3, 20 / 3], [20 / 3, 10], [11, 12]])
    assert segmentation.split_long(np.array([[0.0, 8.0]]), 4.0).tolist() == [[0, 4], [4, 8]]  # exact fit


def test_tones_between_silences_are_found_to_a_hop():
    wave = np.concatenate([silence(1.0), tone(2.0), silence(0.7), tone(1.5, db=-35), silence(2.0)])
    got = segmentation.speech_segments(wave, SR, max_segment_s=4.0)
    np.testing.assert_allclose(got, [[1.0, 3.0], [3.7, 5.2]], atol=0.015)  # within 15 ms: boundaries are frame centres (25 ms frames, 10 ms hop)


def test_short_bursts_short_gaps_and_long_speech():
    wave = np.concatenate([silence(1.0), tone(0.2), silence(1.0),  # a click: dropped (< 0.5 s)
                           tone(1.0), silence(0.2), tone(1.0),  # a 0.2 s pause: bridged
                           silence(1.0), tone(9.0), silence(0.5)])  # 9 s: three pieces of 3 s
    got = segmentation.speech_segments(wave, SR, max_segment_s=4.0)
    np.testing.assert_allclose(got, [[2.2, 4.4], [5.4, 8.4], [8.4, 11.4], [11.4, 14.4]], atol=0.015)


def test_silence_and_faint_hiss_have_no_speech_but_unpaused_speech_does():
    rng = np.random.default_rng(0)
    assert segmentation.speech_segments(silence(10.0), SR, max_segment_s=4.0).shape == (0, 2)
    hiss = (10 ** (-65 / 20) * rng.normal(size=10 * SR)).astype(np.float32)  # below the -55 dBFS floor
    assert segmentation.speech_segments(hiss, SR, max_segment_s=4.0).shape == (0, 2)
    # A recording without pauses: the noise percentile is the speech itself, the peak rule still finds it.
    got = segmentation.speech_segments(tone(6.0), SR, max_segment_s=4.0)
    np.testing.assert_allclose(got, [[0, 3], [3, 6]], atol=0.015)


def test_synthetic_utterances_placed_in_a_long_recording():
    """Each utterance of the synthetic corpus (leading and trailing pauses of 0.1-0.3 s, channel
    noise 22-40 dB below the speech) is one segment within 0.35 s of where it was placed."""
    rng = np.random.default_rng(1)
    parts, placed, t = [], [], 0.0
    for utt in synthetic_speech.corpus_utterances("b")[::37][:5]:
        gap = silence(rng.uniform(0.8, 2.0))
        wave = synthetic_speech.synthesize(utt, sample_rate=SR)
        parts += [gap, wave]
        placed.append((t + len(gap) / SR, t + (len(gap) + len(wave)) / SR))
        t = placed[-1][1]
    recording = np.concatenate(parts + [silence(1.0)])
    recording += (10 ** (-70 / 20) * rng.normal(size=len(recording))).astype(np.float32)
    got = segmentation.speech_segments(recording, SR, max_segment_s=4.0)
    assert got.shape == (len(placed), 2), (got, placed)
    np.testing.assert_allclose(got, placed, atol=0.35)


@pytest.mark.parametrize("kwargs", [{"max_segment_s": 0.0}, {"max_segment_s": 4.0, "min_speech_s": -1}])
def test_bad_lengths_are_refused(kwargs):
    with pytest.raises(ValueError, match="must be"):
        segmentation.speech_segments(tone(1.0), SR, **kwargs)
