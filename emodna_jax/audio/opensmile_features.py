"""openSMILE utterance functionals (eGeMAPSv02, ComParE_2016): an optional front end.

The `opensmile` package is an extra, never a requirement: nothing imports it until a function here
runs, and then a missing package raises an error that says how to install it and under which
licence it comes. Install with `pip install -r requirements-opensmile.txt`.

openSMILE is under audEERING's research licence: free for research; commercial use of the
software or of features extracted with it needs their licence. (The wheel's metadata says MIT;
the licence that ships with the software is the research one.)

Feature sets (functionals over the whole utterance, one row per call):
  "egemaps": eGeMAPSv02, 88 numbers (Eyben et al. 2016, the extended Geneva Minimalistic Acoustic
             Parameter Set: F0 in semitones, loudness, jitter, shimmer, HNR, formants, spectral
             balance, MFCC 1-4, with means, coefficients of variation, percentiles, slopes and
             voiced/unvoiced segment rates and lengths).
  "compare": ComParE_2016, 6,373 numbers (the Interspeech Computational Paralinguistics
             Challenge set: brute-force functionals over 65 low-level descriptors).

Example:
  >>> values = extract_functionals(wave, 16000, "egemaps")   # float32 [88]
  >>> feature_names("egemaps")[:2]
  ['F0semitoneFrom27.5Hz_sma3nz_amean', 'F0semitoneFrom27.5Hz_sma3nz_stddevNorm']
"""

from __future__ import annotations

import functools

import numpy as np

LICENCE = ("openSMILE is under audEERING's research licence: free for research; commercial use "
           "of the software or of features extracted with it needs their licence.")

# Front-end name -> (name of the opensmile.FeatureSet member, number of functionals).
FEATURE_SETS = {
    "egemaps": ("eGeMAPSv02", 88),
    "compare": ("ComParE_2016", 6373),
}


def _check_feature_set(feature_set: str) -> None:
    if feature_set not in FEATURE_SETS:
        raise ValueError(f"emodna_jax/audio/opensmile_features.py: unknown feature_set {feature_set!r}; "
                         f"choose one of {sorted(FEATURE_SETS)}.")


def _import_opensmile(feature_set: str):
    """Returns the `opensmile` module, or raises an ImportError that says what to do."""
    try:
        import opensmile  # pylint: disable=import-outside-toplevel
    except ImportError as e:
        raise ImportError(
            f"The {feature_set!r} front end (openSMILE {FEATURE_SETS[feature_set][0]} "
            "functionals) needs the optional `opensmile` package, which is not installed. "
            "Install it with `pip install -r requirements-opensmile.txt` (it leaves the pinned "
            f"packages as they are). {LICENCE}") from e
    return opensmile


@functools.lru_cache(maxsize=None)
def _smile(feature_set: str):
    """One opensmile.Smile per feature set: building it parses the config (tens of ms)."""
    opensmile = _import_opensmile(feature_set)
    return opensmile.Smile(
        feature_set=getattr(opensmile.FeatureSet, FEATURE_SETS[feature_set][0]),
        feature_level=opensmile.FeatureLevel.Functionals)


def feature_names(feature_set: str) -> list[str]:
    """The openSMILE names of the functionals, in the order `extract_functionals` returns them.

    Args:
      feature_set: "egemaps" (88 names) or "compare" (6,373 names).
    Returns:
      A new list of strings, e.g. 'F0semitoneFrom27.5Hz_sma3nz_amean', 'loudness_sma3_amean'.
    """
    _check_feature_set(feature_set)
    names = list(_smile(feature_set).feature_names)
    if len(names) != FEATURE_SETS[feature_set][1]:
        raise RuntimeError(f"emodna_jax/audio/opensmile_features.py: opensmile gave {len(names)} "
                           f"{feature_set!r} names, expected {FEATURE_SETS[feature_set][1]}; "
                           "install the version in requirements-opensmile.txt.")
    return names


def extract_functionals(wave: np.ndarray, sample_rate: int, feature_set: str) -> np.ndarray:
    """openSMILE functionals of one whole utterance.

    Args:
      wave: float [N] mono samples in [-1, 1] (any float dtype; cast to float32).
      sample_rate: Hz of `wave`. openSMILE's configs work at the given rate (no resampling here;
        eGeMAPS is defined on 16 kHz speech, and other rates shift spectral descriptors slightly).
      feature_set: "egemaps" (eGeMAPSv02, F = 88) or "compare" (ComParE_2016, F = 6,373).
    Returns:
      float32 [F], in the order of `feature_names(feature_set)`. Some functionals can be NaN on
      pathological input (e.g. no voiced frame leaves F0-derived ones undefined in ComParE).
    Raises:
      ImportError: `opensmile` is not installed (the message says how to install it).
      ValueError: an unknown feature set, a wave that is not 1-D, empty or not finite, or a
        non-positive sample rate.
    """
    _check_feature_set(feature_set)
    wave = np.asarray(wave)
    if wave.ndim != 1 or wave.size == 0:
        raise ValueError("emodna_jax/audio/opensmile_features.py: wave must be a non-empty 1-D array "
                         f"of mono samples, got shape {wave.shape}; average or pick a channel "
                         "first.")
    if not np.all(np.isfinite(wave)):
        raise ValueError("emodna_jax/audio/opensmile_features.py: wave holds NaN or infinite samples.")
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise ValueError(f"emodna_jax/audio/opensmile_features.py: sample_rate must be a positive "
                         f"integer in Hz, got {sample_rate!r}.")
    frame = _smile(feature_set).process_signal(wave.astype(np.float32), int(sample_rate))
    values = frame.to_numpy(dtype=np.float32)
    # Functionals over the whole signal are one row; anything else means a different config.
    if values.shape != (1, FEATURE_SETS[feature_set][1]):
        raise RuntimeError(f"emodna_jax/audio/opensmile_features.py: opensmile returned shape "
                           f"{values.shape} for {feature_set!r}, expected "
                           f"(1, {FEATURE_SETS[feature_set][1]}); install the version in "
                           "requirements-opensmile.txt.")
    return values[0]
