"""The compact step graph: edgernn's own networks written straight to ONNX with the fewest nodes.

A step on ONNX Runtime costs about as much in per-node overhead as in arithmetic (see
docs/runtime.md): the fused ``LSTM`` operator only takes time-major state, so the torch
exporters wrap it in transposes, slices and squeezes. This form builds the step graph directly:

- state is one 2-D tensor per kind, ``(batch, layers * hidden)``, cut into layers by one
  ``Split`` and put back by one ``Concat`` (still batch-major: streams stack on axis 0);
- each layer is one ``Gemm`` over ``[x, h]`` with the gate blocks reordered so that all sigmoid
  gates are contiguous (LSTM: i, f, o | g), then a handful of element-wise nodes;
- the head is one ``Gemm``.

Only for edgernn's :class:`~edgernn.models.RecurrentNet` (unidirectional, step graphs); export
checks it against PyTorch like every other form.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from edgernn.exporters.graph import Writer


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


class StepGraph:
    """What edgernn's own step graphs share: the frame (differencing, embedding), the head, and
    the declared inputs and outputs. A form adds its layers and registers its states."""

    def __init__(self, model, name: str):
        from edgernn.exporters.from_torch.audio_front import AudioFront
        from edgernn.exporters.from_torch.difference import Differenced

        self.wrapper = model if isinstance(model, Differenced) else None
        self.front = model if isinstance(model, AudioFront) else None   # hears
        wrapped = isinstance(model, (Differenced, AudioFront))
        self.net = model.core if wrapped else model
        self.cfg, self.name = self.net.config, name
        self.g = Writer()
        self.params = {k: _np(v) for k, v in self.net.state_dict().items()}
        self.states: list[tuple[str, object, list[str]]] = []   # name, size or shape, layout

    def layer_weights(self, layer: int):
        p = self.params
        return (p[f"rnn.weight_ih_l{layer}"], p[f"rnn.weight_hh_l{layer}"],
                p[f"rnn.bias_ih_l{layer}"], p[f"rnn.bias_hh_l{layer}"])

    def frame(self) -> str:
        """The first layer's input: the frame, its change (differencing), its features (a hop of
        samples) or its embedding."""
        from edgernn.exporters.from_torch.difference import step_graph_in

        x = "x"
        if self.wrapper is not None:
            x = step_graph_in(self.g, x, *self.wrapper.normalizations)
        if self.front is not None:
            from edgernn.exporters.from_torch import audio_front

            x = audio_front.step_graph_in(self.g, x, self.front)
        if self.cfg.tokens:
            x = self.g.one("Gather", [self.g.const("embedding", self.params["embedding.weight"]),
                                      x], axis=0)
        return x

    def finish(self, top: str, opset: int) -> onnx.ModelProto:
        """The head on the last layer's output ``top``, then the graph's inputs and outputs."""
        from edgernn.exporters.from_torch.difference import STATE_NAMES, step_graph_out

        g, cfg, p = self.g, self.cfg, self.params
        y = g.name("net_out") if self.wrapper is not None else "y"
        g.nodes.append(helper.make_node("Gemm", [top, g.const("head_w", p["head.weight"]),
                                                 g.const("head_b", p["head.bias"])], [y],
                                        name="head", transB=1))
        states = list(self.states)
        if self.wrapper is not None:
            step_graph_out(g, "x", y, "y", *self.wrapper.normalizations)
            states += [(STATE_NAMES[0], cfg.input_size, ["batch", "features"]),
                       (STATE_NAMES[1], 1, ["batch", "seen"])]
        width = cfg.input_size
        if self.front is not None:
            from edgernn.frontend import TAIL

            states.append((TAIL, self.front.audio.fbank.tail, ["batch", "samples"]))
            width = self.front.audio.fbank.hop
        self.states = states
        shape = lambda n: n if isinstance(n, list) else ["batch", n]      # noqa: E731
        x_type = (helper.make_tensor_value_info("x", TensorProto.INT64, ["batch"])
                  if cfg.tokens else
                  helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width]))
        inputs = [x_type] + [helper.make_tensor_value_info(s, TensorProto.FLOAT, shape(n))
                             for s, n, _ in states]
        outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                                 ["batch", cfg.output_size])]
        outputs += [helper.make_tensor_value_info(f"{s}_out", TensorProto.FLOAT, shape(n))
                    for s, n, _ in states]
        graph = helper.make_graph(g.nodes, self.name, inputs, outputs, g.inits)
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", max(opset, 17))],
                                 producer_name="edgernn")


def build_compact(model, opset: int = 17) -> tuple[onnx.ModelProto, list]:
    """The compact step graph of ``model`` (an edgernn RecurrentNet, or one wrapped in
    :class:`~edgernn.exporters.from_torch.difference.Differenced`), inputs x, h[, c][, x_prev,
    x_seen];
    and its states as (name, size, layout)."""
    b = StepGraph(model, "edgernn_compact_step")
    g, cfg = b.g, b.cfg
    fam, hidden, layers = cfg.family, cfg.hidden_size, cfg.num_layers
    x = b.frame()
    state_names = list(fam.states)
    per_layer = {s: (g.op("Split", [s, g.sizes(hidden, layers)], n_out=layers, axis=1)
                     if layers > 1 else [s]) for s in state_names}
    new = {s: [] for s in state_names}
    for layer in range(layers):
        state = tuple(per_layer[s][layer] for s in state_names)
        x, out = fam.graph(g, x, state, *b.layer_weights(layer), cfg.nonlinearity)
        for s, value in zip(state_names, out):
            new[s].append(value)
    for s in state_names:
        op = "Concat" if layers > 1 else "Identity"
        g.nodes.append(helper.make_node(op, new[s], [f"{s}_out"], name=f"{s}_{op.lower()}",
                                        **({"axis": 1} if layers > 1 else {})))
        b.states.append((s, layers * hidden, ["batch", "layers_x_hidden"]))
    return b.finish(x, opset), b.states
