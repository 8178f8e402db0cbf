"""edgernn next to its peers on one stream and in pools (runtime_bench.py sections 5 and 6).

Reference paths, built from the same PyTorch network:

- **edgernn's files**, fp32 and int8: compact (plain operators) and lean (one ``ai.edgernn``
  node per layer, run by edgernn's kernels; also with the kernels turned off, the plain-ONNX
  functions the browser and Triton run: for the fp32 file, ONNX Runtime's own LSTM/GRU/RNN);
- **LiteRT** 2.3 (``ai-edge-litert``) on the files its own tools write from the same module
  (benchmarks/litert_ref.py): litert-torch's converter for fp32, ai-edge-quantizer's
  dynamic-range recipe for int8; batched files for the pools;
- **ONNX Runtime's own int8 LSTM**: ``quantize_dynamic`` (per-channel, reduce_range: its most
  accurate setting, benchmarks/int8_error.py) on the hand-built 4-node graph (two ``LSTM``
  kernels and the head) gives two ``DynamicQuantizeLSTM`` kernels, called the fastest plain way
  (IOBinding, C-level call).

Every path runs on one thread; all paths of a section alternate in rounds (medians of round
medians).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _edgernn_files(net, tmp: Path, cell: str) -> dict:
    from edgernn.exporters import export
    from edgernn.exporters.quant.quantize import Gate, quantize

    files = {}
    for ops in ("compact", "lean"):
        fp32 = export(net, tmp / f"{cell}-{ops}.onnx", ops=ops).path
        int8 = tmp / f"{cell}-{ops}.int8.onnx"
        quantize(fp32, int8, gate=Gate(horizon=300, check_metric=False), force=True,
                 measure_latency=False)
        files[f"edgernn {ops} fp32"], files[f"edgernn {ops} int8"] = fp32, int8
    return files


def ort_int8_lstm(net, tmp: Path):
    """The plain call on ONNX Runtime's own int8 LSTM (the 4-node graph, quantize_dynamic)."""
    from int8_error import ORT_SETTINGS
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from runtime_bench import four_node, four_node_call

    fp32 = four_node(net, tmp / "four.onnx")
    int8 = tmp / "four.int8.onnx"
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8,
                     **ORT_SETTINGS["per channel, reduce range"])
    return four_node_call(int8, net.config)


SIZES = ((40, 128, 10), (64, 256, 12))      # input -> hidden x 2 layers -> output


def network(cell: str, size=SIZES[0]):
    """The keyword network with ``cell`` at ``size`` (random weights: speed does not depend on
    training)."""
    from edgernn.models import build
    from edgernn.tasks import get_task

    i, h, o = size
    config = get_task("classify").model.replace(cell=cell, input_size=i, hidden_size=h,
                                              output_size=o)
    return build(config, seed=0).eval()


