"""The lean step graph: one fused ONNX Runtime recurrent kernel per layer, state batch-major.

ONNX Runtime's ``LSTM``/``GRU``/``RNN`` kernels compute a whole layer's step in one node; the
torch exporters wrap them in transposes, slices and concatenations because torch keeps all
layers' state in one (layers, batch, hidden) tensor. Here each layer's state is its own 2-D
``(batch, hidden)`` input (``h0``, ``c0``, ``h1``, ...), handed to the kernel through a
zero-cost ``Unsqueeze``: a step is the kernels, the head and a few reshapes, and streams still
stack on axis 0 for a pool or a server. It is the default step graph for edgernn's networks.
Quantization writes the kernels out as matrix products again (:mod:`edgernn.exporters.lower`).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from edgernn.exporters.compact import StepGraph


def _onnx_order(cell: str, w: np.ndarray) -> np.ndarray:
    """torch's gate blocks to ONNX's: LSTM i f g o -> i o f c; GRU r z n -> z r h."""
    if cell == "lstm":
        i, f, g, o = np.split(w, 4, axis=0)
        return np.concatenate([i, o, f, g], 0)
    if cell == "gru":
        r, z, n = np.split(w, 3, axis=0)
        return np.concatenate([z, r, n], 0)
    return w


def build_lean(model, opset: int = 17) -> tuple[onnx.ModelProto, list]:
    """The lean step graph of an edgernn RecurrentNet (optionally Differenced), and its states
    as (name, size, layout)."""
    b = StepGraph(model, "edgernn_lean_step")
    g, cfg = b.g, b.cfg
    hidden, names = cfg.hidden_size, list(cfg.family.states)
    axis0 = g.const("axis0", np.array([0], np.int64))
    seq = g.one("Unsqueeze", [b.frame(), axis0])                    # (1, B, I): one time step
    op = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}[cfg.cell]
    attrs = {"hidden_size": hidden}
    if cfg.cell == "gru":
        attrs["linear_before_reset"] = 1                            # torch's GRU
    if cfg.cell == "rnn":
        attrs["activations"] = ["Tanh" if cfg.nonlinearity == "tanh" else "Relu"]
    for layer in range(cfg.num_layers):
        w_ih, w_hh, b_ih, b_hh = b.layer_weights(layer)
        w = g.const("W", _onnx_order(cfg.cell, w_ih)[None])
        r = g.const("R", _onnx_order(cfg.cell, w_hh)[None])
        bias = g.const("B", np.concatenate([_onnx_order(cfg.cell, b_ih),
                                            _onnx_order(cfg.cell, b_hh)])[None])
        states = [f"{s}{layer}" for s in names]
        initial = [g.one("Unsqueeze", [s, axis0]) for s in states]       # (1, B, H)
        outs = g.op(op, [seq, w, r, bias, "", *initial], n_out=1 + len(names), **attrs)
        for s, value in zip(states, outs[1:]):
            g.nodes.append(helper.make_node("Squeeze", [value, axis0], [f"{s}_out"],
                                            name=f"{s}_squeeze"))
            b.states.append((s, hidden, ["batch", "hidden"]))
        seq = outs[1]                                                    # Y_h: (1, B, H)
    return b.finish(f"{names[0]}{cfg.num_layers - 1}_out", opset), b.states
