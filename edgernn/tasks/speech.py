"""Spoken keywords with no download: espeak-ng says Speech Commands' words, noise is mixed in.

Speech Commands' ten keywords (yes, no, up, down, left, right, on, off, stop, go), an
``_unknown_`` class of other words and a ``_silence_`` class of noise alone, as one-second
16 kHz clips. Each clip draws, from a seeded generator, one of espeak-ng's English voices and
variants, a speaking rate, a pitch, where in the second the word starts, and a noise (white or
brown) at a signal-to-noise ratio. espeak-ng is deterministic, so a seed gives the same clips
on every machine that has the same espeak-ng (the Makefile installs it with apt, as root).

This is synthetic speech: it is a way to train and test the whole audio path without
recordings, not a claim about real voices (docs/audio.md).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgernn.errors import MissingProgramError
from edgernn.wav import read

KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
UNKNOWN_WORDS = ("bed", "bird", "cat", "dog", "happy", "house", "tree", "wow", "marvin",
                 "sheila")
UNKNOWN, SILENCE = "_unknown_", "_silence_"
LABELS = (*KEYWORDS, UNKNOWN, SILENCE)
VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-gb-x-gbclan")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m7", "f1", "f2", "f3", "f4", "klatt", "klatt3")
RATES = (110, 140, 170, 200)          # words per minute
PITCHES = (25, 40, 55, 70, 85)        # espeak-ng's 0-99
SNR_DB = (30.0, 20.0, 10.0, 5.0)
RATE = 16000


@dataclass
class Clips:
    """``audio`` (N, seconds * rate) float32 in [-1, 1]; ``y`` (N,) indices into ``labels``."""

    audio: np.ndarray
    y: np.ndarray
    labels: tuple[str, ...]
    rate: int = RATE


def espeak_ng() -> str:
    """The espeak-ng program's path, or one clear error saying how to install it."""
    found = shutil.which("espeak-ng")
    if found is None:
        raise MissingProgramError(
            "the built-in speech data needs espeak-ng, which is not installed: run "
            "'apt-get install espeak-ng' as root (make test and make demo do)")
    return found


def say(word: str, voice: str, variant: str, wpm: int, pitch: int, folder: Path) -> np.ndarray:
    """espeak-ng saying ``word``: float32 samples at 16 kHz."""
    out = folder / f"{word}-{voice}-{variant}-{wpm}-{pitch}.wav"
    subprocess.run([espeak_ng(), "-v", f"{voice}+{variant}", "-s", str(wpm), "-p", str(pitch),
                    "-w", str(out), word], check=True, capture_output=True, timeout=60)
    return read(out, rate=RATE)[0]


def mix(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``speech`` plus ``noise`` scaled so that the ratio of their powers is ``snr_db``."""
    ps, pn = float(np.mean(speech ** 2)), float(np.mean(noise ** 2))
    if pn == 0.0 or ps == 0.0:
        return speech + noise
    return speech + noise * np.sqrt(ps / (pn * 10 ** (snr_db / 10)))


def noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """White or brown (integrated white, high-passed by removing its mean) noise, unit power."""
    white = rng.standard_normal(n)
    v = white if rng.random() < 0.5 else np.cumsum(white)
    v = v - v.mean()
    return v / max(float(np.sqrt(np.mean(v ** 2))), 1e-12)


def synthesize(per_class: int = 100, seed: int = 0, seconds: float = 1.0,
               workers: int = 4) -> Clips:
    """``per_class`` clips of each of :data:`LABELS` (see the module docstring)."""
    espeak_ng()
    rng = np.random.default_rng(seed)
    n = int(round(seconds * RATE))
    plans = []
    for y, label in enumerate(LABELS):
        for _ in range(per_class):
            word = (str(rng.choice(UNKNOWN_WORDS)) if label == UNKNOWN else
                    None if label == SILENCE else label)
            voice = (str(rng.choice(VOICES)), str(rng.choice(VARIANTS)),
                     int(rng.choice(RATES)), int(rng.choice(PITCHES)))
            plans.append((y, word, voice, float(rng.choice(SNR_DB)), rng.random(),
                          int(rng.integers(2 ** 31))))
    said = {(w, v) for _, w, v, *_ in plans if w is not None}
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(workers) as pool:
        keys = sorted(said)
        audio = dict(zip(keys, pool.map(lambda k: say(k[0], *k[1], Path(tmp)), keys)))
    out = np.zeros((len(plans), n), np.float32)
    for i, (_, word, voice, snr, where, noise_seed) in enumerate(plans):
        r = np.random.default_rng(noise_seed)
        if word is None:                                    # silence: noise at a low level
            out[i] = noise(r, n) * 10 ** (-r.uniform(2.0, 4.0))
            continue
        speech = _trimmed(audio[(word, voice)])[:n]
        clip = np.zeros(n)
        start = int(where * (n - len(speech)))
        clip[start:start + len(speech)] = speech
        peak = 10 ** (-r.uniform(0.1, 1.5))                 # -2 to -30 dB below full scale
        clip *= peak / max(float(np.abs(clip).max()), 1e-12)
        out[i] = np.clip(mix(clip, noise(r, n), snr), -1.0, 1.0)
    return Clips(out, np.array([p[0] for p in plans], np.int64), LABELS)


def _trimmed(x: np.ndarray, floor: float = 1e-3) -> np.ndarray:
    """The word without espeak-ng's leading and trailing silence."""
    loud = np.flatnonzero(np.abs(x) > floor * max(float(np.abs(x).max()), 1e-12))
    return x[loud[0]:loud[-1] + 1] if len(loud) else x
