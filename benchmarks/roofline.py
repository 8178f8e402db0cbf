"""The physical limit of a streamed step on this CPU, beside each path's measured time.

For a step file: its multiply-accumulates per step by precision (fp32, and 8-bit integer) and its
weight bytes, read from the file's own operators; this CPU's measured peak rates on one thread
(float: ONNX Runtime's MatMul on a large product; 8-bit: ONNX Runtime's MatMulInteger on a large
product, and edgernn's own integer product, one activation row against weights resident in the
cache, on the path in use); and the lower bound they give: fp32 MACs / float rate + int8 MACs /
int8 rate (the better of the two int8 rates). A path's measured time over that bound is how far
it is from what the arithmetic alone costs; what is left is per-call overhead, element-wise work
and memory traffic.
"""

from __future__ import annotations

import time

import numpy as np

RECURRENT = {"LSTM": 4, "GRU": 3, "RNN": 1}


def step_work(path) -> dict:
    """{"fp32_macs", "int8_macs", "weight_bytes"} of one step of one stream of a step file."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    fp32 = int8 = 0
    for node in model.graph.node:
        shapes = [inits[i].shape for i in node.input if i in inits]
        types = [inits[i].dtype for i in node.input if i in inits]
        if node.op_type in ("MatMul", "Gemm") and shapes:
            fp32 += int(np.prod(shapes[0]))
        elif node.op_type in ("MatMulInteger", "MatMulIntegerToFloat") and shapes:
            int8 += int(np.prod(shapes[0]))
        elif node.op_type in RECURRENT and len(shapes) >= 2:
            fp32 += int(np.prod(shapes[0])) + int(np.prod(shapes[1]))
        elif node.domain == "ai.edgernn":
            for shape, dtype in zip(shapes, types):
                if len(shape) != 2:
                    continue                         # scales and biases
                if dtype == np.uint8:
                    int8 += int(np.prod(shape))
                else:
                    fp32 += int(np.prod(shape))
    return {"fp32_macs": fp32, "int8_macs": int8,
            "weight_bytes": int(sum(a.nbytes for a in inits.values()))}


def _best_rate(run, macs: int, calls: int, rounds: int = 7) -> float:
    """MACs per second of the best round (the CPU's peak, not its slow phases)."""
    best = 0.0
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(calls):
            run()
        best = max(best, macs * calls / (time.perf_counter() - t0))
    return best


def _session(op: str, a_type, b, m: int):
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    k = b.shape[0]
    graph = helper.make_graph([helper.make_node(op, ["a", "b"], ["c"])], "peak",
                              [helper.make_tensor_value_info("a", a_type, [m, k])],
                              [helper.make_tensor_value_info(
                                  "c", TensorProto.INT32 if op == "MatMulInteger"
                                  else TensorProto.FLOAT, [m, b.shape[1]])],
                              [numpy_helper.from_array(b, "b")])
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return ort.InferenceSession(model.SerializeToString(), so,
                                providers=["CPUExecutionProvider"])


def peak_rates() -> dict:
    """This CPU's measured peak multiply-accumulate rates on one thread, in GMAC/s."""
    from onnx import TensorProto

    from edgernn.runtime import kernels

    rng = np.random.default_rng(0)
    m, k, n = 256, 512, 512
    a = rng.random((m, k), np.float32)
    s = _session("MatMul", TensorProto.FLOAT, rng.random((k, n), np.float32), m)
    rates = {"fp32 MatMul (ONNX Runtime)": _best_rate(lambda: s.run(None, {"a": a}), m * k * n,
                                                      20)}
    au = rng.integers(0, 256, (m, k), dtype=np.uint8)
    si = _session("MatMulInteger", TensorProto.UINT8,
                  rng.integers(0, 256, (k, n), dtype=np.uint8), m)
    rates["int8 MatMulInteger u8 x u8 (ONNX Runtime)"] = _best_rate(
        lambda: si.run(None, {"a": au}), m * k * n, 20)
    for name in kernels.paths():                         # 128 KB of weights: in the L2 cache
        rates[f"int8 edgernn product ({name}), one row"] = max(
            kernels.rate(name, 512, 256, 2000) for _ in range(7))
    return {k: v / 1e9 for k, v in rates.items()}


def bound_us(work: dict, rates: dict) -> float:
    """The arithmetic's lower bound of one step, in microseconds."""
    float_rate = max(v for k, v in rates.items() if k.startswith("fp32"))
    int_rate = max(v for k, v in rates.items() if k.startswith("int8"))
    return (work["fp32_macs"] / float_rate + work["int8_macs"] / int_rate) / 1e3
