"""Small sets on defaults: what `train` gives with no options, and why (docs/data.md).

    python benchmarks/small_bench.py [--sets arrow_head,gunpoint,italy_power] [--seeds 0,1,2]

For each UCR set (tests/realdata.py; bundled in the sktime package, no download) and seed it
runs, in subprocesses, as a user would:

    edgernn train --data FILE --seed S --json              (the defaults, sized to the set)
    edgernn train --data FILE --seed S --lr 0.003 --json   (the sized learning rate alone)
    edgernn train --data FILE --seed S --lr 0.001 --json   (a third of it alone)

and prints, per run, the test accuracy, the training loss of the epoch kept, the validation
loss and accuracy of that epoch (what a search scored on the validation split would rank
by), and the learning rate the defaults kept; then the majority class and 1-NN.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import realdata  # noqa: E402

RUNS = {"defaults": (), "lr 3e-3": ("--lr", "0.003"), "lr 1e-3": ("--lr", "0.001")}


def train(data: Path, seed: int, extra: tuple, out: Path) -> dict:
    done = subprocess.run([sys.executable, "-m", "edgernn", "train", "--data", str(data),
                           "--seed", str(seed), *extra, "-o", str(out), "--json"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"train failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default="arrow_head,gunpoint,italy_power")
    ap.add_argument("--seeds", default="0,1,2")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets.split(","):
            data = getattr(realdata, name)(tmp)
            print(f"\n{name}")
            print(f"  {'seed':>4} {'run':9} {'test':>6} {'train loss':>10} {'val loss':>8} "
                  f"{'val acc':>7} {'lr kept':>8} {'seconds':>7}")
            for seed in map(int, args.seeds.split(",")):
                for run, extra in RUNS.items():
                    r = train(data, seed, extra, Path(tmp) / "m.pt")
                    kept = r["history"][max(r["best_epoch"], 1) - 1]
                    print(f"  {seed:>4} {run:9} {r['test']:6.3f} {kept['train_loss']:10.3f} "
                          f"{kept['val_loss']:8.3f} {kept['val_metric']:7.3f} "
                          f"{r['lr']:8.0e} {r['seconds']:7.1f}", flush=True)
            base, splits = r["baseline"], r["data"]["splits"]
            print(f"  majority class {base['majority_accuracy']:.3f}, 1-NN "
                  f"{base.get('one_nn_accuracy', float('nan')):.3f}; {splits['train']} "
                  f"training / {splits['val']} validation sequences")


if __name__ == "__main__":
    main()
