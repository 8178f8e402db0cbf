"""Row-independent int8: every product's activations quantized without looking at other rows.

ONNX Runtime's dynamic quantizer picks one activation scale for the whole batch, so a pooled
stream's output depends on its neighbours, and the fused kernels it ends up in differ between
CPUs. This rewriter turns each matrix product with constant weights (``Gemm``, ``MatMul``) of
an fp32 graph into ``QuantizeLinear``/``MatMulInteger``/``Cast``/``Mul`` (which ONNX Runtime
fuses into one ``MatMulIntegerToFloat``), choosing each activation's scale so that a row never
depends on another:

- **bounded** activations (an LSTM/GRU/tanh-RNN hidden state, a gate's output: proven to lie in
  [-1, 1] by :func:`bounded`) use that exact static range;
- **input** activations (the frames or embeddings the graph reads before any product) stay
  fp32 by default (``inputs="fp32"``); their range is the data's, and they are few MACs;
- any **other** activation is quantized per row at run time (``dynamic``) or with a static
  range calibrated on the model's own data (``static``).

Token embeddings (a ``Gather`` from a constant table) become an int8 table with one scale per
row: a looked-up row is exactly one token's, so rows stay independent too.

Weights are 8-bit, symmetric, one scale per output column, stored as u8 around zero point 128;
activations are 8-bit too (u8 around zero point 128, values 1..255). The products are u8 x u8,
which ONNX Runtime's kernels widen to 16 bits before multiplying (u8 x s8 would use AVX2's
saturating pair-add, VPMADDUBSW, on a CPU without VNNI), so integer sums are exact on every CPU:
the same file gives the same answer on x86 and ARM64, for one stream and for a pool. Measured
against 7-bit activations with s8 weights (the scheme before, which also never saturates), the
8-bit activations halve the rounding of every product's input and the error over fed-back
steps (benchmarks/int8_error.py; docs/quantization.md has the figures and the decision).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgernn.cells import BY_ONNX_OP
from edgernn.exporters.audio import PREFIX as FRONT_END     # the audio front end stays float
from edgernn.exporters.quant import cells8
from edgernn.exporters.graph import (Writer, drop_unused_initializers, producers,
                                    replace_nodes)

ACT_TOP = 127                    # 8-bit activations: round(v * 127 / range) + 128 in 1..255
ZERO = 128
W_TOP = 127                      # 8-bit symmetric weights, stored + 128 as u8
PRODUCTS = ("Gemm", "MatMul")
_SHAPE_ONLY = {"Split", "Slice", "Identity", "Squeeze", "Unsqueeze", "Reshape", "Transpose",
               "Flatten", "Gather"}


@dataclass
class Plan:
    """What the rewrite did, for the report and the contract."""

    products: int = 0
    macs: int = 0
    macs_int8: int = 0
    weights: int = 0
    weights_int8: int = 0
    kinds: dict = field(default_factory=dict)     # "static"/"dynamic"/"calibrated"/"fp32" -> n
    embeddings_int8: int = 0                      # elements of token embedding tables in int8

    def count(self, kind: str, macs: int) -> None:
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        self.macs += macs
        if kind != "fp32":
            self.macs_int8 += macs


# ---------------------------------------------------------------------------- graph facts

def bounded(proto, state_pairs: list[tuple[str, str]]) -> set[str]:
    """Tensors proven to lie in [-1, 1]. A state input counts when its paired state output is
    proven bounded assuming the bounded states (a fixed point), e.g. ``h`` of LSTM, GRU and
    tanh-RNN cells, never an LSTM's ``c`` or a relu-RNN's ``h``."""
    assumed = {i for i, _ in state_pairs}
    while True:
        known, unit = _propagate(proto.graph, assumed)
        keep = {i for i, o in state_pairs if i in assumed and o in known}
        if keep == assumed:
            return known
        assumed = keep


def _propagate(graph, assumed: set[str]) -> tuple[set[str], set[str]]:
    known, unit = set(assumed), set()              # unit: in [0, 1] (sigmoid gates)
    producer = producers(graph)

    def convex(a, z, b) -> bool:                   # a + z * (b - a), z in [0, 1]
        return z in unit and a in known and b in known

    for node in graph.node:
        ins, op = list(node.input), node.op_type
        out = set(node.output)
        if cells8.is_cell(node):                   # its new h: a gated or tanh state
            known.add(node.output[0])
        elif op == "Sigmoid":
            known |= out
            unit |= out
        elif op == "Tanh":
            known |= out
        elif op in _SHAPE_ONLY and ins and ins[0] in known:
            known |= out
            if ins[0] in unit:
                unit |= out
        elif op == "Concat" and all(i in known for i in ins):
            known |= out
        elif op == "Mul" and len(ins) == 2 and all(i in known for i in ins):
            known |= out
            if all(i in unit for i in ins):
                unit |= out
        elif op == "Add" and len(ins) == 2:
            for a, m in ((ins[0], ins[1]), (ins[1], ins[0])):
                mul = producer.get(m)
                if mul is None or mul.op_type != "Mul":
                    continue
                for z, d in ((mul.input[0], mul.input[1]), (mul.input[1], mul.input[0])):
                    sub = producer.get(d)
                    if sub is not None and sub.op_type == "Sub" and sub.input[1] == a and \
                            convex(a, z, sub.input[0]):
                        known |= out                  # GRU: n + z * (h - n)
    return known, unit


def derived_from(graph, sources: set[str], ops: set[str] | None = None) -> set[str]:
    """Tensors computed from ``sources`` before any matrix product, a fused recurrent layer's
    included (through ``ops`` only, when given: e.g. the shape-only ops that cut a state into
    its layers)."""
    reached = set(sources)
    for node in graph.node:
        if node.op_type in PRODUCTS or node.op_type.startswith("MatMul") or \
                node.op_type in BY_ONNX_OP or cells8.is_op(node):
            continue
        if ops is not None and node.op_type not in ops:
            continue
        if node.input and (node.input[0] in reached if ops is not None else
                           any(i in reached for i in node.input)):
            reached |= set(node.output)
    return reached


# ---------------------------------------------------------------------------- the rewrite

def _quantize_weight(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K, N) float -> int8 (K, N) and per-column scales (N,)."""
    scale = np.maximum(np.abs(w).max(axis=0), 1e-12) / W_TOP
    return np.clip(np.round(w / scale), -W_TOP, W_TOP).astype(np.int8), scale.astype(np.float32)


