"""The audio front end's options and constants: Kaldi's log-mel filterbank, as one product.

A recurrent audio model reads log-mel frames; a microphone gives samples. The front end that
turns one into the other has to be the same in training, on the device, in the browser and on
Triton, so edgernn writes it into the ONNX graph (:mod:`edgernn.exporters.audio`) and this
module holds what that graph is made of. It needs only numpy (the device side imports it).

The arithmetic is Kaldi's ``compute-fbank-feats`` (and kaldi-native-fbank's, sherpa-onnx's front
end) with dither 0 and no energy term. Per frame of ``frame_length`` samples: remove the DC
offset, pre-emphasise (``x[i] -= p * x[i-1]``, and ``x[0] -= p * x[0]``), apply the window
(Povey's by default), zero-pad to the next power of two, take the power spectrum, sum it through
triangular mel filters (Kaldi's mel scale, ``1127 ln(1 + f/700)``, bins of the spectrum below
Nyquist) and take the log, floored at float32's epsilon.

Every step before the squaring is linear in the frame, so they fold into one constant matrix:
the frame times :meth:`Fbank.spectrum_basis` gives the real and imaginary parts together. A
frame then costs one (L x 2K) product, one square, one (2K x mel) product (the filters twice,
:meth:`Fbank.power_mel_banks`, which also sums the two squares) and a log.

Streaming: a step takes whole hops of new samples and carries the last ``frame_length - hop``
samples as state (:attr:`Fbank.tail`), zeros at the start. Frame ``t`` of a stream therefore
ends where hop ``t`` ends, and the first frames see that many zeros before the audio: the same
frames as Kaldi's (``snip_edges``) on the audio preceded by ``tail`` zeros, and the same
whichever way the audio is cut into chunks of hops.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from edgernn.errors import ConfigError

WINDOWS = ("povey", "hanning", "hamming", "rectangular")   # Kaldi's names
TAIL = "audio_tail"       # the state that carries the window's overlap from step to step
# hops a call of a chunk graph where no one says (edgernn run, the web page's listen.js): a
# one-hop call's cost is mostly the call's own, and 30 ms is about silero-vad's 32 ms a call
CALL_HOPS = 3


@dataclass(frozen=True)
class Fbank:
    """Log-mel filterbank options (Kaldi's names and defaults where Kaldi has one)."""

    sample_rate: int = 16000
    frame_ms: float = 25.0
    hop_ms: float = 10.0
    mel_bins: int = 40
    low_freq: float = 20.0
    high_freq: float = 0.0          # > 0: Hz; <= 0: that many Hz below Nyquist (Kaldi's rule)
    preemph: float = 0.97
    window: str = "povey"
    remove_dc: bool = True
    # samples arrive as floats in [-1, 1) (WAV readers, WebAudio); Kaldi's features are of
    # 16-bit values, so the front end scales by this first (1.0 keeps the floats as they are)
    pcm_scale: float = 32768.0

    def __post_init__(self):
        bad = self.problems()
        if bad:
            raise ConfigError(f"audio front end: {bad[0]}")

    def problems(self) -> list[str]:
        out = []
        if not (8000 <= self.sample_rate <= 192_000):
            out.append(f"sample_rate {self.sample_rate} is outside 8000-192000 Hz")
        if self.hop_ms <= 0 or self.frame_ms < self.hop_ms:
            out.append(f"frame_ms {self.frame_ms} and hop_ms {self.hop_ms}: a hop must be > 0 "
                       f"and no longer than a frame")
        elif self.hop * 1000 != self.hop_ms * self.sample_rate:
            out.append(f"hop_ms {self.hop_ms} is not a whole number of samples at "
                       f"{self.sample_rate} Hz")
        elif self.frame_length > 8192:
            out.append(f"frame_ms {self.frame_ms} is {self.frame_length} samples; at most 8192")
        if not 1 <= self.mel_bins <= 256:
            out.append(f"mel_bins {self.mel_bins} must be 1-256")
        if self.window not in WINDOWS:
            out.append(f"window {self.window!r} is not one of {', '.join(WINDOWS)}")
        if not 0.0 <= self.preemph < 1.0:
            out.append(f"preemph {self.preemph} must be in [0, 1)")
        if not math.isfinite(self.pcm_scale) or self.pcm_scale <= 0:
            out.append(f"pcm_scale {self.pcm_scale} must be a positive number")
        nyquist = self.sample_rate / 2
        if not 0 <= self.low_freq < self.top_hz <= nyquist:
            out.append(f"low_freq {self.low_freq} and high_freq {self.high_freq} must give "
                       f"0 <= low < high <= {nyquist:g} Hz")
        return out

    # ------------------------------------------------------------------ sizes

    @property
    def hop(self) -> int:
        return int(round(self.sample_rate * self.hop_ms / 1000))

    @property
    def frame_length(self) -> int:
        return int(round(self.sample_rate * self.frame_ms / 1000))

    @property
    def tail(self) -> int:
        """Samples a stream carries from one step to the next."""
        return self.frame_length - self.hop

    @property
    def top_hz(self) -> float:
        """The mel filters' top: ``high_freq`` Hz, or that many Hz below Nyquist when <= 0."""
        nyquist = self.sample_rate / 2
        return self.high_freq if self.high_freq > 0 else nyquist + self.high_freq

    @property
    def fft_size(self) -> int:
        return 1 << (self.frame_length - 1).bit_length()

    @property
    def bins(self) -> int:
        """Spectrum bins the mel filters read: 0 .. fft_size/2 - 1 (Kaldi leaves out Nyquist)."""
        return self.fft_size // 2

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Fbank":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"audio front end: unknown option(s) {', '.join(unknown)}")
        return cls(**d)

    # ------------------------------------------------------------------ constants

    def window_values(self) -> np.ndarray:
        n = self.frame_length
        a = 2 * np.pi * np.arange(n, dtype=np.float64) / (n - 1)
        if self.window == "povey":
            return (0.5 - 0.5 * np.cos(a)) ** 0.85
        if self.window == "hanning":
            return 0.5 - 0.5 * np.cos(a)
        if self.window == "hamming":
            return 0.54 - 0.46 * np.cos(a)
        return np.ones(n)

    def frame_map(self) -> np.ndarray:
        """(L, L) the linear steps before the spectrum, as ``frame @ M``: the PCM scale, DC
        removal, pre-emphasis and the window, in Kaldi's order."""
        n = self.frame_length
        m = np.eye(n) * self.pcm_scale
        if self.remove_dc:
            m = m @ (np.eye(n) - np.full((n, n), 1.0 / n))
        pre = np.eye(n)                                  # y[i] = x[i] - p x[i-1]; y[0] = (1-p) x[0]
        pre[np.arange(1, n) - 1, np.arange(1, n)] = -self.preemph
        pre[0, 0] = 1.0 - self.preemph
        return m @ pre @ np.diag(self.window_values())

    def spectrum_basis(self) -> np.ndarray:
        """(L, 2K) float32: a frame times it gives the real parts of spectrum bins 0..K-1, then
        the imaginary parts, of the processed frame zero-padded to ``fft_size``."""
        k = np.arange(self.bins, dtype=np.float64)
        angle = 2 * np.pi * np.outer(np.arange(self.frame_length), k) / self.fft_size
        dft = np.concatenate([np.cos(angle), -np.sin(angle)], axis=1)
        return (self.frame_map() @ dft).astype(np.float32)

    def power_mel_banks(self) -> np.ndarray:
        """(2K, mel) float32: :meth:`mel_banks` twice, so the squared real and imaginary parts
        go through the filters in one product (``re^2 M + im^2 M``), with no split and sum
        of the power spectrum between."""
        banks = self.mel_banks()
        return np.concatenate([banks, banks]).astype(np.float32)

    def mel_banks(self) -> np.ndarray:
        """(K, mel) float32 triangular filters on Kaldi's mel scale (kaldi MelBanks)."""
        def mel(f):
            return 1127.0 * np.log(1.0 + np.asarray(f, np.float64) / 700.0)

        low_mel, high_mel = mel(self.low_freq), mel(self.top_hz)
        delta = (high_mel - low_mel) / (self.mel_bins + 1)
        freqs = mel(np.arange(self.bins) * self.sample_rate / self.fft_size)
        out = np.zeros((self.bins, self.mel_bins))
        for b in range(self.mel_bins):
            left, centre, right = low_mel + b * delta, low_mel + (b + 1) * delta, \
                low_mel + (b + 2) * delta
            up = (freqs - left) / (centre - left)
            down = (right - freqs) / (right - centre)
            inside = (freqs > left) & (freqs < right)
            out[:, b] = np.where(inside, np.where(freqs <= centre, up, down), 0.0)
        return out.astype(np.float32)


LOG_FLOOR = float(np.finfo(np.float32).eps)      # Kaldi's floor before the log
