"""The built-in spoken keywords (edgernn/tasks/speech.py): espeak-ng's real synthesis, mixed
with noise; the Makefile installs espeak-ng."""

from __future__ import annotations

import shutil

import numpy as np
import onnxruntime as ort
import pytest

from edgernn.errors import MissingProgramError
from edgernn.tasks import speech

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                reason="espeak-ng is not installed (make test installs it)")


def test_clips_are_seeded_balanced_and_in_range():
    a, b = speech.synthesize(4, seed=5), speech.synthesize(4, seed=5)
    assert a.audio.shape == (4 * len(speech.LABELS), 16000) and a.audio.dtype == np.float32
    assert np.array_equal(a.audio, b.audio) and np.array_equal(a.y, b.y)
    assert not np.array_equal(a.audio, speech.synthesize(4, seed=6).audio)
    assert np.bincount(a.y).tolist() == [4] * len(speech.LABELS)
    assert a.labels[-2:] == ("_unknown_", "_silence_") and np.abs(a.audio).max() <= 1.0
    rms = np.sqrt((a.audio.astype(np.float64) ** 2).mean(1))
    silence = a.y == a.labels.index("_silence_")
    # silence is noise at -40 to -80 dB; a word peaks at -30 to -2 dB before its noise
    assert rms[silence].max() <= 0.01 and np.abs(a.audio[~silence]).max(1).min() >= 0.03


def test_mix_gives_the_signal_to_noise_ratio_asked():
    rng = np.random.default_rng(0)
    s, n = np.sin(np.arange(16000) / 5.0), speech.noise(rng, 16000)
    for snr in (20.0, 5.0):
        added = speech.mix(s, n, snr) - s
        assert 10 * np.log10(np.mean(s ** 2) / np.mean(added ** 2)) == pytest.approx(snr)


def test_the_words_are_there_for_a_front_end_to_find():
    """1-NN over the front end's log-mel frames, trained on one seed's clips and tested on
    another's: well above chance (1/12), so the clips carry the words. Measured 0.32 at 25
    and 10 clips a class (0.37 at 60 and 30); 0.2 is the bound."""
    from edgernn.exporters.audio import TAIL, front_end_model
    from edgernn.frontend import Fbank

    fb = Fbank()
    session = ort.InferenceSession(front_end_model(fb, hops=100).SerializeToString(),
                                   providers=["CPUExecutionProvider"])

    def frames(clips):
        tail = np.zeros((len(clips.audio), fb.tail), np.float32)
        return session.run(None, {"pcm": clips.audio, TAIL: tail})[0]

    train, test = speech.synthesize(25, seed=0), speech.synthesize(10, seed=1)
    a, b = frames(train), frames(test)
    mean, std = a.mean((0, 1)), a.std((0, 1))
    a, b = ((a - mean) / std).reshape(len(a), -1), ((b - mean) / std).reshape(len(b), -1)
    nearest = ((b ** 2).sum(1)[:, None] - 2 * b @ a.T + (a ** 2).sum(1)[None]).argmin(1)
    assert (train.y[nearest] == test.y).mean() > 0.2


def test_without_espeak_ng_one_clear_error(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(MissingProgramError, match="apt-get install espeak-ng"):
        speech.synthesize(1)
