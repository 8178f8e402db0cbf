"""Layers as one node each: ``ai.edgernn`` operators that carry a plain-ONNX fallback.

The row-independent int8 rewrite (:mod:`edgernn.exporters.quant.int8`) writes a layer's step as
some thirty ONNX nodes, and at one stream ONNX Runtime's cost per node, not the arithmetic, sets
the step's time. Here a forward ``LSTM``/``GRU``/tanh-``RNN`` node of a step graph becomes one
node of domain ``ai.edgernn`` that computes the layer's whole step, and a product of a bounded
activation (the head on the last layer) becomes one ``Dense8`` node:

- ``LSTMCell8(x, h, c, W, Wb, R, Rs, Rb) -> (h', c')``: ``x @ W + Wb`` in float (``W``: (I, G*H);
  the layer that reads the frames), the hidden-to-hidden product in 8 bits, the gates;
- ``LSTMCell8Q(x, h, c, W, Ws, Wb, R, Rs, Rb)``: the same with ``x`` a lower layer's state
  (bounded), so its product is 8-bit too (``W``: (G*H, I) u8); the int8 rewrite turns the first
  form into this one where it proves ``x`` bounded;
- ``GRUCell8``/``GRUCell8Q``/``RNNCell8``/``RNNCell8Q``: the same without ``c``;
- ``LSTMCellF(x, h, c, W, Wb, R, Rb)`` and ``LSTMCellFQ(x, h, c, W, Ws, Wb, R, Rb)`` (and the
  GRU and RNN ones): the same with the hidden-to-hidden product in float (``R``: (H, G*H)), for a
  layer quantized with ``--recurrent fp32`` (the vanilla RNN's default);
- ``Dense8(x, W, Ws, B) -> x @ W^T + B`` with ``x`` bounded (``W``: (N, K) u8);
- ``LSTMStep(x, h, c, W, Wb, R, Rb)``, ``GRUStep``, ``RNNStep``: an fp32 layer's step, as
  ``LSTMCellF`` with a float input product, on the ``(1, B, .)`` tensors of ONNX's own operator
  and with its ``hidden_size`` attribute. The lean export (:mod:`edgernn.exporters.forms.lean`)
  writes these, and their function is that operator, so where the kernels are not registered
  the file runs what it ran before, at the same speed.

8-bit values are the int8 module's: u8 around 128, activations ``QuantizeLinear(v, 1/127, 128)``,
weights one scale per output; ``Rs``/``Ws`` hold each output's weight scale times 1/127.

The model carries each operator's meaning as a model-local ONNX function of the same name, made
of standard operators only. ONNX Runtime runs that function wherever edgernn's kernel library
(``runtime/cells8``, built at install) is not registered: in the browser, on Triton, under the
ONNX reference evaluator, on a device without a compiler. Where the runtime registers it, the
kernel computes the node in one call. The two agree to float rounding on one step; over fed-back
steps a state value on a rounding boundary of the 8-bit grid may round the other way
(tests/exporters/test_cells8.py measures both).
"""

from __future__ import annotations

import numpy as np
from onnx import AttributeProto, TensorProto, helper

from edgernn.cells import BY_ONNX_OP

DOMAIN = "ai.edgernn"
CELLS = {"LSTM": "LSTMCell8", "GRU": "GRUCell8", "RNN": "RNNCell8"}
FLOAT_R = {"LSTM": "LSTMCellF", "GRU": "GRUCellF", "RNN": "RNNCellF"}   # R in float
STEP = {"LSTM": "LSTMStep", "GRU": "GRUStep", "RNN": "RNNStep"}        # fp32: ONNX's operator
NAMES = (frozenset(CELLS.values()) | frozenset(FLOAT_R.values()) | frozenset(STEP.values())
         | {c + "Q" for c in (*CELLS.values(), *FLOAT_R.values())} | {"Dense8"})
ZERO, TOP = 128, 127
MAX_WEIGHT = 1e6                    # the kernels refuse float weights beyond it (checks.h)


