"""Soak: memory and speed over a million steps, and threads that never mix state.

    python benchmarks/soak_bench.py [--steps 1000000] [--json]

For the keyword model (LSTM 40->128x2->10) as fp32 and every int8 mode edgernn writes:

1. one stream stepped ``--steps`` times in a fresh process that imports only the runtime, as
   a device would: steps/s and resident memory (VmRSS) at every 100k; the spread of RSS after
   the first 100k must stay within 2 MB (no leak);
2. 8 threads x 16 streams x 1000 steps, each stream its own, against a single-threaded replay
   of the same streams: the number of outputs that differ (must be 0);
3. the same with one shared pool: each thread steps its 16 streams with ``pool.step``; the
   replay makes the same calls one after another (same batches): mismatches (must be 0).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

THREADS, STREAMS, STEPS = 8, 16, 1000


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def artifacts(folder: Path) -> dict[str, Path]:
    from edgernn.checkpoint import save_checkpoint
    from edgernn.exporters import export
    from edgernn.exporters.quant.quantize import Gate, quantize
    from edgernn.tasks import get_task
    from edgernn.training import fit

    task = get_task("classify")
    result = fit(task, task.generate(size=0.3), training=task.training.replace(epochs=3),
                 verbose=False)
    ckpt = save_checkpoint(folder / "kw.pt", result.checkpoint())
    paths = {"fp32": export(ckpt, folder / "kw.onnx", ops="compact").path}
    for mode in ("dynamic", "static"):
        out = folder / f"kw.{mode}.onnx"
        quantize(paths["fp32"], out, mode=mode, checkpoint=ckpt, gate=Gate(horizon=500),
                 force=True, measure_latency=False)
        paths[f"int8 {mode}"] = out
    return paths


def soak(path: Path, steps: int) -> dict:
    from edgernn.runtime import load

    stream = load(path, threads=1).stream()
    frames = np.random.default_rng(0).normal(size=(1000, 40)).astype(np.float32)
    marks, t0 = [], time.perf_counter()
    for i in range(1, steps + 1):
        stream.step(frames[i % 1000])
        if i % 24 == 0:
            stream.reset()                               # a spotter resets per clip
        if i % 100_000 == 0:
            now = time.perf_counter()
            marks.append({"steps": i, "steps_per_s": 100_000 / (now - t0), "rss_mb": rss_mb()})
            t0 = now
    after = [m["rss_mb"] for m in marks[1:]] or [m["rss_mb"] for m in marks]
    return {"marks": marks, "rss_spread_mb": max(after) - min(after)}


def _frames(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(STEPS, 40)).astype(np.float32)


def threads_own_streams(path: Path) -> int:
    from edgernn.runtime import load

    model = load(path, threads=1)
    inputs = {s: _frames(s) for s in range(THREADS * STREAMS)}
    got = {}

    def work(t):
        mine = range(t * STREAMS, (t + 1) * STREAMS)
        streams = {s: model.stream() for s in mine}
        for s in mine:
            got[s] = np.stack([streams[s].step(f) for f in inputs[s]])

    workers = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    mismatches = 0
    for s in inputs:                                     # the replay: one stream at a time
        alone = model.stream()
        mismatches += int((got[s] != np.stack([alone.step(f) for f in inputs[s]])).any(-1).sum())
    return mismatches


def _pool_run(model, inputs, threaded: bool) -> dict:
    pool = model.pool()
    ids = {s: pool.open() for s in inputs}
    out = {s: [] for s in inputs}

    def work(t):
        mine = list(range(t * STREAMS, (t + 1) * STREAMS))
        for step in range(STEPS):
            result = pool.step({ids[s]: inputs[s][step] for s in mine})
            for s in mine:
                out[s].append(result[ids[s]])

    if threaded:
        workers = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    else:
        for t in range(THREADS):
            work(t)
    return {s: np.stack(v) for s, v in out.items()}


def threads_shared_pool(path: Path) -> int:
    from edgernn.runtime import load

    model = load(path, threads=1)
    inputs = {s: _frames(s) for s in range(THREADS * STREAMS)}
    threaded = _pool_run(model, inputs, True)
    replay = _pool_run(model, inputs, False)
    return sum(int((threaded[s] != replay[s]).any(-1).sum()) for s in inputs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--soak", type=Path, help=argparse.SUPPRESS)    # the child process
    args = ap.parse_args()
    if args.soak:
        print(json.dumps(soak(args.soak, args.steps)))
        return
    doc = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in artifacts(Path(tmp)).items():
            print(f"soaking {name}...", file=sys.stderr)
            child = subprocess.run([sys.executable, __file__, "--soak", str(path), "--steps",
                                    str(args.steps)], capture_output=True, text=True,
                                   check=True)
            doc[name] = {"soak": json.loads(child.stdout),
                         "mismatches_own_streams": threads_own_streams(path),
                         "mismatches_shared_pool": threads_shared_pool(path)}
    if args.json:
        print(json.dumps(doc, indent=2))
        return
    for name, r in doc.items():
        s = r["soak"]
        print(f"{name}: {args.steps:,} steps")
        for m in s["marks"]:
            print(f"  {m['steps']:>9,}  {m['steps_per_s']:>9,.0f} steps/s  RSS {m['rss_mb']:.1f} MB")
        print(f"  RSS spread after the first 100k: {s['rss_spread_mb']:.2f} MB "
              f"({'flat' if s['rss_spread_mb'] <= 2 else 'NOT flat'} within 2 MB)")
        print(f"  mismatches, {THREADS} threads x {STREAMS} streams x {STEPS} steps vs a "
              f"single-threaded replay: own streams {r['mismatches_own_streams']}, shared pool "
              f"{r['mismatches_shared_pool']}")


if __name__ == "__main__":
    main()
