"""Spoken keywords: a model trained on espeak-ng's clips alone, run on real recordings of the
words (docs/audio.md).

    python benchmarks/keyword_bench.py [--per-class 100] [--model m.pt]

1. The model, as a user makes it: ``edgernn.tasks.speech.synthesize`` (Speech Commands' ten
   keywords, other words as ``_unknown_``, noise as ``_silence_``, said by espeak-ng) written as
   a Speech Commands folder, then ``edgernn train --task keyword --data FOLDER`` with its
   defaults, and ``export``; or the checkpoint ``--model`` names. Printed: the time each took
   and the held-out accuracy on the synthetic clips, next to the majority class.
2. The exported file through ``edgernn run`` on the real one-second Speech Commands clips in
   tests/data/speech (a "yes", a "no", silence and noise, from tflite-micro's micro_speech test
   data): the label at each clip's last hop, and the three most likely labels with their
   probabilities. Nothing was tuned to these clips; they were not looked at before the model
   was trained.
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


def make_model(folder: Path, per_class: int, ckpt: Path | None) -> Path:
    from edgernn.tasks import speech, wavfolder

    if ckpt is None:
        t0 = time.perf_counter()
        clips = wavfolder.write(speech.synthesize(per_class, seed=0), folder / "clips")
        t1 = time.perf_counter()
        ckpt = folder / "kws.pt"
        out = json.loads(_cli("train", "--task", "keyword", "--data", clips, "-o", ckpt,
                              "--json"))
        t2 = time.perf_counter()
        print(f"1. {per_class} espeak-ng clips a label ({len(speech.LABELS)} labels): said in "
              f"{t1 - t0:.0f} s, trained in {t2 - t1:.0f} s (best epoch {out['best_epoch']}); "
              f"held-out accuracy {out['test']:.3f}, majority class "
              f"{out['baseline']['majority_accuracy']:.3f}")
    onnx_path = folder / "kws.onnx"
    _cli("export", ckpt, "-o", onnx_path)
    return onnx_path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--model", type=Path, help="a trained keyword checkpoint (default: train)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = make_model(Path(tmp), args.per_class, args.model)
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
