"""Fused ONNX recurrent operators of a step graph, written out as matrix products.

Quantization and half precision work on matrix products (``Gemm``); ONNX Runtime's tools do not
convert fused ``GRU``/``RNN`` at all, and its int8 ``LSTM`` picks one activation scale for the
whole batch. :func:`lower` rewrites each ``LSTM``/``GRU``/``RNN`` node of a one-step graph
(forward, default activations, constant weights) into the same cell as ``Gemm`` and
element-wise nodes, straight from the ONNX file: no checkpoint, no torch, so it works for
edgernn's files, a user's module exported fused, and a published model alike. The per-layer
glue a lowered node leaves (``Unsqueeze`` then ``Squeeze`` on the same axis) is removed.

The lean export's fp32 layers, ``ai.edgernn`` Step nodes (:mod:`edgernn.exporters.quant.cells8`)
whose function is that same operator, are written out the same way.

A node that does not fit (a direction other than forward, peepholes, clip, other activations,
weights that are not constants) is left as it is, and :func:`lower` says so.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgernn.cells import BY_ONNX_OP
from edgernn.exporters.graph import Writer, drop_dead, replace_nodes, set_dims
from edgernn.exporters.quant import cells8

RECURRENT = tuple(BY_ONNX_OP)


def _attrs(node) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _why_not(node, attrs: dict, consts: dict) -> str:
    if attrs.get("direction", b"forward") not in (b"forward", "forward"):
        return "not a forward-only layer"
    if attrs.get("clip") is not None or attrs.get("input_forget", 0) or attrs.get("layout", 0):
        return "clip, input_forget or layout=1"
    fam = BY_ONNX_OP[node.op_type]
    acts = attrs.get("activations", [])
    if fam.nonlinearity_of(acts) is None:
        return f"activations {[a.decode() if isinstance(a, bytes) else a for a in acts]}"
    ins = list(node.input) + [""] * 8
    if not all(ins[i] in consts for i in (1, 2)) or (ins[3] and ins[3] not in consts):
        return "weights that are not constants"
    if ins[4]:
        return "sequence_lens"
    for position, what in fam.onnx_unsupported:
        if ins[position]:
            return what
    for name, value in fam.onnx_attrs:
        if attrs.get(name, 0) != value:
            return f"{name}={attrs.get(name, 0)}"
    if not ins[5] or (len(fam.states) > 1 and not ins[6]):
        return "no initial state input"
    return ""


def lower(proto: onnx.ModelProto, cell=None) -> tuple[onnx.ModelProto, list[str]]:
    """A copy of the step graph ``proto`` with its recurrent operators lowered; and notes on
    any node left as it was. Only for one-step graphs: a lowered node computes one time step
    (a fused node over a whole sequence, as in an encoder, must not be given to it).

    ``cell(g, fam, x, state, w_ih, w_hh, b_ih, b_hh, nonlinearity)``, when given, writes a
    layer instead of the family's own nodes (int8's one-node cells,
    :mod:`edgernn.exporters.quant.cells8`), returning None for a layer it does not cover."""
    proto = onnx.ModelProto.FromString(proto.SerializeToString())
    graph = proto.graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    notes, out_nodes = [], []
    g = Writer(start=10_000)                        # names that cannot meet the graph's own
    for node in graph.node:
        if cells8.is_step(node):                    # the lean export's fp32 layer
            why = _why_not_step(node, consts)
            if why:
                notes.append(f"{node.op_type} node {node.name or '?'} kept ({why})")
                out_nodes.append(node)
                continue
            start = len(g.nodes)
            _lower_step(g, node, consts, cell)
            out_nodes.extend(g.nodes[start:])
            continue
        if node.op_type not in RECURRENT or node.domain not in ("", "ai.onnx"):
            out_nodes.append(node)
            continue
        attrs = _attrs(node)
        why = _why_not(node, attrs, consts)
        if why:
            notes.append(f"{node.op_type} node {node.name or '?'} kept fused ({why})")
            out_nodes.append(node)
            continue
        start = len(g.nodes)
        _lower_one(g, node, attrs, consts, cell)
        out_nodes.extend(g.nodes[start:])
    replace_nodes(graph, out_nodes, g)
    _cancel_squeezes(graph)
    cells8.prune(proto)
    return proto, notes


def _lower_one(g: Writer, node, attrs: dict, consts: dict, cell=None) -> None:
    ins = list(node.input) + [""] * 8
    fam = BY_ONNX_OP[node.op_type]                               # ONNX gate order -> torch's
    w = fam.from_onnx_gates(consts[ins[1]][0])                   # (G*H, I)
    r = fam.from_onnx_gates(consts[ins[2]][0])                   # (G*H, H)
    gates = w.shape[0]
    b = consts[ins[3]][0] if ins[3] else np.zeros(2 * gates, np.float32)
    b_ih, b_hh = fam.from_onnx_gates(b[:gates]), fam.from_onnx_gates(b[gates:])
    nonlinearity = fam.nonlinearity_of(attrs.get("activations", []))
    _write(g, fam, ins[0], ins[5:5 + len(fam.states)], (w, r, b_ih, b_hh), nonlinearity,
           list(node.output) + [""] * 3, cell)


def _why_not_step(node, consts: dict) -> str:
    """Why a Step node cannot be written out ("" when it can): its inputs as its operator takes
    them, constant weights of the sizes the kernels check (a file is untrusted input; the
    kernels refuse such a node at load, with their own message)."""
    names = cells8.inputs_of(node.op_type)
    if len(node.input) != len(names):
        return f"{len(node.input)} inputs where the operator takes {len(names)}"
    w, wb, r, rb = (consts.get(node.input[names.index(k)]) for k in ("W", "Wb", "R", "Rb"))
    if any(v is None for v in (w, wb, r, rb)):
        return "weights that are not constants"
    gates = BY_ONNX_OP[node.op_type[:-len("Step")]].gates
    if w.ndim != 2 or r.ndim != 2 or r.shape[1] != gates * r.shape[0] or \
            w.shape[1] != r.shape[1] or wb.shape != (r.shape[1],) or rb.shape != (r.shape[1],):
        return "weights whose shapes do not fit together"
    return ""


def _lower_step(g: Writer, node, consts: dict, cell=None) -> None:
    """A Step node (torch's gate order; W, R transposed) as the family's nodes or ``cell``'s."""
    fam = BY_ONNX_OP[node.op_type[:-len("Step")]]
    n = len(fam.states)
    w, b_ih, r, b_hh = (consts[name] for name in node.input[1 + n:])
    _write(g, fam, node.input[0], node.input[1:1 + n], (w.T, r.T, b_ih, b_hh), "tanh",
           ["", *node.output, ""], cell)


def _write(g: Writer, fam, x: str, states, weights, nonlinearity: str, outs, cell) -> None:
    """One layer's step on (1, B, .) tensors: ``weights`` (w_ih, w_hh, b_ih, b_hh) in torch's
    order; ``outs`` the fused operator's (Y, Y_h, Y_c), "" where not wanted."""
    zero = g.const("axis0", np.array([0], np.int64))
    x = g.one("Squeeze", [x, zero])                              # (1, B, I) -> (B, I)
    state = tuple(g.one("Squeeze", [s, zero]) for s in states)   # (1, B, H) -> (B, H)
    written = cell(g, fam, x, state, *weights, nonlinearity) if cell else None
    h_new, new = written or fam.graph(g, x, state, *weights, nonlinearity)
    c_new = new[1] if len(new) > 1 else None
    if outs[0]:
        g.nodes.append(helper.make_node("Unsqueeze", [h_new, g.const("axes01", np.array(
            [0, 1], np.int64))], [outs[0]], name=g.name("Y")))
    if outs[1]:
        g.nodes.append(helper.make_node("Unsqueeze", [h_new, zero], [outs[1]], name=g.name("Yh")))
    if outs[2] and c_new is not None:
        g.nodes.append(helper.make_node("Unsqueeze", [c_new, zero], [outs[2]], name=g.name("Yc")))


def _const_axes(graph, name: str):
    for t in graph.initializer:
        if t.name == name:
            return tuple(numpy_helper.to_array(t).reshape(-1).tolist())
    return None


def _cancel_squeezes(graph) -> None:
    """``Squeeze(Unsqueeze(v, a), a)`` is ``v``: its readers read ``v``; when it is a graph
    output, ``v`` takes its name. Then nodes nobody reads are dropped."""
    producer = {o: n for n in graph.node for o in n.output}
    outputs = {o.name for o in graph.output}
    inputs = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    rename, drop = {}, set()
    for n in graph.node:
        if n.op_type != "Squeeze" or len(n.input) < 2:
            continue
        up = producer.get(n.input[0])
        if up is None or up.op_type != "Unsqueeze" or len(up.input) < 2:
            continue
        axes = _const_axes(graph, n.input[1])
        if axes is None or axes != _const_axes(graph, up.input[1]):
            continue
        source = up.input[0]
        if n.output[0] in outputs:
            if source in inputs or source in outputs or source in rename.values():
                continue
            rename[source] = n.output[0]            # the value itself becomes the output
        else:
            rename[n.output[0]] = source
        drop.add(id(n))
    if not rename:
        return
    kept = [n for n in graph.node if id(n) not in drop]
    for n in kept:
        for seq in (n.input, n.output):
            for k, name in enumerate(seq):
                while name in rename:
                    name = rename[name]
                seq[k] = name
    del graph.node[:]
    graph.node.extend(kept)
    drop_dead(graph)


def flatten_states(proto: onnx.ModelProto, contract):
    """States kept as ``(1, batch, hidden)`` (the lean graph's kernel layout) but, once lowered,
    only squeezed on the way in and unsqueezed on the way out, become ``(batch, hidden)``: the
    glue goes. Returns the graph and the contract with those states' new shapes."""
    from dataclasses import replace

    graph = proto.graph
    producer = {o: n for n in graph.node for o in n.output}
    readers: dict[str, list] = {}
    for n in graph.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    drop, rename, changed = set(), {}, {}
    for spec in contract.states:
        if spec.shape[:2] != [1, "batch"] or len(spec.shape) != 3:
            continue
        ins = readers.get(spec.input, [])
        out = producer.get(spec.output)
        if not ins or not all(n.op_type == "Squeeze" and _const_axes(graph, n.input[1]) == (0,)
                              for n in ins):
            continue
        if out is None or out.op_type != "Unsqueeze" or _const_axes(graph, out.input[1]) != (0,):
            continue
        for n in ins:
            rename[n.output[0]] = spec.input
            drop.add(id(n))
        rename[out.input[0]] = spec.output
        drop.add(id(out))
        changed[spec.name] = ["batch", spec.shape[2]]
    if not changed:
        return proto, contract
    kept = [n for n in graph.node if id(n) not in drop]
    for n in kept:
        for seq in (n.input, n.output):
            for k, name in enumerate(seq):
                seq[k] = rename.get(name, name)
    del graph.node[:]
    graph.node.extend(kept)
    shapes = {s.input: changed[s.name] for s in contract.states if s.name in changed}
    shapes.update({s.output: changed[s.name] for s in contract.states if s.name in changed})
    for value in list(graph.input) + list(graph.output):
        if value.name in shapes:
            set_dims(value, shapes[value.name])
    states = [replace(s, shape=changed[s.name], layout=["batch", "hidden"])
              if s.name in changed else s for s in contract.states]
    drop_dead(graph)
    return proto, contract.with_changes(states=states)