def inputs_of(op: str) -> list[str]:
    """The operator's inputs in order (what its function takes)."""
    if op == "Dense8":
        return ["x", "W", "Ws", "B"]
    state = ["h", "c"] if op.startswith("LSTM") else ["h"]
    weights = ["W", "Ws", "Wb"] if op.endswith("Q") else ["W", "Wb"]
    return ["x", *state, *weights, "R", *([] if float_r(op) else ["Rs"]), "Rb"]


def float_r(op: str) -> bool:
    """The cell's hidden-to-hidden product is in float (its R is float)."""
    return "CellF" in op or op in STEP.values()


def is_step(node) -> bool:
    """An fp32 layer's step node of the lean export (its function: ONNX's own operator)."""
    return node.domain == DOMAIN and node.op_type in STEP.values()


def slot(node, name: str) -> str:
    """The name of the node's input ``name`` (W, R, ...)."""
    return node.input[inputs_of(node.op_type).index(name)]


def is_op(node) -> bool:
    return node.domain == DOMAIN and node.op_type in NAMES


def is_cell(node) -> bool:
    """A recurrent layer's node (its first output is the new, bounded, state)."""
    return is_op(node) and node.op_type != "Dense8"


def weight_rows(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, K) float weights, one row per output -> u8 rows around 128 and each row's scale
    times the activation's (1/127): an operator's ``W``/``Ws`` or ``R``/``Rs``."""
    scale = (np.maximum(np.abs(w).max(axis=1), 1e-12) / TOP).astype(np.float32)
    q = np.clip(np.round(w / scale[:, None]), -TOP, TOP).astype(np.int16) + ZERO
    return q.astype(np.uint8), np.float32(1.0 / TOP) * scale


def write(g, fam, x: str, state: tuple, w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh",
          recurrent: str = "int8"):
    """One layer's step as a cell node (float input product), written with ``g`` (a
    :class:`~edgernn.exporters.graph.Writer`); weights in torch's gate order; the
    hidden-to-hidden product in 8 bits, or in float with ``recurrent="fp32"``. Returns (h_new,
    new state), or None for a cell the operators do not cover (relu RNN: its state is not
    bounded), which the caller writes as plain nodes: the ``cell`` of
    :func:`edgernn.exporters.forms.lower.lower`."""
    if fam.onnx_op not in CELLS or nonlinearity != "tanh":
        return None
    if recurrent == "fp32":
        op = FLOAT_R[fam.onnx_op]
        rec = [g.const("R", np.ascontiguousarray(w_hh.T, np.float32))]
    else:
        op = CELLS[fam.onnx_op]
        r, rs = weight_rows(w_hh)
        rec = [g.const("R", r), g.const("Rs", rs)]
    outs = [g.name("h8")] + ([g.name("c8")] if len(state) > 1 else [])
    g.nodes.append(helper.make_node(
        op, [x, *state, g.const("W", np.ascontiguousarray(w_ih.T)),
             g.const("Wb", b_ih.astype(np.float32)), *rec,
             g.const("Rb", b_hh.astype(np.float32))],
        outs, name=g.name(op), domain=DOMAIN))
    return outs[0], tuple(outs)


def step(g, fam, x: str, state: tuple, w_ih, w_hh, b_ih, b_hh, outs: list[str]) -> None:
    """One fp32 layer's step as a Step node (weights in torch's gate order): edgernn's float
    kernel where the runtime registers it, else ONNX's own operator (its function). ``x`` and
    the ``state`` are (1, B, .), as that operator takes them; ``outs`` names the new state."""
    g.nodes.append(helper.make_node(
        STEP[fam.onnx_op], [x, *state, g.const("W", np.ascontiguousarray(w_ih.T, np.float32)),
                            g.const("Wb", b_ih.astype(np.float32)),
                            g.const("R", np.ascontiguousarray(w_hh.T, np.float32)),
                            g.const("Rb", b_hh.astype(np.float32))],
        outs, name=g.name(STEP[fam.onnx_op]), domain=DOMAIN, hidden_size=int(w_hh.shape[1])))


def steppable(fam, nonlinearity: str, *weights) -> bool:
    """A layer the Step nodes cover: a tanh RNN, an LSTM or a GRU whose weights the kernels take
    (finite, within their bound: runtime/cells8/checks.h)."""
    return fam.onnx_op in STEP and nonlinearity == "tanh" and all(
        np.isfinite(w).all() and np.abs(w).max(initial=0) <= MAX_WEIGHT for w in weights)


def quantized_input(node, consts: dict, wr):
    """The ``...Q`` form of a float-input cell node whose ``x`` is bounded: its input product in
    8 bits too. Returns (the node, the weights' size)."""
    at = inputs_of(node.op_type).index("W")
    w = consts[node.input[at]]                               # (I, G*H)
    wq, ws = weight_rows(np.ascontiguousarray(w.T))
    ins = list(node.input)
    ins[at:at + 1] = [wr.const("W8", wq), wr.const("Ws", ws)]
    return helper.make_node(node.op_type + "Q", ins, list(node.output), name=node.name,
                            domain=DOMAIN), w.size


def dense(wr, x: str, w: np.ndarray, bias, out: str) -> None:
    """``out = x @ w + bias`` for a bounded ``x`` and (K, N) float ``w``: one Dense8 node."""
    wq, ws = weight_rows(np.ascontiguousarray(w.T))
    b = np.zeros(w.shape[1], np.float32) if bias is None else bias.astype(np.float32)
    wr.nodes.append(helper.make_node("Dense8", [x, wr.const("W8", wq), wr.const("Ws", ws),
                                                wr.const("b", b)], [out],
                                     name=wr.name("Dense8"), domain=DOMAIN))


# ---------------------------------------------------------------------------- the functions

def functions(proto, opset: int) -> None:
    """Add the plain-ONNX function of every ``ai.edgernn`` operator the graph uses, and the
    domain's opset import, to ``proto`` (once each)."""
    used = {n.op_type for n in proto.graph.node if is_op(n)}
    have = {(f.domain, f.name) for f in proto.functions}
    for op in sorted(used):
        if (DOMAIN, op) not in have:
            proto.functions.append(_function(op, opset))
    if used and not any(o.domain == DOMAIN for o in proto.opset_import):
        proto.opset_import.append(helper.make_opsetid(DOMAIN, 1))


def prune(proto) -> None:
    """Drop the functions of ``ai.edgernn`` operators no node uses any more (a lowered file's
    Step nodes), and the domain's opset import once no node of it is left."""
    used = {n.op_type for n in proto.graph.node if n.domain == DOMAIN}
    kept = [f for f in proto.functions if f.domain != DOMAIN or f.name in used]
    del proto.functions[:]
    proto.functions.extend(kept)
    if not used:
        imports = [o for o in proto.opset_import if o.domain != DOMAIN]
        del proto.opset_import[:]
        proto.opset_import.extend(imports)


class _Body:
    """Nodes of a function body, named t0, t1, ..."""

    def __init__(self):
        self.nodes = []

    def __call__(self, op_type, inputs, outputs=None, **attrs):
        outputs = outputs or [f"t{len(self.nodes)}"]
        self.nodes.append(helper.make_node(op_type, inputs, outputs, **attrs))
        return outputs if len(outputs) > 1 else outputs[0]

    def int8(self, x: str, w: str, scales: str, bias: str) -> str:
        """x (bounded) in 8 bits times u8 rows ``w``, each output times its scale, plus bias."""
        q = self("QuantizeLinear", [x, "scale", "zp"])
        acc = self("MatMulInteger", [q, self("Transpose", [w], perm=[1, 0]), "zp", "zp"])
        return self("Add", [self("Mul", [self("Cast", [acc], to=TensorProto.FLOAT), scales]),
                            bias])


def _step_function(op: str, opset: int):
    """A Step operator's function: its torch-order weights in ONNX's layout (constants, which
    ONNX Runtime folds when it loads the file), then ONNX's own operator for one step."""
    fam = BY_ONNX_OP[op[:-len("Step")]]
    order = [int(k) for k in np.argsort(fam.onnx_order)]       # torch's blocks in ONNX's order
    body = _Body()
    body("Constant", [], ["axis0"], value=helper.make_tensor("axis0", TensorProto.INT64, [1],
                                                             [0]))

    def onnx_gates(v: str, transpose: bool) -> str:
        if transpose:
            v = body("Transpose", [v], perm=[1, 0])
        if fam.gates > 1:
            parts = body("Split", [v], [f"{v}_{k}" for k in range(fam.gates)], axis=0,
                         **_equal(opset, fam.gates))
            v = body("Concat", [parts[k] for k in order], axis=0)
        return v

    w, r = (body("Unsqueeze", [onnx_gates(v, True), "axis0"]) for v in ("W", "R"))
    b = body("Unsqueeze", [body("Concat", [onnx_gates("Wb", False), onnx_gates("Rb", False)],
                                axis=0), "axis0"])
    states = list(fam.states)
    hidden = helper.make_attribute_ref("hidden_size", AttributeProto.INT)
    layer = helper.make_node(fam.onnx_op, ["x", w, r, b, "", *states],
                             ["", *(f"{s}_new" for s in states)], **dict(fam.onnx_attrs))
    layer.attribute.append(hidden)
    body.nodes.append(layer)
    return helper.make_function(DOMAIN, op, inputs_of(op), [f"{s}_new" for s in states],
                                body.nodes, [helper.make_opsetid("", opset)],
                                attributes=["hidden_size"])


def _function(op: str, opset: int):
    if op in STEP.values():
        return _step_function(op, opset)
    body = _Body()
    body("Constant", [], ["scale"], value=helper.make_tensor("scale", TensorProto.FLOAT, [],
                                                             [1.0 / TOP]))
    body("Constant", [], ["zp"], value=helper.make_tensor("zp", TensorProto.UINT8, [], [ZERO]))
    if op == "Dense8":
        body("Identity", [body.int8("x", "W", "Ws", "B")], ["y"])
        return helper.make_function(DOMAIN, op, ["x", "W", "Ws", "B"], ["y"], body.nodes,
                                    [helper.make_opsetid("", opset)])
    quantized = op.endswith("Q")
    lstm, gru = op.startswith("LSTM"), op.startswith("GRU")
    xw = body.int8("x", "W", "Ws", "Wb") if quantized else \
        body("Add", [body("MatMul", ["x", "W"]), "Wb"])
    rec = body("Add", [body("MatMul", ["h", "R"]), "Rb"]) if float_r(op) else \
        body.int8("h", "R", "Rs", "Rb")
    if lstm:
        i, f, g, o = body("Split", [body("Add", [xw, rec])], ["i", "f", "g", "o"], axis=-1,
                          **_equal(opset, 4))
        c_new = body("Add", [body("Mul", [body("Sigmoid", [f]), "c"]),
                             body("Mul", [body("Sigmoid", [i]), body("Tanh", [g])])], ["c_new"])
        body("Mul", [body("Sigmoid", [o]), body("Tanh", [c_new])], ["h_new"])
    elif gru:
        xr, xz, xn = body("Split", [xw], ["xr", "xz", "xn"], axis=-1, **_equal(opset, 3))
        rr, rz, rn = body("Split", [rec], ["rr", "rz", "rn"], axis=-1, **_equal(opset, 3))
        r = body("Sigmoid", [body("Add", [xr, rr])])
        z = body("Sigmoid", [body("Add", [xz, rz])])
        n = body("Tanh", [body("Add", [xn, body("Mul", [r, rn])])])
        body("Add", [n, body("Mul", [z, body("Sub", ["h", n])])], ["h_new"])
    else:
        body("Tanh", [body("Add", [xw, rec])], ["h_new"])
    outputs = ["h_new", "c_new"] if lstm else ["h_new"]
    return helper.make_function(DOMAIN, op, inputs_of(op), outputs, body.nodes,
                                [helper.make_opsetid("", opset)])


def _equal(opset: int, parts: int) -> dict:
    """Split into equal parts: ``num_outputs`` from opset 18, implied by the outputs before."""
    return {"num_outputs": parts} if opset >= 18 else {}
