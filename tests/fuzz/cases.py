"""The fuzz suite's cases: ONNX files that reach edgernn's int8 kernels, good and bad.

Two sources, both deterministic:
- **crafted**: one ``ai.edgernn`` node per file, drawn by Hypothesis: any of the operators (the
  Step ones with the (1, B, .) shapes of ONNX's own operator, which is their function),
  sizes around the vector widths (1, 31, 32, 33, ...), weights that fit or are cut, grown,
  transposed, flattened, emptied or of another dtype, u8 weights holding every byte (0
  included), float weights with NaN or infinity, inputs declared fixed, symbolic or wrong, and
  frames that fit or not, with values on the 8-bit grid, huge, or NaN;
- **mutated**: the real lean int8 LSTM, GRU and RNN files, and the lean fp32 LSTM file (its Step
  nodes), of ``corpus/`` with one initializer
  or one graph input changed in shape, dtype or values.

Each case is (name, model bytes, feed). :mod:`tests.fuzz.child` runs them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from hypothesis import strategies as st
from onnx import TensorProto as T
from onnx import helper, numpy_helper

from edgernn.exporters.quant import cells8

CORPUS = Path(__file__).parent / "corpus"
OPS = sorted(cells8.NAMES)
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
SIZES = [1, 2, 3, 5, 16, 31, 32, 33, 64]
WEIGHT_CHANGES = ["shrink", "grow", "swap", "flat", "extra_axis", "empty", "dtype"]
FRAME_CHANGES = ["shrink", "grow", "rows", "scalar", "empty"]
VALUES = ["grid", "huge", "nan"]


def signature(op: str) -> list[str]:
    """The operator's inputs in order (what its function takes)."""
    return cells8.inputs_of(op)


def _expected(op: str, name: str, hidden: int, inputs: int, width: int) -> tuple:
    """(shape, dtype) each input takes in a well-formed file."""
    quantized = op.endswith("Q") or op == "Dense8"
    if name == "W":
        return ((width, inputs), np.uint8) if quantized else ((inputs, width), np.float32)
    if name == "R":
        return ((hidden, width), np.float32) if cells8.float_r(op) else ((width, hidden), np.uint8)
    return (width,), np.float32                                # Ws, Wb, B, Rs, Rb


