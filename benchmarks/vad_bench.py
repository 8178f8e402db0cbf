"""Voice activity on real speech: edgernn's VAD against silero-vad and webrtcvad (docs/audio.md).

    python benchmarks/vad_bench.py [--wav FILE] [--model vad.pt] [--calls 3000] [--rounds 10]

1. The model, as a user makes it: ``edgernn train --task vad`` (built-in espeak-ng mixtures,
   nothing from the recording) and ``export`` with no options (the task's default, a chunk
   graph, which ``edgernn run`` feeds 30 ms a call); then ``export --graph step`` (one hop a
   call) and ``quantize`` on it (int8 takes step graphs); or the checkpoint ``--model`` names.
2. Agreement with silero-vad on ``--wav`` (default: tests/data/speech, 12 s of silero-vad's own
   MIT test recording). The reference is silero-vad's wheel as its users run it:
   ``get_speech_timestamps`` with its defaults (threshold 0.5, pauses under 100 ms merged, 30 ms
   of padding), as speech or silence for each 10 ms hop. edgernn's label is the exported
   file's most likely class at each hop (edgernn.runtime, streamed), and the hops inside the
   events ``edgernn run`` prints from those labels (runtime/events.py: silero-vad's rules
   for pauses and short events, without its padding); webrtcvad (PyPI) labels the same 10 ms
   hops in each of its four modes. Printed: the share of hops
   that agree, and F1 of speech with silero-vad as the reference.
3. Cost of one second of audio, one thread, batch 1, the paths in alternating rounds (median
   of round medians): silero-vad's ONNX file as its wrapper runs it (512 new samples and 64
   before them a call), and edgernn's exported files through edgernn.runtime: the default
   file at 30 ms a call (what ``edgernn run`` does) and 100 ms, and the step graph at 10 ms a
   call, fp32 and int8; and the same network
   exported without its front end behind kaldi-native-fbank computing each hop's frame by
   hand, as an app without edgernn's front end does.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgernn.runtime import bench, load  # noqa: E402
from edgernn.frontend import Fbank  # noqa: E402
from edgernn.runtime.events import events  # noqa: E402
from edgernn.wav import read  # noqa: E402
from tests import audiodata  # noqa: E402

RATE, HOP = Fbank().sample_rate, Fbank().hop


def _cli(*args) -> None:
    done = subprocess.run([sys.executable, "-m", "edgernn", *map(str, args)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"edgernn {args[0]} failed:\n{done.stderr[-2000:]}")


def make_files(folder: Path, ckpt: Path | None) -> dict[str, Path]:
    if ckpt is None:
        ckpt = folder / "vad.pt"
        _cli("train", "--task", "vad", "-o", ckpt)
    files = {"default": folder / "vad.onnx", "step": folder / "vad.step.onnx",
             "int8": folder / "vad.step.int8.onnx"}
    _cli("export", ckpt, "-o", files["default"])
    _cli("export", ckpt, "--graph", "step", "-o", files["step"])
    _cli("quantize", files["step"], "--checkpoint", ckpt, "-o", files["int8"])
    files["features"] = feature_model(ckpt, folder / "vad.features.onnx")
    return files


def feature_model(ckpt_path: Path, out: Path) -> Path:
    """The same network without its front end: a step takes the hop's 40 log-mel values that a
    hand-written front end computes, normalised in the graph as the audio model's are."""
    from edgernn.checkpoint import load_checkpoint
    from edgernn.exporters import export

    ckpt = load_checkpoint(ckpt_path)
    ckpt.preprocessing, ckpt.audio = ckpt.audio.norm, None
    return export(ckpt, out).path


class HandFrontEnd:
    """What an app does without edgernn's front end: kaldi-native-fbank (sherpa-onnx's front
    end) turns each 10 ms hop into a frame, and the feature model takes it."""

    def __init__(self, path: Path, threads: int | None = None):
        import kaldi_native_fbank as knf

        self.fb = Fbank()
        self.bank = knf.OnlineFbank(audiodata.kaldi_options(self.fb))
        self.bank.accept_waveform(RATE, [0.0] * self.fb.tail)        # the same zero start
        self.stream = load(path, threads=threads).stream()

    def step(self, hop: np.ndarray) -> np.ndarray:
        self.bank.accept_waveform(RATE, (hop * self.fb.pcm_scale).tolist())
        frame = self.bank.get_frame(self.bank.num_frames_ready - 1)
        return self.stream.step(np.asarray(frame, np.float32))