def _product(wr: Writer, q: str, wq: np.ndarray) -> str:
    """The float sum of u8 activations ``q`` times int8 weights ``wq``, the weights stored u8
    around 128 so that the product is u8 x u8 (exact on every CPU; the module's docstring)."""
    w = wr.const("w", (wq.astype(np.int16) + ZERO).astype(np.uint8))
    zp = wr.const("zp", np.array(ZERO, np.uint8))
    return wr.one("Cast", [wr.one("MatMulInteger", [q, w, zp, zp])], to=TensorProto.FLOAT)


def _int8_part(wr: Writer, v: str, w: np.ndarray, how: str, top: float | None) -> str:
    """v @ w with v quantized as ``how`` ("static": range ``top``; "dynamic": per row)."""
    wq, ws = _quantize_weight(w)
    if how == "dynamic":
        m = wr.one("Max", [wr.reduce_max(wr.one("Abs", [v])),
                          wr.const("eps", np.array(1e-30, np.float32))])          # (rows, 1)
        scaled = wr.one("Mul", [v, wr.one("Div", [wr.const("top", np.array(ACT_TOP, np.float32)),
                                                m])])
        q = wr.one("Cast", [wr.one("Add", [wr.one("Round", [scaled]),
                                         wr.const("zpf", np.array(ZERO, np.float32))])],
                  to=TensorProto.UINT8)
        acc = _product(wr, q, wq)
        return wr.one("Mul", [wr.one("Mul", [acc, wr.const("ws", ws / ACT_TOP)]), m])
    scale = np.float32(top / ACT_TOP)
    if top != 1.0:                                  # calibrated: clip what lies beyond
        v = wr.one("Clip", [v, wr.const("lo", np.array(-top, np.float32)),
                           wr.const("hi", np.array(top, np.float32))])
    a_scale = wr.const("as", np.array(scale, np.float32))
    q = wr.one("QuantizeLinear", [v, a_scale, wr.const("zp", np.array(ZERO, np.uint8))])
    acc = _product(wr, q, wq)
    # Mul(acc, Mul(a_scale, w_scale)): ONNX Runtime's MatMulIntegerToFloat pattern, though its
    # constant folding merges the two scales first, so the fusion does not happen (runtime.md)
    return wr.one("Mul", [acc, wr.one("Mul", [a_scale, wr.const("ws", ws)])])


