"""Reading WAV files (edgernn/wav.py): real speech, every PCM width, and the files a user may
hand it by mistake; resampling held to scipy's resample_poly (tolerance 1e-9 absolute on
samples in [-1, 1): the same float64 filter and sums, only their order differs; measured
2e-16)."""

from __future__ import annotations

import struct
import wave

import numpy as np
import pytest

from edgernn.errors import DataError
from edgernn.wav import read, resample
from tests.audiodata import SPEECH

signal = pytest.importorskip("scipy.signal")


def _write(path, frames: np.ndarray, width: int, rate: int = 16000) -> None:
    """``frames`` (n, channels) integers as a PCM WAV of ``width`` bytes a sample."""
    if width == 1:
        raw = (frames + 128).astype(np.uint8).tobytes()
    elif width == 3:
        v = frames.astype(np.int32).reshape(-1) & 0xFFFFFF
        raw = np.stack([v & 255, (v >> 8) & 255, v >> 16], 1).astype(np.uint8).tobytes()
    else:
        raw = frames.astype({2: "<i2", 4: "<i4"}[width]).tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(frames.shape[1])
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(raw)


def test_real_speech_reads_as_its_16_bit_values():
    x, rate = read(SPEECH)
    with wave.open(str(SPEECH)) as w:
        raw = np.frombuffer(w.readframes(w.getnframes()), np.int16)
    assert rate == 16000 and x.dtype == np.float32 and len(x) == 192000
    np.testing.assert_array_equal(x, raw.astype(np.float32) / 32768)


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_every_pcm_width_and_channels_averaged(tmp_path, width):
    top = 1 << (8 * width - 1)
    rng = np.random.default_rng(width)
    frames = rng.integers(-top, top, size=(500, 2))
    frames[:2] = [[-top, -top], [top - 1, top - 1]]              # both extremes
    _write(tmp_path / "a.wav", frames, width, rate=22050)
    x, rate = read(tmp_path / "a.wav")
    assert rate == 22050 and x.shape == (500,)
    np.testing.assert_allclose(x, frames.mean(1) / top, rtol=0, atol=1e-7)
    assert x[0] == -1.0 and x[1] <= 1.0         # 32-bit's top rounds to 1.0 in float32


@pytest.mark.parametrize("rates", [(16000, 8000), (8000, 16000), (44100, 16000),
                                   (48000, 16000), (22050, 16000), (16000, 44100)])
def test_resampling_equals_scipy_resample_poly(rates):
    rate_in, rate_out = rates
    x = read(SPEECH)[0].astype(np.float64)
    for n in (len(x), 1, 7, 1001):
        ours = resample(x[:n], rate_in, rate_out)
        theirs = signal.resample_poly(x[:n], rate_out, rate_in)
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)


def test_read_resamples_to_the_rate_asked(tmp_path):
    x, rate = read(SPEECH, rate=8000)
    assert rate == 8000 and len(x) == 96000 and x.dtype == np.float32
    expected = signal.resample_poly(read(SPEECH)[0].astype(np.float64), 1, 2)
    np.testing.assert_allclose(x, expected, rtol=0, atol=1e-7)
    assert read(SPEECH, rate=16000)[0].tobytes() == read(SPEECH)[0].tobytes()


def _float_wav(path) -> None:
    """A 32-bit float WAV (format 3), which the standard library does not read."""
    data = np.zeros(10, "<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, 16000, 64000, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + \
        struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


@pytest.mark.parametrize("make, says", [
    (lambda p: p.write_text("label,text\n"), "not a PCM WAV file edgernn can read"),
    (_float_wav, "not a PCM WAV file edgernn can read"),
    (lambda p: _write(p, np.zeros((0, 1), int), 2), "holds no samples"),
    (lambda p: p.write_bytes(SPEECH.read_bytes()[:1000]), "cut short"),
    (lambda p: p.mkdir(), "is a folder, not a WAV file"),
    (lambda p: None, "no such file"),
])
def test_a_file_it_cannot_read_gets_one_clear_error(tmp_path, make, says):
    path = tmp_path / "in.wav"
    make(path)
    with pytest.raises(DataError, match=says) as e:
        read(path)
    assert str(path) in str(e.value)
    if "WAV file edgernn" in says:
        assert "ffmpeg -i IN -ac 1 -ar 16000" in str(e.value)


def test_bad_rates_are_refused():
    with pytest.raises(DataError, match="sample rates must be positive"):
        resample(np.zeros(4), 0, 16000)