def silero_hops(samples: np.ndarray) -> np.ndarray:
    import torch
    from silero_vad import get_speech_timestamps, load_silero_vad

    stamps = get_speech_timestamps(torch.from_numpy(samples), load_silero_vad(onnx=True),
                                   sampling_rate=RATE)
    out = np.zeros(len(samples) // HOP, bool)
    for s in stamps:
        out[s["start"] // HOP:-(-s["end"] // HOP)] = True
    return out


def edgernn_labels(path: Path, samples: np.ndarray) -> list[str]:
    model = load(path)
    steps = len(samples) // HOP
    y = model.stream().feed(samples[:steps * HOP].reshape(steps, HOP))
    return [model.labels[int(i)] for i in y.argmax(-1)]


def event_hops(labels: list[str]) -> np.ndarray:
    """The hops inside the events ``edgernn run`` prints for these labels."""
    out = np.zeros(len(labels), bool)
    for e in events(labels, HOP / RATE):
        out[round(e.start * RATE / HOP):round(e.end * RATE / HOP)] = True
    return out


def webrtc_hops(samples: np.ndarray, mode: int) -> np.ndarray | None:
    try:
        import webrtcvad
    except ImportError:
        return None
    vad = webrtcvad.Vad(mode)
    pcm = np.clip(np.round(samples * 32768), -32768, 32767).astype("<i2")
    return np.array([vad.is_speech(pcm[i:i + HOP].tobytes(), RATE)
                     for i in range(0, len(pcm) // HOP * HOP, HOP)])


def scores(hops: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    agree = float(np.mean(hops == reference))
    f1 = 2 * float(np.sum(hops & reference)) / max(1, int(hops.sum() + reference.sum()))
    return agree, f1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wav", type=Path, default=audiodata.SPEECH)
    ap.add_argument("--model", type=Path, help="a trained VAD checkpoint (default: train one)")
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    samples = read(args.wav, rate=RATE)[0]
    with tempfile.TemporaryDirectory() as tmp:
        files = make_files(Path(tmp), args.model)
        reference = silero_hops(samples)
        print(f"2. {args.wav.name}: {len(samples) / RATE:.1f} s, {len(reference)} hops of 10 ms, "
              f"silero-vad says speech on {reference.mean():.1%}")
        rows = {}
        for k in ("default", "int8"):
            labels = edgernn_labels(files[k], samples)
            name = "default fp32" if k == "default" else "step int8"
            rows[f"edgernn {name}"] = np.array([v == "speech" for v in labels])
            rows[f"edgernn {name}, run's events"] = event_hops(labels)
        hand = HandFrontEnd(files["features"])
        y = np.stack([hand.step(h) for h in samples[:len(reference) * HOP].reshape(-1, HOP)])
        ours = load(files["step"]).stream().feed(samples[:len(reference) * HOP].reshape(-1, HOP))
        print(f"   the same network behind kaldi-native-fbank: outputs within "
              f"{float(np.abs(y - ours).max()):.1e} of the file with the front end inside")
        for mode in range(4):
            got = webrtc_hops(samples, mode)
            if got is not None:
                rows[f"webrtcvad mode {mode}"] = got
        print(f"   {'':36s} {'agreement':>9s} {'F1':>6s} (silero-vad the reference)")
        for name, hops in rows.items():
            agree, f1 = scores(hops, reference)
            print(f"   {name:36s} {agree:9.3f} {f1:6.3f}")
        cost(files, samples, args)


def cost(files: dict[str, Path], samples: np.ndarray, args) -> None:
    import onnx

    from tests.runtime.models import published_vad

    fns, per_second = {}, {}
    vad_path = published_vad()
    if vad_path is not None:
        vad = audiodata.session(onnx.load(str(vad_path)))
        feeds = {"input": np.concatenate([np.zeros(64, np.float32), samples[:512]])[None],
                 "state": np.zeros((2, 1, 128), np.float32), "sr": np.array(RATE, np.int64)}
        fns["silero-vad ONNX, 32 ms a call"] = lambda: vad.run(None, feeds)
        per_second["silero-vad ONNX, 32 ms a call"] = RATE / 512
    for name, key, hops in (("edgernn default, 30 ms a call", "default", 3),
                            ("edgernn default, 100 ms a call", "default", 10),
                            ("edgernn step fp32, 10 ms a call", "step", 1),
                            ("edgernn step int8, 10 ms a call", "int8", 1),
                            ("kaldi-native-fbank + network, 10 ms", "features", 1)):
        stream = (HandFrontEnd(files[key], threads=1) if key == "features" else
                  load(files[key], threads=1).stream())
        x = samples[:hops * HOP].reshape(hops, HOP)
        fns[name] = (lambda s=stream, x=x: s.feed(x)) if hops > 1 else \
            (lambda s=stream, x=x[0]: s.step(x))
        per_second[name] = 100 / hops
    ns = bench.interleaved(fns, args.calls, rounds=args.rounds)
    ms = {k: bench.median_of_medians(v) / 1e6 * per_second[k] for k, v in ns.items()}
    base = next(iter(ms.values()))
    print("3. one second of audio, 1 thread, batch 1 (median of round medians)")
    for name, v in ms.items():
        print(f"   {name:36s} {v:6.2f} ms per second of audio ({v / base:.2f}x the first row)")


if __name__ == "__main__":
    main()