def _weight(node, consts) -> tuple[np.ndarray, np.ndarray | None] | None:
    """The (K, N) weight and the bias of a product with constant weights, else None."""
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if len(node.input) < 2 or node.input[1] not in consts:
        return None
    w = consts[node.input[1]]
    if w.ndim != 2 or w.dtype != np.float32:
        return None
    if node.op_type == "MatMul":
        return w, None
    if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
        return None
    bias = consts.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if len(node.input) > 2 and node.input[2] and bias is None:
        return None
    return (w.T if attrs.get("transB", 0) else w), bias


def _embedding(node, consts) -> np.ndarray | None:
    """The float table of a token embedding lookup (``Gather`` of rows of a constant)."""
    if node.op_type != "Gather" or node.input[0] not in consts:
        return None
    axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 0)
    table = consts[node.input[0]]
    if axis != 0 or table.ndim != 2 or table.dtype != np.float32 or table.shape[0] < 2:
        return None
    return table


def _int8_embedding(wr: Writer, node, table: np.ndarray) -> None:
    """Rows of an int8 table, each times its own scale: Gather, Cast, Mul by the row's scale."""
    scale = np.maximum(np.abs(table).max(axis=1, keepdims=True), 1e-12) / W_TOP   # (V, 1)
    q = np.clip(np.round(table / scale), -W_TOP, W_TOP).astype(np.int8)
    ids = node.input[1]
    rows = wr.one("Cast", [wr.one("Gather", [wr.const("emb_q", q), ids], axis=0)],
                  to=TensorProto.FLOAT)
    wr.one("Mul", [rows, wr.one("Gather", [wr.const("emb_s", scale.astype(np.float32)), ids],
                                axis=0)], out=node.output[0])


def _parts(v: str, producer: dict, widths: dict) -> list[tuple[str, int]]:
    """A product's input, cut into the Concat parts it was made of (last axis), with widths."""
    node = producer.get(v)
    if node is not None and node.op_type == "Concat":
        axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"),
                    None)
        rank = widths.get(("rank", v))
        if axis in (-1, (rank or 0) - 1) and all(i in widths for i in node.input):
            return [(i, widths[i]) for i in node.input]
    return [(v, None)]


