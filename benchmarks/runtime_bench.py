"""Where a streamed step's time goes, and how close the runtime is to its targets.

    python benchmarks/runtime_bench.py [--steps 3000] [--json]

Reference model: LSTM 40->128x2 + Linear(10), batch 1, one step per call, state carried, one
thread (the model the targets in the runtime issue are stated for). Everything is measured in
this run on this machine; alternatives are interleaved so machine noise hits them alike.

1. step latency per graph form (fused, decomposed) and session setting, stream vs plain ORT;
2. per-operator time inside ONNX Runtime (its profiler), i.e. where a step goes;
3. pool throughput at 64 and 256 streams against the compute floor: 2 x MACs per step divided
   by this machine's measured single-thread matrix-multiply rate (ONNX Runtime MatMul and
   numpy, the faster of the two);
4. import time of edgernn.runtime and peak RSS of a streaming process.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def op_profile(path, steps=1000) -> dict:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.enable_profiling = True
    so.profile_file_prefix = os.path.join(tempfile.gettempdir(), "edgernn-prof")
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    feeds = {i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], np.float32)
             for i in s.get_inputs()}
    for _ in range(steps):
        s.run(None, feeds)
    events = json.load(open(s.end_profiling()))
    per_op, count = collections.defaultdict(float), collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_op[e["args"]["op_name"]] += e["dur"] / steps
            count[e["args"]["op_name"]] += 1
    total = sum(per_op.values())
    return {op: {"us_per_step": v, "nodes": count[op] // steps, "share": v / total}
            for op, v in sorted(per_op.items(), key=lambda kv: -kv[1])}


def matmul_rate_gflops() -> dict:
    """Single-thread float32 matrix-multiply rate: ONNX Runtime MatMul and numpy (1 thread)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    m, k, n = 256, 512, 512
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "mm",
                              [helper.make_tensor_value_info("a", TensorProto.FLOAT, [m, k]),
                               helper.make_tensor_value_info("b", TensorProto.FLOAT, [k, n])],
                              [helper.make_tensor_value_info("c", TensorProto.FLOAT, [m, n])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    a = np.random.rand(m, k).astype(np.float32)
    b = np.random.rand(k, n).astype(np.float32)
    for _ in range(20):
        s.run(None, {"a": a, "b": b})
    t0 = time.perf_counter()
    reps = 200
    for _ in range(reps):
        s.run(None, {"a": a, "b": b})
    ort_rate = 2 * m * k * n * reps / (time.perf_counter() - t0) / 1e9
    code = ("import numpy as np, time; a=np.random.rand(256,512).astype(np.float32); "
            "b=np.random.rand(512,512).astype(np.float32); [a@b for _ in range(20)]; "
            "t=time.perf_counter(); [a@b for _ in range(200)]; "
            "print(2*256*512*512*200/(time.perf_counter()-t)/1e9)")
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE",
                                                            "OPENBLAS_L2_SIZE")}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    np_rate = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                   env=env, check=True).stdout)
    del onnx
    return {"onnxruntime_matmul": ort_rate, "numpy_matmul": np_rate,
            "best": max(ort_rate, np_rate)}


