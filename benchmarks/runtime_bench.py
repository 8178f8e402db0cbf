"""Where a streamed step's time goes, and how close the runtime is to its targets.

    python benchmarks/runtime_bench.py [--rounds 9] [--per 300] [--json]

Reference model: the keyword LSTM 40->128x2 + Linear(10) (random weights; speed does not depend
on training), one thread, one step per call, state carried. Every comparison is measured in
this run: the compared paths alternate every ``--per`` calls over ``--rounds`` rounds (this
machine has slow phases of tens of seconds) and each figure is the median of the per-round
medians.

1. stream.step against the fastest plain ONNX Runtime call on the same file (IOBinding with
   double-buffered state and the C-level call), for each step form, and the hand-built 4-node
   form (two LSTM kernels, state in ONNX Runtime's own layout) as the floor of a fp32 step;
2. row-independent int8 against fp32: one stream, and per stream-step in a pool of 64;
3. pools of 64 and 256 streams against the compute floor (2 x MACs / single-thread matmul rate);
4. import time of edgernn.runtime and peak RSS of a streaming process;
5. one stream next to its peers (benchmarks/peers.py), LSTM, GRU and RNN at 40->128x2->10 and
   64->256x2->12: LiteRT fp32 and int8 (the files LiteRT's own converter and quantizer write,
   benchmarks/litert_ref.py) and ONNX Runtime's own int8 LSTM kernel;
6. pools of 64 and 256 next to LiteRT's batched files, fp32 and int8;
7. int8 error against PyTorch over 50 fed-back steps, 20 streams, trained keyword LSTM, GRU and
   RNN, every path (benchmarks/int8_error.py; trains three models: ``--skip-errors`` leaves it
   out);
8. the roofline (benchmarks/roofline.py): this CPU's measured peak product rates, and each
   path's multiply-accumulates, weight bytes and the lower bound the rates give, beside its
   measured time.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def four_node(model, path: Path) -> Path:
    """Two ONNX LSTM kernels, per-layer state (1, batch, hidden), the head: 4 nodes."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from edgernn.cells import FAMILIES

    order = FAMILIES["lstm"].to_onnx_gates

    p = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    c, nodes, inits, inputs, outputs = model.config, [], [], [], []
    hid = c.hidden_size

    def const(name, value):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value, np.float32), name))
        return name

    inputs.append(helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "batch",
                                                                         c.input_size]))
    seq = "x"
    for layer in range(c.num_layers):
        names = [f"h{layer}", f"c{layer}"]
        for n in names:
            inputs.append(helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, "batch", hid]))
            outputs.append(helper.make_tensor_value_info(f"{n}_out", TensorProto.FLOAT,
                                                         [1, "batch", hid]))
        w = order(p[f"rnn.weight_ih_l{layer}"])[None]
        r = order(p[f"rnn.weight_hh_l{layer}"])[None]
        b = np.concatenate([order(p[f"rnn.bias_ih_l{layer}"]),
                            order(p[f"rnn.bias_hh_l{layer}"])])[None]
        nodes.append(helper.make_node("LSTM", [seq, const(f"W{layer}", w), const(f"R{layer}", r),
                                               const(f"B{layer}", b), "", *names],
                                      ["", f"h{layer}_out", f"c{layer}_out"], hidden_size=hid))
        seq = f"h{layer}_out"
    nodes.append(helper.make_node("Squeeze", [seq, const_i64(inits, "ax", [0])], ["top"]))
    nodes.append(helper.make_node("Gemm", ["top", const("hw", p["head.weight"]),
                                           const("hb", p["head.bias"])], ["y"], transB=1))
    outputs.insert(0, helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch",
                                                                             c.output_size]))
    graph = helper.make_graph(nodes, "four_node", inputs, outputs, inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def const_i64(inits, name, value):
    from onnx import numpy_helper

    inits.append(numpy_helper.from_array(np.array(value, np.int64), name))
    return name


def plain_call(path: Path, batch: int = 1):
    """The fastest plain ORT loop on a file: bound buffers, C-level call, frame in, y out."""
    from edgernn.runtime import load
    from edgernn.runtime.bench import PlainORT

    return PlainORT(load(path, threads=1), batch).iobinding()


def four_node_call(path: Path, config):
    """The plain loop on the 4-node file, whose time-major layout needs its own description."""
    from edgernn import __version__
    from edgernn.contract import Contract, Provenance, StateSpec, TensorSpec
    from edgernn.runtime.bench import PlainORT
    from edgernn.runtime.metadata import open_session
    from edgernn.runtime.model import Model

    so = __import__("onnxruntime").SessionOptions()
    so.intra_op_num_threads = 1
    h = config.hidden_size
    states = [StateSpec(n, n, f"{n}_out", [1, "batch", h], ["dir", "batch", "hidden"])
              for layer in range(config.num_layers) for n in (f"h{layer}", f"c{layer}")]
    contract = Contract("step", [TensorSpec("x", [1, "batch", config.input_size])],
                        [TensorSpec("y", ["batch", config.output_size])], states,
                        Provenance(__version__))
    return PlainORT(Model(open_session(path, so), contract, "four"), 1).iobinding()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--per", type=int, default=300)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--skip-errors", action="store_true", help="leave out section 7")
    args = ap.parse_args()

    from edgernn.exporters import export
    from edgernn.exporters.quant.quantize import Gate, quantize
    from edgernn.models import build
    from edgernn.runtime import bench, load
    from edgernn.tasks import get_task

    calls = args.rounds * args.per
    config = get_task("classify").model
    net = build(config, seed=0)
    tmp = Path(tempfile.mkdtemp(prefix="edgernn-rbench-"))
    paths = {ops: export(net, tmp / f"{ops}.onnx", ops=ops).path
             for ops in ("compact", "lean", "fused")}
    int8 = {}
    for ops in ("compact", "lean"):
        out = tmp / f"{ops}.int8.onnx"
        quantize(paths[ops], out, gate=Gate(horizon=300, check_metric=False), force=True,
                 measure_latency=False)
        int8[ops] = out
    frame = np.random.default_rng(0).normal(size=config.input_size).astype(np.float32)
    doc = {"model": "LSTM 40->128x2 + Linear(10)", "macs_per_step": config.macs_per_step(),
           "rounds": args.rounds, "calls_per_round": args.per}

    # 1. stream overhead, per form, against the plain call on the same file
    print("1. stream.step vs plain ORT", file=sys.stderr)
    fns = {}
    for ops, path in {**paths, **{f"{k} int8": v for k, v in int8.items()}}.items():
        stream = load(path, threads=1).stream()
        fns[f"{ops} stream"] = (lambda s=stream: s.step(frame))
        fns[f"{ops} plain"] = plain_call(path)
    four = four_node(net, tmp / "four.onnx")
    fns["4-node plain"] = four_node_call(four, config)
    times = bench.interleaved(fns, calls, rounds=args.rounds)
    us = {k: bench.median_of_medians(v) / 1e3 for k, v in times.items()}
    forms = [k[:-len(" stream")] for k in us if k.endswith(" stream")]
    doc["step_us"] = us
    doc["overhead"] = {f: us[f"{f} stream"] / us[f"{f} plain"] - 1 for f in forms}
    doc["int8_vs_fp32_one_stream"] = {ops: us[f"{ops} int8 stream"] / us[f"{ops} stream"]
                                      for ops in int8}

    # 1b. a chunk of T frames per call: stream.feed against a plain session.run on the file
    print("1b. chunk graph feed vs plain ORT", file=sys.stderr)
    chunk = load(export(net, tmp / "chunk.onnx", graph="chunk").path, threads=1)
    feeds = {}
    for t in (8, 32):
        xs = np.random.default_rng(t).normal(size=(t, config.input_size)).astype(np.float32)
        stream = chunk.stream(normalize=False)
        state = chunk.initial_state(1)
        names = [chunk.output.name] + [s.output for s in chunk.states]
        feed = {chunk.input.name: xs[None], **{s.input: state[s.name] for s in chunk.states}}
        fns = {"feed": (lambda s=stream, x=xs: s.feed(x)),
               "plain": (lambda f=feed: chunk.session.run(names, f))}
        times = bench.interleaved(fns, max(args.rounds * 20, calls // 10), rounds=args.rounds)
        feeds[t] = {k: bench.median_of_medians(v) / 1e3 for k, v in times.items()}
    doc["chunk_feed_us"] = feeds

    # 2-3. pools
    print("2-3. pools", file=sys.stderr)
    rate = matmul_rate_gflops()
    floor = 2 * config.macs_per_step() / (rate * 1e9) * 1e6
    doc["matmul_gflops"], doc["compute_floor_us"] = rate, floor
    pools = {}
    for name, path in (("compact fp32", paths["compact"]), ("compact int8", int8["compact"])):
        pools[name] = bench.pool_throughput(path, (64, 256), steps=max(100, calls // 10),
                                            threads=1)
    doc["pool_us_per_stream_step"] = pools
    doc["pool_int8_vs_fp32_64"] = (pools["compact int8"][64]["pool.step_many"]
                                   / pools["compact fp32"][64]["pool.step_many"])

    # 4. import and memory
    doc["import_runtime_s"] = bench.import_seconds()
    doc["peak_rss_mb"] = {"stream": bench.peak_rss_mb(paths["compact"], "stream"),
                          "plain": bench.peak_rss_mb(paths["compact"], "plain")}
    peer_sections(doc, args, tmp)
    if args.json:
        print(json.dumps(doc, indent=2, default=float))
        return
    _print(doc, forms, floor)
    _print_peers(doc)


def peer_sections(doc: dict, args, tmp: Path) -> None:
    import int8_error
    import peers
    import roofline

    print("8. this CPU's peak product rates (the roofline)", file=sys.stderr)
    doc["peak_gmacs"] = rates = roofline.peak_rates()
    print("5. one stream next to LiteRT and ONNX Runtime's int8 LSTM", file=sys.stderr)
    doc["peers_one_stream"] = {
        f"{cell} {'x'.join(map(str, size))}": peers.one_stream(cell, args.rounds, args.per, tmp,
                                                               size, rates)
        for size in peers.SIZES for cell in ("lstm", "gru", "rnn")}
    print("6. pools next to LiteRT's batched files", file=sys.stderr)
    doc["peers_pools"] = {cell: peers.pools(cell, (64, 256), max(100, args.rounds * args.per
                                                                 // 10), tmp)
                          for cell in ("lstm", "gru", "rnn")}
    if not args.skip_errors:
        print("7. int8 error against PyTorch (trains three keyword models)", file=sys.stderr)
        doc["int8_error"] = int8_error.study(folder=tmp / "trained")


def _print_peers(doc) -> None:
    import int8_error

    print("\n5. one stream, one step per call, next to the peers: us (x the arithmetic's bound, "
          "section 8)")
    for name, r in doc["peers_one_stream"].items():
        bound = r.get("bound_us", {})
        print(f"   {name}: " + ", ".join(
            f"{k} {v:.1f}" + (f" ({v / bound[k]:.1f}x)" if k in bound else "")
            for k, v in r["us"].items()))
        for k, v in r["ratios"].items():
            print(f"      {k}: {v:.2f}x")
    print("\n6. pools, per stream-step (us): edgernn pool.step_many vs LiteRT batched invoke")
    for cell, by_n in doc["peers_pools"].items():
        for n, r in by_n.items():
            print(f"   {cell} {n:4d} streams: " + ", ".join(
                f"{k} {v:.2f}" for k, v in r["us_per_stream_step"].items())
                  + f"; int8 ({r['best int8']}) {r['edgernn int8 / litert int8']:.2f}x, "
                    f"fp32 ({r['best fp32']}) {r['edgernn fp32 / litert fp32']:.2f}x LiteRT")
    if "int8_error" in doc:
        print("\n7. ", end="")
        int8_error.show(doc["int8_error"], 20, 50)
    print("\n8. roofline: this CPU's peak multiply-accumulate rates, one thread (GMAC/s)")
    for k, v in doc["peak_gmacs"].items():
        print(f"   {k}: {v:.1f}")
    print("   per step: fp32 MACs / float rate + int8 MACs / best int8 rate; weight bytes")
    for name, r in doc["peers_one_stream"].items():
        for k, w in r.get("work", {}).items():
            print(f"   {name} {k}: {w['fp32_macs']:,} fp32 + {w['int8_macs']:,} int8 MACs, "
                  f"{w['weight_bytes']:,} bytes: bound {r['bound_us'][k]:.2f} us, measured "
                  f"{r['us'][k]:.1f} us")


def matmul_rate_gflops() -> float:
    """Single-thread float32 matrix-multiply rate of ONNX Runtime on this machine."""
    import time

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
    a, b = np.random.rand(m, k).astype(np.float32), np.random.rand(k, n).astype(np.float32)
    rates = []
    for _ in range(5):                                   # rounds: the best phase's rate
        t0 = time.perf_counter()
        for _ in range(40):
            s.run(None, {"a": a, "b": b})
        rates.append(2 * m * k * n * 40 / (time.perf_counter() - t0) / 1e9)
    return float(np.median(rates))


def _print(doc, forms, floor) -> None:
    us = doc["step_us"]
    print(f"{doc['model']}, {doc['macs_per_step']:,} MACs per step, 1 thread; microseconds, "
          f"median of {doc['rounds']} round medians x {doc['calls_per_round']} calls\n")
    print("1. one stream, one step per call")
    print(f"   {'form':14s} {'stream.step':>11s} {'plain call':>10s} {'overhead':>9s}")
    for f in forms:
        print(f"   {f:14s} {us[f + ' stream']:11.1f} {us[f + ' plain']:10.1f} "
              f"{doc['overhead'][f]:+9.1%}")
    print(f"   {'4-node':14s} {'':11s} {us['4-node plain']:10.1f}   (hand-built floor)")
    print("\n1b. chunk graph, T frames per call: stream.feed vs plain session.run")
    for t, v in doc["chunk_feed_us"].items():
        print(f"   T={t:3d}: feed {v['feed']:.1f} us ({v['feed'] / t:.2f} us a frame), plain "
              f"{v['plain']:.1f} us: {v['feed'] / v['plain']:.2f}x")
    print("\n2. row-independent int8 / fp32")
    for ops, r in doc["int8_vs_fp32_one_stream"].items():
        print(f"   one stream, {ops}: {r:.2f}x")
    print(f"   pool of 64, compact, per stream-step: {doc['pool_int8_vs_fp32_64']:.2f}x")
    print(f"\n3. compute floor {floor:.2f} us per stream-step ({doc['matmul_gflops']:.0f} GFLOP/s)")
    for name, pool in doc["pool_us_per_stream_step"].items():
        for n, v in pool.items():
            print(f"   {name} {n:4d} streams: step {v['pool.step']:.2f} us = "
                  f"{v['pool.step'] / floor:.2f}x floor; step_many {v['pool.step_many']:.2f} = "
                  f"{v['pool.step_many'] / floor:.2f}x; plain batched "
                  f"{v['plain batched session.run']:.2f}")
    print(f"\n4. import edgernn.runtime {doc['import_runtime_s']:.3f} s; peak RSS streaming "
          f"{doc['peak_rss_mb']['stream']:.1f} MB (plain onnxruntime "
          f"{doc['peak_rss_mb']['plain']:.1f} MB)")


if __name__ == "__main__":
    main()