def _widths(proto) -> dict:
    """Last-axis sizes of the graph's tensors, from ONNX shape inference."""
    inferred = onnx.shape_inference.infer_shapes(proto)
    out = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + \
            list(inferred.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if dims and dims[-1].HasField("dim_value"):
            out[vi.name] = dims[-1].dim_value
        out[("rank", vi.name)] = len(dims)
    return out


def rewrite(proto, contract, *, mode: str = "dynamic", inputs: str = "fp32",
            recurrent: str = "int8", ranges: dict | None = None,
            dense: bool = False) -> tuple[onnx.ModelProto, Plan]:
    """The int8 form of the fp32 step graph ``proto`` (see the module's docstring).

    ``ranges`` (static mode): calibrated max |v| of the activations that need one. ``dense``:
    a product of one bounded activation becomes one ``ai.edgernn`` Dense8 node
    (:mod:`edgernn.exporters.quant.cells8`; the caller adds the functions).
    """
    proto = onnx.ModelProto.FromString(proto.SerializeToString())
    graph = proto.graph
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 17)
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    pairs = [(s.input, s.output) for s in contract.states]
    known = bounded(proto, pairs)
    data = derived_from(graph, {contract.inputs[0].name})
    state = derived_from(graph, {i for i, _ in pairs}, _SHAPE_ONLY)     # h_prev: recurrent
    producer = producers(graph)
    widths = _widths(proto)
    ranges = ranges or {}
    plan, wr = Plan(), Writer(prefix="q8_", opset=opset)
    new_nodes = []
    for node in graph.node:
        table = _embedding(node, consts)
        if table is not None:
            start = len(wr.nodes)
            _int8_embedding(wr, node, table)
            plan.embeddings_int8 += table.size
            new_nodes.extend(wr.nodes[start:])
            continue
        if cells8.is_cell(node):                         # one node per layer: R u8 (or
            r = consts[cells8.slot(node, "R")]           # float), the input product 8-bit
            plan.products += 2                           # where x is bounded
            plan.weights += r.size
            r8 = not cells8.float_r(node.op_type)
            plan.weights_int8 += r.size if r8 else 0
            plan.count("static" if r8 else "fp32", r.size)
            if _choose(node.input[0], mode, inputs, recurrent, known, data, state,
                       ranges) == "static" and not node.op_type.endswith("Q"):
                node, size = cells8.quantized_input(node, consts, wr)
                plan.weights_int8 += size
                plan.count("static", size)
            else:
                q = node.op_type.endswith("Q")
                size = consts[cells8.slot(node, "W")].size
                plan.count("static" if q else "fp32", size)
                plan.weights_int8 += size if q else 0
            plan.weights += size
            new_nodes.append(node)
            continue
        if node.op_type in BY_ONNX_OP:                   # a fused layer (chunk, sequence
            fused = sum(consts[i].size for i in node.input[1:3] if i in consts)   # graphs):
            plan.products += 1                           # its W and R products stay fp32
            plan.weights += fused
            plan.count("fp32", fused)
        found = _weight(node, consts) if node.op_type in PRODUCTS else None
        if found is None:
            new_nodes.append(node)
            continue
        w, bias = found
        plan.products += 1
        plan.weights += w.size
        if node.name.startswith(FRONT_END):          # the audio front end's spectrum and mel
            plan.count("fp32", w.size)                 # products: 8 bits would change the
            new_nodes.append(node)                     # features (docs/audio.md)
            continue
        parts = _parts(node.input[0], producer, widths)
        kinds = {_choose(v, mode, inputs, recurrent, known, data, state, ranges)
                 for v, _ in parts}
        if len(kinds) == 1 or sum(k for _, k in parts) != w.shape[0]:
            parts = [(node.input[0], None)]              # one product over the whole input
        start = len(wr.nodes)
        if dense and len(parts) == 1 and _choose(node.input[0], mode, inputs, recurrent, known,
                                                 data, state, ranges) == "static":
            plan.count("static", w.size)                 # a bounded input: one Dense8 node
            plan.weights_int8 += w.size
            cells8.dense(wr, node.input[0], w, bias, node.output[0])
            new_nodes.extend(wr.nodes[start:])
            continue
        outs, row = [], 0
        for v, k in parts:
            k = w.shape[0] if k is None else k
            part = w[row:row + k]
            row += k
            how = _choose(v, mode, inputs, recurrent, known, data, state, ranges)
            plan.count(how, part.size)
            if how == "fp32":
                outs.append(wr.one("MatMul", [v, wr.const("wf", part)]))
            else:
                plan.weights_int8 += part.size
                top = 1.0 if how == "static" else ranges.get(v)
                outs.append(_int8_part(wr, v, part, "dynamic" if how == "dynamic" else "static",
                                       top))
        total = outs[0]
        for extra in outs[1:]:
            total = wr.one("Add", [total, extra])
        if bias is not None:
            wr.one("Add", [total, wr.const("b", bias.astype(np.float32))], out=node.output[0])
        else:
            wr.one("Identity", [total], out=node.output[0])
        new_nodes.extend(wr.nodes[start:])
    replace_nodes(graph, new_nodes, wr)
    drop_unused_initializers(graph)
    return proto, plan


def _choose(v, mode, inputs, recurrent, known, data, state, ranges) -> str:
    if recurrent == "fp32" and v in state:
        return "fp32"
    if v in known:
        return "static"
    if v in data and inputs == "fp32":
        return "fp32"
    if mode == "static":
        return "calibrated" if v in ranges else "fp32"
    return "dynamic"


def needs_ranges(proto, contract, inputs: str = "fp32") -> list[str]:
    """Activations a static rewrite needs calibrated ranges for."""
    graph = proto.graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    pairs = [(s.input, s.output) for s in contract.states]
    known = bounded(proto, pairs)
    data = derived_from(graph, {contract.inputs[0].name})
    producer, widths = producers(graph), _widths(proto)
    out = []
    for node in graph.node:
        if node.op_type in PRODUCTS and _weight(node, consts) is not None:
            for v, _ in _parts(node.input[0], producer, widths):
                if v not in known and (inputs == "int8" or v not in data) and v not in out:
                    out.append(v)
    return out
