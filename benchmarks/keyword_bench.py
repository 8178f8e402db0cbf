"""Spoken keywords: the built-in keyword task's model, trained on espeak-ng's clips alone, run
on real recordings of the words (docs/audio.md).

    python benchmarks/keyword_bench.py [--size 1.0] [--model m.pt]

1. The model, as a user makes it: ``edgernn train --task keyword`` with its defaults (Speech
   Commands' ten keywords, other words as ``_unknown_``, noise as ``_silence_``, said by
   espeak-ng: ``edgernn.tasks.spoken``), and ``export``; or the checkpoint ``--model`` names.
   Printed: the time train took in all (saying the clips, then training), and the held-out
   accuracy on the synthetic clips next to the majority class and the task's useful level.
2. The exported file through ``edgernn run`` on the real one-second Speech Commands clips in
   tests/data/speech (a "yes", a "no", silence and noise, from tflite-micro's micro_speech test
   data): the label at each clip's last hop, and the three most likely labels with their
   probabilities. Nothing was tuned to these clips.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgernn.runtime import load  # noqa: E402

CLIPS = ROOT / "tests" / "data" / "speech"
REAL = {"yes": "sc_yes_1000ms.wav", "no": "sc_no_1000ms.wav",
        "silence": "sc_silence_1000ms.wav", "noise": "sc_noise_1000ms.wav"}


def _cli(*args) -> str:
    done = subprocess.run([sys.executable, "-m", "edgernn", *map(str, args)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"edgernn {args[0]} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def make_model(folder: Path, size: float, ckpt: Path | None) -> Path:
    from edgernn.tasks import get_task

    if ckpt is None:
        ckpt = folder / "kws.pt"
        t0 = time.perf_counter()
        out = json.loads(_cli("train", "--task", "keyword", "--size", size, "-o", ckpt,
                              "--json"))
        took = time.perf_counter() - t0
        print(f"1. train --task keyword --size {size:g}: {out['data']['sequences']} clips, "
              f"{took:.0f} s in all ({took - out['seconds']:.0f} s saying them and starting, "
              f"{out['seconds']:.0f} s training, best epoch {out['best_epoch']}); held-out "
              f"accuracy {out['test']:.3f}, majority class "
              f"{out['baseline']['majority_accuracy']:.3f}, useful level "
              f"{get_task('keyword').threshold:.2f}")
    onnx_path = folder / "kws.onnx"
    _cli("export", ckpt, "-o", onnx_path)
    return onnx_path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=float, default=1.0, help="train's --size")
    ap.add_argument("--model", type=Path, help="a trained keyword checkpoint (default: train)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = make_model(Path(tmp), args.size, args.model)
        model = load(path)
        print("2. real Speech Commands clips, the label at the last hop (edgernn run "
              "--every-hop), and the three most likely")
        for said, name in REAL.items():
            lines = _cli("run", path, CLIPS / name, "--every-hop").splitlines()
            last = json.loads(lines[-1])
            p = model.stream().probabilities(np.asarray(last["y"]))
            top = ", ".join(f"{model.labels[i]} {p[i]:.2f}" for i in np.argsort(-p)[:3])
            print(f"   {said:8s} -> {last['label']:10s} ({top})")


if __name__ == "__main__":
    main()
