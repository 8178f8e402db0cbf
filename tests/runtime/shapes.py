"""Foreign stateful ONNX files of shapes and dtypes edgernn never exports, built with onnx alone.

Each is one recurrent step ``h' = tanh(x W + h U)`` with an output ``y = reshape(h' V)`` of a
chosen rank, in a chosen dtype, with or without a batch axis. The runtime tests step them
through every path and compare with a plain ONNX Runtime call (:func:`plain_ort`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tests.tolerances import BATCHED_BY_DTYPE

FEATURES, HIDDEN = 3, 5
# name -> (dtype, output shape after the batch axis, batched). Rank counts the batch axis.
SHAPES = {
    "rank1_f32": ("float32", (), True),          # [batch]: one number per stream
    "rank2_f32": ("float32", (4,), True),
    "rank3_f32": ("float32", (2, 3), True),
    "rank4_f32": ("float32", (2, 3, 2), True),
    "rank1_f16": ("float16", (), True),
    "rank3_f16": ("float16", (2, 3), True),
    "rank1_f64": ("float64", (), True),
    "rank2_f64": ("float64", (4,), True),
    "nobatch_f32": ("float32", (4,), False),     # x [F], h [H], y [4]: no batch axis at all
}
NAMES = tuple(f"shape_{k}" for k in SHAPES)
BATCH_ATOL = BATCHED_BY_DTYPE


def build(folder: str | Path) -> list[Path]:
    """Every file of SHAPES in ``folder`` as shape_<key>.onnx."""
    return [build_one(Path(folder) / f"shape_{key}.onnx", dtype, tail, batched, seed=n)
            for n, (key, (dtype, tail, batched)) in enumerate(SHAPES.items())]


def build_one(path: str | Path, dtype: str, tail: tuple, batched: bool, seed: int = 0) -> Path:
    """One such file: output ``[batch, *tail]`` (``[*tail]`` without a batch axis)."""
    import onnx
    from onnx import helper, numpy_helper

    key = Path(path).stem
    rng = np.random.default_rng(seed)
    np_type = np.dtype(dtype)
    elem = helper.np_dtype_to_tensor_dtype(np_type)
    size = int(np.prod(tail)) if tail else 1
    w = numpy_helper.from_array(rng.normal(0, 0.7, (FEATURES, HIDDEN)).astype(np_type), "W")
    u = numpy_helper.from_array(rng.normal(0, 0.5, (HIDDEN, HIDDEN)).astype(np_type), "U")
    v = numpy_helper.from_array(rng.normal(0, 1.0, (HIDDEN, size)).astype(np_type), "V")
    lead = ["batch"] if batched else []
    shape = numpy_helper.from_array(np.array([-1, *tail] if batched else [*tail],
                                             np.int64), "yshape")     # [] is a scalar
    nodes = [helper.make_node("MatMul", ["x", "W"], ["xw"]),
             helper.make_node("MatMul", ["h_in", "U"], ["hu"]),
             helper.make_node("Add", ["xw", "hu"], ["pre"]),
             helper.make_node("Tanh", ["pre"], ["h_out"]),
             helper.make_node("MatMul", ["h_out", "V"], ["hv"]),
             helper.make_node("Reshape", ["hv", "yshape"], ["y"])]
    y_shape = lead + list(tail)
    graph = helper.make_graph(
        nodes, key,
        [helper.make_tensor_value_info("x", elem, lead + [FEATURES]),
         helper.make_tensor_value_info("h_in", elem, lead + [HIDDEN])],
        [helper.make_tensor_value_info("y", elem, y_shape),
         helper.make_tensor_value_info("h_out", elem, lead + [HIDDEN])],
        [w, u, v, shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return Path(path)


def plain_ort(path, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The reference: one plain ``InferenceSession.run`` per frame, state fed back by hand.
    ``frames`` is (T, F) for one stream; returns the outputs (T, *y) and the last state."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x_info = sess.get_inputs()[0]
    dtype = np.float16 if "float16" in x_info.type else (
        np.float64 if "double" in x_info.type else np.float32)
    batched = len(x_info.shape) == 2
    h = np.zeros((1, HIDDEN) if batched else (HIDDEN,), dtype)
    ys = []
    for f in frames:
        x = f.astype(dtype)[None] if batched else f.astype(dtype)
        y, h = sess.run(["y", "h_out"], {"x": x, "h_in": h})
        ys.append(y[0] if batched else y)
    return np.array(ys), h