def one_stream(cell: str, rounds: int, per: int, tmp: Path, size=SIZES[0],
               rates: dict | None = None) -> dict:
    """Per-step microseconds of every path for the keyword network with ``cell`` at ``size``;
    with ``rates`` (roofline.peak_rates) each path's arithmetic bound too."""
    import litert_ref
    import roofline

    from edgernn.runtime import bench, kernels, load

    net = network(cell, size)
    tag = f"{cell}-{'x'.join(map(str, size))}"
    frame = np.random.default_rng(0).normal(size=net.config.input_size).astype(np.float32)
    fns, work = {}, {}
    files = _edgernn_files(net, tmp, tag)
    for name, path in files.items():
        stream = load(path, threads=1).stream(normalize=False)
        fns[name] = (lambda s=stream: s.step(frame))
        work[name] = roofline.step_work(path)
    for precision in ("fp32", "int8"):     # the lean files' plain functions (fp32: ONNX's own
        with kernels.turned_off():          # LSTM/GRU/RNN, what the lean fp32 file ran before)
            stream = load(files[f"edgernn lean {precision}"], threads=1).stream(normalize=False)
        fns[f"edgernn lean {precision}, functions"] = (lambda s=stream: s.step(frame))
    if cell == "lstm" and size == SIZES[0]:
        fns["onnxruntime int8 LSTM kernel"] = ort_int8_lstm(net, tmp)
    macs = net.config.macs_per_step()
    for (kind, _), path in litert_ref.convert(net, tmp / f"litert-{tag}").items():
        stream = litert_ref.Stream(path)
        fns[f"litert {kind}"] = (lambda s=stream: s.step(frame))
        work[f"litert {kind}"] = {"fp32_macs": macs * (kind == "fp32"),
                                  "int8_macs": macs * (kind == "int8"),
                                  "weight_bytes": path.stat().st_size}
    times = bench.interleaved(fns, rounds * per, rounds=rounds)
    us = {k: bench.median_of_medians(v) / 1e3 for k, v in times.items()}
    out = {"us": us, "ratios": {
        "edgernn int8 / edgernn fp32 (lean)": us["edgernn lean int8"] / us["edgernn lean fp32"],
        "edgernn int8 / edgernn fp32 (compact)":
            us["edgernn compact int8"] / us["edgernn compact fp32"],
        "edgernn lean int8: kernels / functions":
            us["edgernn lean int8"] / us["edgernn lean int8, functions"],
        "edgernn lean fp32: kernels / functions":
            us["edgernn lean fp32"] / us["edgernn lean fp32, functions"],
        "edgernn lean fp32 / litert fp32": us["edgernn lean fp32"] / us["litert fp32"],
        "edgernn lean int8 / litert int8": us["edgernn lean int8"] / us["litert int8"]}}
    if rates:
        out["bound_us"] = {k: roofline.bound_us(w, rates) for k, w in work.items()}
        out["work"] = work
    return out


def pools(cell: str, counts, steps: int, tmp: Path) -> dict:
    """Per stream-step microseconds: an edgernn pool (step_many) against LiteRT's batched
    file (one invoke for all streams), fp32 and int8."""
    import litert_ref

    from edgernn.runtime import bench, kernels, load

    net = network(cell)
    config = net.config
    files = _edgernn_files(net, tmp, f"pool-{cell}")
    lite = litert_ref.convert(net, tmp / f"litert-pool-{cell}", counts)
    out = {}
    for n in counts:
        frames = np.random.default_rng(n).normal(size=(n, config.input_size)).astype(np.float32)
        fns = {}
        for name in ("edgernn compact fp32", "edgernn compact int8", "edgernn lean fp32",
                     "edgernn lean int8"):
            pool = load(files[name], threads=1).pool(normalize=False)
            ids = [pool.open() for _ in range(n)]
            fns[name] = (lambda p=pool, i=ids: p.step_many(i, frames))
        with kernels.turned_off():          # ONNX Runtime's own recurrent kernels, batched
            pool = load(files["edgernn lean fp32"], threads=1).pool(normalize=False)
        ids = [pool.open() for _ in range(n)]
        fns["edgernn lean fp32, functions"] = (lambda p=pool, i=ids: p.step_many(i, frames))
        for kind in ("fp32", "int8"):
            stream = litert_ref.Stream(lite[kind, n])
            fns[f"litert {kind} batched"] = (lambda s=stream: s.step_many(frames))
        times = bench.interleaved(fns, steps, rounds=5)
        us = {k: bench.median_of_medians(v) / 1e3 / n for k, v in times.items()}
        int8 = min(("edgernn compact int8", "edgernn lean int8"), key=us.get)
        fp32 = min(("edgernn compact fp32", "edgernn lean fp32"), key=us.get)
        out[n] = {"us_per_stream_step": us, "best int8": int8, "best fp32": fp32,
                  "edgernn int8 / litert int8": us[int8] / us["litert int8 batched"],
                  "edgernn fp32 / litert fp32": us[fp32] / us["litert fp32 batched"]}
    return out
