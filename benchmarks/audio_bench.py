"""The audio front end's figures: docs/audio.md.

    python benchmarks/audio_bench.py [--calls 3000] [--rounds 10]

1. Parity: edgernn's front-end graph (exporters/audio.py) in ONNX Runtime against
   kaldi-native-fbank on tests/data/speech (real speech, silero-vad's recording), largest
   relative difference of the log-mel values, for the option sets the tests check.
2. Cost, one thread, batch 1, the two ways the issue names to compute the spectrum, measured in
   alternating rounds (median of round medians): the folded product edgernn writes (one
   (L x 2K) product for pre-processing and DFT together) and ONNX's ``DFT`` operator after the
   same folded pre-processing. Microseconds per step of 1 and 10 hops, and the real-time factor
   (time per 10 ms of audio / 10 ms).
3. Next to silero-vad's own ONNX file (its wheel's, run as its wrapper runs it: 512 new samples
   and the 64 before them a call, state fed back, one thread), in the same alternating rounds:
   the cost of one second of audio. edgernn's front end alone sets the floor under what an
   edgernn voice-activity model can cost per second, 10 ms a step.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgernn.exporters.audio import TAIL, front_end_model  # noqa: E402
from edgernn.exporters.graph import Writer  # noqa: E402
from edgernn.frontend import LOG_FLOOR, Fbank  # noqa: E402
from edgernn.runtime import bench  # noqa: E402
from tests import audiodata  # noqa: E402
from tests.exporters.test_audio import OPTIONS  # noqa: E402


def dft_model(fb: Fbank, hops: int):
    """The same front end with ONNX's DFT operator for the spectrum: the alternative measured."""
    g = Writer(opset=17)
    buffer = g.one("Concat", [TAIL, "pcm"], axis=1)
    index = np.arange(hops)[:, None] * fb.hop + np.arange(fb.frame_length)[None, :]
    frames = g.one("Gather", [buffer, g.const("index", index.astype(np.int64))], axis=1)
    ready = g.one("MatMul", [frames, g.const("map", fb.frame_map().astype(np.float32))])
    pad = np.array([0, 0, 0, 0, 0, fb.fft_size - fb.frame_length], np.int64)
    padded = g.one("Unsqueeze", [g.one("Pad", [ready, g.const("pad", pad)]),
                                 g.const("last", np.array([-1], np.int64))])
    spectrum = g.one("DFT", [padded], onesided=1, axis=2)              # (B, hops, K+1, 2)
    power = g.one("ReduceSum", [g.one("Mul", [spectrum, spectrum]),
                                g.const("axes", np.array([-1], np.int64))], keepdims=0)
    power = g.one("Slice", [power, g.const("s", np.array([0], np.int64)),
                            g.const("e", np.array([fb.bins], np.int64)),
                            g.const("a", np.array([2], np.int64))])
    mel = g.one("MatMul", [power, g.const("mel", fb.mel_banks())])
    g.one("Log", [g.one("Max", [mel, g.const("floor", np.array(LOG_FLOOR, np.float32))])],
          out="features")
    g.one("Slice", [buffer, g.const("s", np.array([hops * fb.hop], np.int64)),
                    g.const("e", np.array([hops * fb.hop + fb.tail], np.int64)),
                    g.const("a", np.array([1], np.int64))], out=f"{TAIL}_out")
    f32 = TensorProto.FLOAT
    graph = helper.make_graph(
        g.nodes, "dft_front_end",
        [helper.make_tensor_value_info("pcm", f32, ["batch", hops * fb.hop]),
         helper.make_tensor_value_info(TAIL, f32, ["batch", fb.tail])],
        [helper.make_tensor_value_info("features", f32, None),
         helper.make_tensor_value_info(f"{TAIL}_out", f32, None)], initializer=g.inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    samples = audiodata.speech()
    print(f"1. parity with kaldi-native-fbank on {audiodata.SPEECH.name} "
          f"({len(samples) / 16000:.1f} s of real speech)")
    for name, fb in OPTIONS.items():
        x = samples[::2].copy() if fb.sample_rate == 8000 else samples
        ours = audiodata.stream(x, fb, hops=len(x) // fb.hop)
        print(f"   {name}: {len(ours)} frames, largest relative difference "
              f"{audiodata.relative(ours, audiodata.kaldi(x, fb)):.1e}")
    fb = Fbank()
    print("2. cost per step, 1 thread, batch 1 (median of round medians)")
    for hops in (1, 10):
        feeds = {"pcm": samples[None, :hops * fb.hop], TAIL: np.zeros((1, fb.tail), np.float32)}
        runs = {"folded product": audiodata.session(front_end_model(fb, hops)),
                "ONNX DFT": audiodata.session(dft_model(fb, hops))}
        ns = bench.interleaved({k: (lambda s=s: s.run(None, feeds)) for k, s in runs.items()},
                               args.calls, rounds=args.rounds)
        us = {k: bench.median_of_medians(v) / 1e3 for k, v in ns.items()}
        base = us["folded product"]
        for k, v in us.items():
            print(f"   {hops:2d} hop(s) {k:15s} {v:7.1f} us per step, real-time factor "
                  f"{v / (hops * fb.hop_ms * 1000):.4f}, {v / base:.2f}x the product")
    _next_to_silero(fb, samples, args)


def _next_to_silero(fb: Fbank, samples: np.ndarray, args) -> None:
    from tests.runtime.models import published_vad

    path = published_vad()
    if path is None:
        print("3. silero-vad is not installed (pip install silero-vad): no comparison")
        return
    vad = audiodata.session(__import__("onnx").load(str(path)))
    chunk = np.concatenate([np.zeros(64, np.float32), samples[:512]])[None]
    vad_feeds = {"input": chunk, "state": np.zeros((2, 1, 128), np.float32),
                 "sr": np.array(16000, np.int64)}
    feeds = {hops: {"pcm": samples[None, :hops * fb.hop], TAIL: np.zeros((1, fb.tail),
                                                                          np.float32)}
             for hops in (1, 3, 10)}
    fns = {"silero": lambda: vad.run(None, vad_feeds)}
    for hops in feeds:
        fns[hops] = (lambda s=audiodata.session(front_end_model(fb, hops)), f=feeds[hops]:
                     s.run(None, f))
    ns = bench.interleaved(fns, args.calls, rounds=args.rounds)
    silero = bench.median_of_medians(ns["silero"]) / 1e3 * 16000 / 512     # us per second
    print("3. one second of audio, 1 thread (median of round medians)")
    print(f"   silero-vad ONNX, 512 samples (32 ms) a call: {silero / 1e3:6.2f} ms")
    for hops in feeds:
        ours = bench.median_of_medians(ns[hops]) / 1e3 * 1000 / (hops * fb.hop_ms)
        print(f"   edgernn front end, {hops * fb.hop_ms:3.0f} ms a step:        "
              f"{ours / 1e3:6.2f} ms ({ours / silero:.2f}x silero-vad, before any layer)")


if __name__ == "__main__":
    main()
