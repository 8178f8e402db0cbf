"""Real speech and the reference front end, shared by tests/exporters/test_audio.py and
benchmarks/audio_bench.py.

- :func:`speech`: three seconds (2 to 5) of silero-vad's test recording (tests/data/speech,
  MIT), as floats in [-1, 1); :func:`recording`: its first 12 seconds.
- :func:`kaldi`: Kaldi's filterbank as sherpa-onnx computes it (kaldi-native-fbank, no torch).
- :func:`stream`: edgernn's front-end graph in ONNX Runtime, fed a chunk of hops at a time.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edgernn.exporters.audio import TAIL, front_end_model
from edgernn.frontend import Fbank

SPEECH = Path(__file__).parent / "data" / "speech" / "silero_test_0s_12s.wav"


def recording() -> np.ndarray:
    with wave.open(str(SPEECH)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        return np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768


def speech() -> np.ndarray:
    return recording()[2 * 16000:5 * 16000]


def kaldi_options(fb: Fbank):
    """kaldi-native-fbank's options for ``fb``, dither off."""
    import kaldi_native_fbank as knf

    o = knf.FbankOptions()
    f = o.frame_opts
    f.samp_freq, f.frame_length_ms, f.frame_shift_ms = fb.sample_rate, fb.frame_ms, fb.hop_ms
    f.dither, f.preemph_coeff, f.remove_dc_offset = 0.0, fb.preemph, fb.remove_dc
    f.window_type, f.snip_edges = fb.window, True
    o.mel_opts.num_bins, o.mel_opts.low_freq = fb.mel_bins, fb.low_freq
    o.mel_opts.high_freq = fb.high_freq
    return o


def kaldi(samples: np.ndarray, fb: Fbank) -> np.ndarray:
    """kaldi-native-fbank on the samples preceded by the stream's zero tail (module docstring
    of edgernn.frontend), on the same options, dither off."""
    import kaldi_native_fbank as knf

    bank = knf.OnlineFbank(kaldi_options(fb))
    padded = np.concatenate([np.zeros(fb.tail, np.float32), samples]) * fb.pcm_scale
    bank.accept_waveform(fb.sample_rate, padded.tolist())
    bank.input_finished()
    return np.array([bank.get_frame(i) for i in range(bank.num_frames_ready)], np.float32)


def session(proto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(proto.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def stream(samples: np.ndarray, fb: Fbank, hops: int) -> np.ndarray:
    """The front end's graph in ONNX Runtime, fed ``hops`` hops a step, its tail carried."""
    run = session(front_end_model(fb, hops))
    size = hops * fb.hop
    tail = np.zeros((1, fb.tail), np.float32)
    out = []
    for start in range(0, len(samples) - size + 1, size):
        features, tail = run.run(None, {"pcm": samples[None, start:start + size], TAIL: tail})
        out.append(features[0])
    return np.concatenate(out)


def relative(a, b) -> float:
    """The largest relative difference of ``a`` from ``b``."""
    return float((np.abs(a - b) / np.abs(b)).max())
