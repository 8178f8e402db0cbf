"""WAV files in, mono float samples out, at the rate a front end wants: numpy and the standard
library only (the device side reads audio too).

- :func:`read`: PCM WAV (8-, 16-, 24- or 32-bit integers) through the standard library's
  ``wave``, channels averaged to one, samples in [-1, 1] (value / 2^(bits-1)); ``rate=``
  resamples. A file that is not such a WAV, is empty, or is cut short gets one
  :class:`~edgernn.errors.DataError` that names the file, what is wrong and how to convert it.
- :func:`resample`: polyphase resampling by a rational factor with the Kaiser-windowed sinc
  filter of ``scipy.signal.resample_poly`` (beta 5, ten input periods each side), the same
  samples as scipy's to float rounding (tests/edgernn/test_wav.py), without scipy.
"""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np

from edgernn.errors import DataError

CONVERT = "convert it with: ffmpeg -i IN -ac 1 -ar 16000 -c:a pcm_s16le OUT.wav"
BLOCK = 1 << 16                    # outputs computed at once by resample (bounds its memory)


def read(path, rate: int | None = None) -> tuple[np.ndarray, int]:
    """(samples, sample rate): float32 mono in [-1, 1], resampled to ``rate`` when given."""
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, sr, frames = (w.getnchannels(), w.getsampwidth(),
                                           w.getframerate(), w.getnframes())
            data = w.readframes(frames)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a folder, not a WAV file") from None
    except (wave.Error, EOFError) as e:
        raise DataError(f"{path}: not a PCM WAV file edgernn can read ({e}); {CONVERT}") from None
    if width not in (1, 2, 3, 4) or channels < 1 or sr <= 0:
        raise DataError(f"{path}: {8 * width}-bit samples, {channels} channel(s) at {sr} Hz; "
                        f"edgernn reads 8/16/24/32-bit PCM; {CONVERT}")
    if frames == 0:
        raise DataError(f"{path}: the file holds no samples")
    if len(data) != frames * channels * width:
        raise DataError(f"{path}: the header promises {frames} frames but the file holds "
                        f"{len(data) // (channels * width)}: it is cut short; record or copy "
                        f"it again")
    samples = _decode(data, width).reshape(frames, channels).mean(axis=1, dtype=np.float64)
    if rate is not None and rate != sr:
        samples = resample(samples, sr, rate)
        sr = rate
    return samples.astype(np.float32), sr


def _decode(data: bytes, width: int) -> np.ndarray:
    """Little-endian PCM bytes -> float64 in [-1, 1) (8-bit WAV is unsigned, the rest signed)."""
    if width == 1:
        return (np.frombuffer(data, np.uint8).astype(np.float64) - 128) / 128
    if width == 3:                                   # three bytes: widen to int32, keep the sign
        b = np.frombuffer(data, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        return np.where(v >= 1 << 23, v - (1 << 24), v) / float(1 << 23)
    kind = {2: "<i2", 4: "<i4"}[width]
    return np.frombuffer(data, kind).astype(np.float64) / float(1 << (8 * width - 1))


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """``x`` (1-D) from ``rate_in`` to ``rate_out`` Hz, float64: scipy's ``resample_poly`` with
    its default window, written out (see the module docstring)."""
    if rate_in <= 0 or rate_out <= 0:
        raise DataError(f"sample rates must be positive, got {rate_in} and {rate_out}")
    g = math.gcd(rate_in, rate_out)
    up, down = rate_out // g, rate_in // g
    x = np.asarray(x, np.float64)
    if up == down == 1:
        return x.copy()
    n_in = len(x)
    n_out = n_in * up // down + bool(n_in * up % down)
    h, pre_remove = _filter(up, down, n_in, n_out)
    # output k is sample (k + pre_remove) * down of h convolved with x upsampled by ``up``:
    # the sum over inputs i of h[n - i * up] x[i], for 0 <= n - i * up < len(h)
    taps = -(-len(h) // up)
    padded = np.concatenate([h, np.zeros(taps * up - len(h))])
    out = np.empty(n_out)
    xz = np.concatenate([np.zeros(taps), x, np.zeros(taps)])   # reads outside x are zeros
    for start in range(0, n_out, BLOCK):
        n = (np.arange(start, min(start + BLOCK, n_out)) + pre_remove) * down
        last = n // up                                  # the newest input each output reads
        phase = n - last * up                           # h index for that input
        j = np.arange(taps)
        coef = padded[phase[:, None] + j[None, :] * up]            # (outputs, taps)
        values = xz[taps + last[:, None] - j[None, :]]             # x[last - j], zero outside
        out[start:start + len(n)] = (coef * values).sum(axis=1)
    return out


def _filter(up: int, down: int, n_in: int, n_out: int) -> tuple[np.ndarray, int]:
    """resample_poly's filter (firwin with a Kaiser window of beta 5, times ``up``), padded so
    that its delay is a whole number of outputs, and how many outputs to drop at the start."""
    max_rate = max(up, down)
    half = 10 * max_rate
    taps = 2 * half + 1
    m = np.arange(taps) - half
    cutoff = 1.0 / max_rate
    h = cutoff * np.sinc(cutoff * m) * np.kaiser(taps, 5.0)
    h = h / h.sum() * up
    pre_pad = down - half % down
    pre_remove = (half + pre_pad) // down
    post_pad = 0
    while _output_len(len(h) + pre_pad + post_pad, n_in, up, down) < n_out + pre_remove:
        post_pad += 1
    return np.concatenate([np.zeros(pre_pad), h, np.zeros(post_pad)]), pre_remove


def _output_len(len_h: int, n_in: int, up: int, down: int) -> int:
    """Length of upfirdn's output (scipy.signal._upfirdn._output_len)."""
    return ((n_in - 1) * up + len_h - 1) // down + 1