def _change(shape: tuple, dtype, how: str):
    if how == "shrink":
        return shape[:-1] + (max(shape[-1] // 2, 1) if shape[-1] > 1 else 2,), dtype
    if how == "grow":
        return shape[:-1] + (shape[-1] + 1,), dtype
    if how == "swap":
        return tuple(reversed(shape)), dtype
    if how == "flat":
        return (int(np.prod(shape)),), dtype
    if how == "extra_axis":
        return (1,) + shape, dtype
    if how == "empty":
        return shape[:-1] + (0,), dtype
    if how == "dtype":
        return shape, {np.uint8: np.int8, np.float32: np.float64}.get(dtype, np.float32)
    return shape, dtype


def _values(shape, dtype, kind: str, rng) -> np.ndarray:
    if dtype in (np.uint8, np.int8):                # 1..255 as edgernn writes, unless "grid"
        info = np.iinfo(dtype)
        v = rng.integers(info.min + 1, int(info.max) + 1, size=shape)
        if kind == "grid" and v.size:                          # every byte, in order
            v.flat[:] = (np.arange(v.size) % 256) + info.min
        return v.astype(dtype)
    v = rng.normal(0, 0.5, shape)
    if kind == "huge":
        v = v * 1e30
    elif kind == "nan" and v.size:
        v.flat[rng.integers(v.size)] = rng.choice([np.nan, np.inf, -np.inf])
    elif kind == "grid":
        v = rng.integers(-128, 128, size=shape) / 127.0        # on the 8-bit grid, ties included
    return np.asarray(v, dtype)


@st.composite
def crafted(draw):
    """A one-node model and a feed: ``(name, bytes, feed)``."""
    op = draw(st.sampled_from(OPS))
    hidden, inputs = draw(st.sampled_from(SIZES)), draw(st.sampled_from(SIZES))
    rows = draw(st.sampled_from([0, 1, 2, 5]))
    lead = draw(st.sampled_from([[], [1]]))                    # h (B, H) or the lean (1, B, H)
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    family = next((f for f in GATES if op.startswith(f)), None)
    width = hidden if op == "Dense8" else GATES[family] * hidden
    step = op.endswith("Step")
    if step:                 # ONNX's operator's (1, B, .), and no empty batch (see below)
        lead, rows = [1], rows or 1
    names = signature(op)
    inits, graph_inputs, feed, told = [], [], {}, [op, f"H{hidden}", f"I{inputs}", f"B{rows}"]
    # at most one input of another shape or dtype, and at most one with special values: a case
    # tests one thing, and most cases fit (else nearly every file would be refused at load)
    reshaped = draw(st.sampled_from([None] * len(names) + names))
    special = draw(st.sampled_from([None] * len(names) + names))
    for name in names:
        if name in ("x", "h", "c"):
            size = inputs if name == "x" else hidden
            shape = ([rows] if name == "x" and not step else lead + [rows]) + [size]
            how = draw(st.sampled_from(FRAME_CHANGES)) if name == reshaped else "fit"
            declared = draw(st.sampled_from(["symbolic", "fixed", "none"]))
            shape_t = tuple(shape)
            if how == "scalar":
                shape_t = ()
            elif how != "fit":
                shape_t, _ = _change(shape_t, np.float32,
                                     {"rows": "extra_axis"}.get(how, how))
            kind = draw(st.sampled_from(VALUES)) if name == special else "normal"
            value = _values(shape_t, np.float32, kind, rng)
            if name == "x" and (op.endswith("Q") or op == "Dense8"):   # bounded
                value = np.asarray(np.tanh(value) if kind == "normal" else value, np.float32)
            feed[name] = value
            dims = (None if declared == "none" else
                    [f"{name}{i}" if declared == "symbolic" and i < len(shape_t) - 1 else d
                     for i, d in enumerate(shape_t)])
            graph_inputs.append(helper.make_tensor_value_info(name, T.FLOAT, dims))
            told.append(f"{name}{shape_t}:{how}:{kind}:{declared}")
            continue
        shape, dtype = _expected(op, name, hidden, inputs, width)
        how = draw(st.sampled_from(WEIGHT_CHANGES)) if name == reshaped else "fit"
        shape, dtype = _change(shape, dtype, how)
        kind = draw(st.sampled_from(VALUES)) if name == special else "normal"
        value = _values(shape, dtype, kind, rng)
        if name in ("Ws", "Rs") and dtype == np.float32 and kind == "normal":
            value = np.abs(value) / 127                        # a weight scale times 1/127
        if draw(st.booleans()) or how != "fit":
            inits.append(numpy_helper.from_array(value, name))
        else:                                                   # weights fed as inputs
            graph_inputs.append(helper.make_tensor_value_info(
                name, helper.np_dtype_to_tensor_dtype(value.dtype), list(value.shape)))
            feed[name] = value
        if how != "fit" or kind != "normal":
            told.append(f"{name}{shape}:{how}:{kind}")
    outs = ["y"] if op == "Dense8" else (["h_new", "c_new"] if op.startswith("LSTM")
                                         else ["h_new"])
    attrs = {}
    if step:                 # the attribute its function's operator reads: fit, wrong, absent
        size = draw(st.sampled_from([hidden] * 4 + [hidden + 1, None]))
        attrs = {} if size is None else {"hidden_size": size}
        if size != hidden:
            told.append(f"hidden_size={size}")
    node = helper.make_node(op, names, outs, name=f"{op}_fuzz", domain=cells8.DOMAIN, **attrs)
    graph = helper.make_graph([node], "fuzz", graph_inputs,
                              [helper.make_tensor_value_info(o, T.FLOAT, None) for o in outs],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    cells8.functions(model, 17)
    model.ir_version = 8
    return " ".join(told), model.SerializeToString(), feed


# ---------------------------------------------------------------------------- mutated


def _feed_for(model: onnx.ModelProto, rows: int, rng) -> dict:
    feed = {}
    for value in model.graph.input:
        dims = [d.dim_value if d.HasField("dim_value") else rows
                for d in value.type.tensor_type.shape.dim]
        feed[value.name] = np.tanh(rng.normal(0, 1, dims)).astype(np.float32)
    return feed


def _mutations(t: onnx.TensorProto, rng):
    """(how, new initializer) for one initializer of a real file."""
    a = numpy_helper.to_array(t)
    yield "shrink", a[..., : max(a.shape[-1] // 2, 1)] if a.shape[-1] > 1 else a[..., :0]
    yield "grow", np.concatenate([a, a[..., :1]], axis=-1)
    yield "rows", np.concatenate([a, a[:1]], axis=0)
    yield "swap", np.ascontiguousarray(a.T)
    yield "flat", a.reshape(-1)
    yield "extra_axis", a[None]
    yield "empty", a[..., :0]
    yield "dtype", a.astype({np.dtype(np.uint8): np.int8}.get(a.dtype, np.float64))
    if a.dtype == np.uint8:
        z = a.copy()
        z.flat[rng.integers(z.size, size=max(z.size // 50, 1))] = 0    # byte 0: weight -128
        yield "zero_bytes", z
        yield "all_zero", np.zeros_like(a)
    else:
        n = a.copy()
        n.flat[rng.integers(n.size)] = np.nan
        yield "nan", n
        yield "huge", a * np.float32(1e38)
        yield "zeros", np.zeros_like(a)


def mutated():
    """Every mutation of every corpus file: ``(name, bytes, feed)``."""
    rng = np.random.default_rng(0)
    for path in sorted(CORPUS.glob("*.onnx")):
        base = onnx.load(path)
        # ONNX Runtime 1.32's own LSTM and GRU kernels abort the process on a batch of 0 rows
        # ("terminate called without an active exception"; its RNN does not), so a file whose
        # functions are those kernels (Step nodes) is not given one; ours return an empty batch.
        for rows in (1, 3) if "fp32" in path.name else (0, 1, 3):
            yield f"{path.name} as it is, {rows} rows", base.SerializeToString(), \
                _feed_for(base, rows, rng)
        ours = {name for node in base.graph.node if cells8.is_op(node) for name in node.input}
        for i, t in enumerate(base.graph.initializer):
            if t.name not in ours:                    # the fp32 file's head and axes: standard
                continue                              # operators', not the kernels'
            for how, value in _mutations(t, rng):
                m = onnx.ModelProto()
                m.CopyFrom(base)
                m.graph.initializer[i].CopyFrom(numpy_helper.from_array(value, t.name))
                yield (f"{path.name} {t.name} {how} {value.shape} {value.dtype}",
                       m.SerializeToString(), _feed_for(base, 2, rng))
        for i, value in enumerate(base.graph.input):           # a graph input declared otherwise
            for last in (1, 2 * value.type.tensor_type.shape.dim[-1].dim_value + 1):
                m = onnx.ModelProto()
                m.CopyFrom(base)
                m.graph.input[i].type.tensor_type.shape.dim[-1].dim_value = last
                yield (f"{path.name} input {value.name} declared last axis {last}",
                       m.SerializeToString(), _feed_for(m, 2, rng))
