"""Editing ONNX graphs: the one place edgernn writes nodes and tidies a graph.

:class:`Writer` appends nodes and initializers with unique names (edgernn's own graph forms,
lowering, the int8 rewrite and the differencing nodes all use it); the functions below are the
graph-wide edits those passes share: who produces what, dropping what nobody reads, putting
nodes in topological order, declaring shapes, and the IR version a device can read.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgernn.errors import ExportError


class Writer:
    """Nodes and initializers for a graph under construction (appended to ``nodes`` and
    ``inits``; the caller puts them in the graph). Names are ``{prefix}{base}_{n}``, unique
    within the writer; ``start`` keeps them clear of names a graph being edited already has."""

    def __init__(self, prefix: str = "", start: int = 0, opset: int = 17):
        self.nodes, self.inits = [], []
        self.prefix, self._n, self.opset = prefix, start, opset

    def name(self, base: str) -> str:
        self._n += 1
        return f"{self.prefix}{base}_{self._n}"

    def const(self, base: str, array) -> str:
        name = self.name(base)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, **attrs) -> list[str]:
        outs = [self.name(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=self.name(op_type),
                                           **attrs))
        return outs

    def one(self, op_type: str, inputs: list[str], out: str | None = None, **attrs) -> str:
        """A node with one output (named ``out`` when given); returns the output's name."""
        if out is None:
            return self.op(op_type, inputs, **attrs)[0]
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=self.name(op_type),
                                           **attrs))
        return out

    def sizes(self, size: int, parts: int) -> str:
        """The ``split`` input of a Split into ``parts`` pieces of ``size``."""
        return self.const("split", np.full(parts, size, np.int64))

    def reduce_max(self, v: str) -> str:
        """Max over the last axis, kept (ReduceMax's axes became an input in opset 18)."""
        if self.opset >= 18:
            return self.one("ReduceMax", [v, self.const("axes", np.array([-1], np.int64))],
                            keepdims=1)
        return self.one("ReduceMax", [v], axes=[-1], keepdims=1)


def replace_nodes(graph, nodes: list, writer: Writer) -> None:
    """The graph's nodes become ``nodes`` (in order), and the writer's new initializers join
    its own: the end of a pass that rewrote some nodes with a :class:`Writer`."""
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(writer.inits)


def producers(graph) -> dict:
    """Tensor name -> the node that writes it."""
    return {o: n for n in graph.node for o in n.output}


def drop_unused_initializers(graph) -> None:
    read = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    kept = [t for t in graph.initializer if t.name in read]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def drop_dead(graph) -> None:
    """Remove nodes whose outputs nobody reads (repeatedly), then unused initializers."""
    while True:
        read = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
        kept = [n for n in graph.node if any(o in read for o in n.output if o)]
        if len(kept) == len(graph.node):
            break
        del graph.node[:]
        graph.node.extend(kept)
    drop_unused_initializers(graph)


def sort_nodes(graph) -> None:
    """Topological order, as the ONNX checker requires."""
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        progress = [n for n in pending if all(i in ready for i in n.input)]
        if not progress:
            raise ExportError("the converted graph has a cycle or a missing input")
        for n in progress:
            ordered.append(n)
            ready.update(n.output)
        pending = [n for n in pending if n not in progress]
    del graph.node[:]
    graph.node.extend(ordered)


def set_dims(value: onnx.ValueInfoProto, shape) -> None:
    """Declare ``shape`` on a graph input or output: ints fixed, strings symbolic."""
    dims = value.type.tensor_type.shape.dim
    del dims[:]
    for d in shape:
        dim = dims.add()
        if isinstance(d, str):
            dim.dim_param = d
        else:
            dim.dim_value = d


def portable_ir(proto: onnx.ModelProto) -> None:
    """The lowest IR version the file's opsets need, not the newest the onnx package writes:
    device runtimes lag (onnxruntime-web 1.30 reads IR 13 at most; onnx 1.23 writes 14), and
    nothing in an edgernn graph needs more than its opsets do."""
    need = onnx.helper.find_min_ir_version_for(list(proto.opset_import), ignore_unknown=True)
    proto.ir_version = min(proto.ir_version, max(need, 7))