def settings_sweep(paths: dict, steps: int) -> dict:
    import onnxruntime as ort

    from edgernn.runtime import bench
    from edgernn.runtime.model import Model
    from edgernn.runtime.metadata import contract_of, open_session

    fns = {}
    for form, path in paths.items():
        for level in ("basic", "all"):
            for spin in (True, False):
                so = ort.SessionOptions()
                so.intra_op_num_threads = 1
                so.inter_op_num_threads = 1
                so.graph_optimization_level = {
                    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[level]
                if not spin:
                    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
                session = open_session(path, so)
                model = Model(session, contract_of(session), "bench")
                stream = model.stream(normalize=False)
                frame = np.random.default_rng(0).normal(size=stream.frame_shape).astype(
                    np.float32)
                fns[f"{form} opt={level} spin={'on' if spin else 'off'}"] = (
                    lambda s=stream, f=frame: s.step(f))
    times = bench.interleaved(fns, steps, rounds=10)
    return {k: float(np.median(v) / 1e3) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from edgernn.exporters import export
    from edgernn.models import build
    from edgernn.runtime import bench
    from edgernn.tasks import get_task

    config = get_task("keyword").model
    model = build(config, seed=0)
    tmp = Path(tempfile.mkdtemp(prefix="edgernn-bench-"))
    paths = {ops: export(model, tmp / f"{ops}.onnx", ops=ops).path
             for ops in ("fused", "decomposed", "compact")}
    doc = {"model": "LSTM 40->128x2 + Linear(10)", "macs_per_step": config.macs_per_step()}
    doc["latency"] = {ops: bench.step_latency(p, steps=args.steps) for ops, p in paths.items()}
    doc["settings_us"] = settings_sweep(paths, args.steps)
    doc["op_profile"] = {ops: op_profile(p) for ops, p in paths.items()}
    rate = matmul_rate_gflops()
    floor_us = 2 * config.macs_per_step() / (rate["best"] * 1e9) * 1e6
    doc["matmul_gflops"] = rate
    doc["compute_floor_us_per_stream_step"] = floor_us
    pool = bench.pool_throughput(paths["fused"], (64, 256), steps=300)
    lone = doc["latency"]["fused"]["stream.step"]["p50_us"]
    doc["pool"] = {n: {**v, "x_floor": v["pool.step"] / floor_us,
                       "x_lone_step": v["pool.step"] / lone} for n, v in pool.items()}
    doc["import_runtime_s"] = bench.import_seconds()
    doc["peak_rss_mb"] = {"stream": bench.peak_rss_mb(paths["fused"], "stream"),
                          "plain": bench.peak_rss_mb(paths["fused"], "plain")}
    if args.json:
        print(json.dumps(doc, indent=2, default=float))
        return
    print(f"{doc['model']}, {doc['macs_per_step']:,} MACs per step; microseconds, medians\n")
    print("1. step latency (one thread)")
    for ops, lat in doc["latency"].items():
        print(f"   {ops:11s} stream.step {lat['stream.step']['p50_us']:7.1f}   plain run "
              f"{lat['plain session.run']['p50_us']:7.1f}   plain iobinding "
              f"{lat.get('plain iobinding', {}).get('p50_us', float('nan')):7.1f}   overhead "
              f"{lat['stream_overhead_vs_fastest_plain']:+.1%}")
    print("\n   session settings (stream.step):")
    for k, v in sorted(doc["settings_us"].items(), key=lambda kv: kv[1]):
        print(f"   {k:40s} {v:7.1f}")
    print("\n2. where a step goes (ONNX Runtime profiler, per step; profiling adds overhead)")
    for ops, prof in doc["op_profile"].items():
        parts = ", ".join(f"{op} {v['us_per_step']:.1f} ({v['nodes']} nodes)"
                          for op, v in list(prof.items())[:6])
        print(f"   {ops:11s} {parts}")
    print(f"\n3. compute floor: {rate['best']:.1f} GFLOP/s single-thread (ORT {rate['onnxruntime_matmul']:.1f}, "
          f"numpy {rate['numpy_matmul']:.1f}) -> {floor_us:.2f} us per stream-step")
    for n, v in doc["pool"].items():
        print(f"   pool {n:4d} streams: {v['pool.step']:6.2f} us/stream-step = {v['x_floor']:.2f}x "
              f"floor, {v['x_lone_step']:.3f}x lone step; step_many {v['pool.step_many']:.2f} "
              f"({v['pool.step_many'] / floor_us:.2f}x floor); plain batched run "
              f"{v['plain batched session.run']:.2f}")
    print(f"\n4. import edgernn.runtime {doc['import_runtime_s']:.3f} s; peak RSS streaming "
          f"{doc['peak_rss_mb']['stream']:.1f} MB (plain onnxruntime "
          f"{doc['peak_rss_mb']['plain']:.1f} MB)")


if __name__ == "__main__":
    main()
