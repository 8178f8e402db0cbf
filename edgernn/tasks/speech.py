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
from edgernn.frontend import Fbank
from edgernn.tasks.audio import SILENCE, UNKNOWN
from edgernn.wav import read

KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
UNKNOWN_WORDS = ("bed", "bird", "cat", "dog", "happy", "house", "tree", "wow", "marvin",
                 "sheila")
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


# ---------------------------------------------------------------------------- talk and pauses

# Common English words that mixtures string into utterances (plus the keywords and the unknown
# words above): many phonemes, said by the voices above.
WORDS = tuple("""the a of and to in is you that it he was for on are as with his they at be this
have from or one had by word but not what all were we when your can said there use an each
which she do how their if will up other about out many then them these so some her would make
like him into time has look two more write go see number no way could people my than first
water been call who oil its now find long down day did get come made may part""".split())
HOP = Fbank().hop                     # labels are per hop of the front end (10 ms)


@dataclass
class Mixtures:
    """``audio`` (N, seconds * rate) float32; ``speech`` (N, steps) bool, one a 10 ms hop."""

    audio: np.ndarray
    speech: np.ndarray
    rate: int = RATE


def mixtures(count: int, seed: int = 0, seconds: float = 6.0, workers: int = 4) -> Mixtures:
    """``count`` recordings of utterances (one to seven words, one voice, rate and pitch each)
    and pauses of 0.05-1.5 s, with noise at 0-30 dB SNR, and where the speech is.

    A hop is speech where the clean speech's energy is within 35 dB of the recording's loudest
    hop; pauses between speech shorter than 160 ms count as speech, and 30 ms are added at each
    end, the way silero-vad's timestamps merge pauses under 100 ms and pad speech by 30 ms.
    """
    espeak_ng()
    rng = np.random.default_rng(seed)
    n = int(round(seconds * RATE))
    plans = []
    for _ in range(count):
        parts, t = [], 0.0
        while t < seconds:
            gap, words = rng.uniform(0.05, 1.5), int(rng.integers(1, 8))
            voice = (str(rng.choice(VOICES)), str(rng.choice(VARIANTS)),
                     int(rng.choice(RATES)), int(rng.choice(PITCHES)))
            parts.append((gap, " ".join(rng.choice(WORDS + KEYWORDS, words)), voice,
                          rng.uniform(0.05, 1.0)))
            t += gap + 0.45 * words
        plans.append((parts, float(rng.choice((30.0, 20.0, 10.0, 5.0, 0.0))),
                       int(rng.integers(2 ** 31))))
    keys = sorted({(text, voice) for parts, *_ in plans for _, text, voice, _ in parts})
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(workers) as pool:
        said = dict(zip(keys, pool.map(lambda k: say(k[0], *k[1], Path(tmp)), keys)))
    audio = np.zeros((count, n), np.float32)
    speech = np.zeros((count, n // HOP), bool)
    for i, (parts, snr, noise_seed) in enumerate(plans):
        r = np.random.default_rng(noise_seed)
        clean, at = np.zeros(n), 0
        for gap, text, voice, gain in parts:
            at += int(gap * RATE)
            if at >= n:
                break
            words = _trimmed(said[(text, voice)])
            take = min(len(words), n - at)
            clean[at:at + take] = words[:take] * gain / max(float(np.abs(words).max()), 1e-12)
            at += take
        speech[i] = speech_hops(clean)
        clean *= 10 ** (-r.uniform(0.1, 1.5)) / max(float(np.abs(clean).max()), 1e-12)
        audio[i] = np.clip(mix(clean, coloured(r, n), snr), -1.0, 1.0)
    return Mixtures(audio, speech)


def coloured(rng: np.random.Generator, n: int) -> np.ndarray:
    """Noise of a random spectral shape (a smooth random walk of +-30 dB over frequency, so
    hum, hiss and rumble alike), its loudness drifting by up to 10 dB over the recording;
    unit power."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    knots = np.cumsum(rng.normal(0.0, 6.0, 17))
    shape = np.interp(np.linspace(0, 16, len(spectrum)), np.arange(17), knots)
    v = np.fft.irfft(spectrum * 10 ** ((shape - shape.max()) / 20), n)
    v *= 10 ** (np.interp(np.arange(n), np.linspace(0, n, 5), rng.uniform(-5, 5, 5)) / 20)
    return v / max(float(np.sqrt(np.mean(v ** 2))), 1e-12)


def speech_hops(clean: np.ndarray, floor_db: float = -35.0, bridge: int = 16,
                pad: int = 3) -> np.ndarray:
    """Which 10 ms hops of ``clean`` speech hold speech (:func:`mixtures` says how)."""
    steps = len(clean) // HOP
    energy = 10 * np.log10(np.mean(clean[:steps * HOP].reshape(steps, HOP) ** 2, 1) + 1e-20)
    loud = energy > energy.max() + floor_db
    on = np.flatnonzero(loud)
    for a, b in zip(on[:-1], on[1:]):
        if 1 < b - a <= bridge:
            loud[a:b] = True
    out = loud.copy()
    for k in range(1, pad + 1):
        out[k:] |= loud[:-k]
        out[:-k] |= loud[k:]
    return out
