"""Real speech and the reference front end, shared by tests/exporters/test_audio.py and
benchmarks/audio_bench.py.

- :func:`speech`: three seconds (2 to 5) of silero-vad's test recording (tests/data/speech,
  MIT), as floats in [-1, 1); :func:`recording`: its first 12 seconds.
- :func:`kaldi`: Kaldi's filterbank as sherpa-onnx computes it (kaldi-native-fbank, no torch).
- :func:`stream`: edgernn's front-end graph in ONNX Runtime, fed a chunk of hops at a time.
- :func:`loudness_detector`: a voice-activity file written by hand (the browser's microphone
  test, the listener app's test); :func:`write_wav`, :func:`pcm16`: samples as files and bytes.
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


def loudness_detector(folder: Path, seconds: float = 3.5, graph: str = "chunk") -> Path:
    """A voice-activity file written by hand, so its events on the recording are known without
    training: a GRU of one unit behind edgernn's front end whose candidate is the mean
    normalised log-mel level, speech where that is above the 40th percentile of the first
    ``seconds`` of :func:`recording`, smoothed by the update gate (0.5). A chunk graph unless
    told, as voice activity exports by default."""
    import torch

    from edgernn.checkpoint import Checkpoint, save_checkpoint
    from edgernn.config import ModelConfig
    from edgernn.contract import Normalization
    from edgernn.exporters import export
    from edgernn.models import build
    from edgernn.tasks.audio import AudioFeatures, features

    fb = Fbank()
    speech = recording()[:int(seconds * fb.sample_rate)]
    hops = speech[:len(speech) // fb.hop * fb.hop].reshape(1, -1, fb.hop)
    threshold = float(np.percentile(features(fb, hops)[0].mean(-1), 40))
    cfg = ModelConfig(cell="gru", input_size=fb.mel_bins, hidden_size=1, num_layers=1,
                      output_size=2, head="classify_step")
    weights = {k: torch.zeros_like(v) for k, v in build(cfg, seed=0).state_dict().items()}
    weights["rnn.weight_ih_l0"][2] = 1.0 / fb.mel_bins     # candidate: the mean level
    weights["head.weight"][1, 0] = 10.0                    # speech where it is above zero
    ckpt = save_checkpoint(folder / "loud.pt", Checkpoint(
        config=cfg, state_dict=weights, labels=["silence", "speech"],
        audio=AudioFeatures(fb, Normalization([threshold] * fb.mel_bins, [1.0] * fb.mel_bins))))
    return export(ckpt, folder / f"loud.{graph}.onnx", graph=graph).path


def write_wav(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    """16-bit mono PCM."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm16(samples))
    return path


def pcm16(samples: np.ndarray) -> bytes:
    """Samples in [-1, 1) as raw 16-bit little-endian PCM (what arecord -f S16_LE writes)."""
    return (np.clip(samples, -1, 1 - 2 ** -15) * 32768).astype("<i2").tobytes()
