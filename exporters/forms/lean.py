"""The lean step graph: one ONNX Runtime recurrent kernel per layer, nothing around it.

ONNX Runtime's ``LSTM``/``GRU``/``RNN`` kernels compute a whole layer's step in one node; the
torch exporters wrap them in transposes, slices and concatenations because torch keeps all
layers' state in one (layers, batch, hidden) tensor. Here each layer's state is its own input
in the kernel's own layout, ``(1, batch, hidden)`` (``h0``, ``c0``, ``h1``, ...): a step is an
``Unsqueeze`` of the frame, the kernels, a ``Squeeze`` and the head. The leading axis has size
one, so in memory the state is still batch-major and streams stack for a pool; a server that
wants the batch first uses the compact graph. Quantization writes the kernels out as matrix
products again (:mod:`edgernn.exporters.forms.lower`).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from edgernn.exporters.forms.compact import StepGraph
from edgernn.exporters.quant import cells8


def build_lean(model, opset: int = 17, steppable: bool = True) -> tuple[onnx.ModelProto, list]:
    """The lean step graph of an edgernn RecurrentNet (optionally Differenced), and its states
    as (name, size, layout). Each layer is a Step node (:mod:`edgernn.exporters.quant.cells8`)
    where it can be, else ONNX's own operator; ``steppable=False`` writes ONNX's operator for
    every layer."""
    b = StepGraph(model, "edgernn_lean_step")
    g, cfg = b.g, b.cfg
    fam, hidden, names = cfg.family, cfg.hidden_size, list(cfg.family.states)
    axis0 = g.const("axis0", np.array([0], np.int64))
    seq = g.one("Unsqueeze", [b.frame(), axis0])                    # (1, B, I): one time step
    op = fam.onnx_op
    attrs = {"hidden_size": hidden, **fam.fused_attrs(cfg.nonlinearity)}
    for layer in range(cfg.num_layers):
        weights = b.layer_weights(layer)
        states = [f"{s}{layer}" for s in names]
        outs = [f"{s}_out" for s in states]
        if steppable and cells8.steppable(fam, cfg.nonlinearity, *weights):
            cells8.step(g, fam, seq, tuple(states), *weights, outs)
        else:
            w_ih, w_hh, b_ih, b_hh = weights
            w = g.const("W", fam.to_onnx_gates(w_ih)[None])
            r = g.const("R", fam.to_onnx_gates(w_hh)[None])
            bias = g.const("B", np.concatenate([fam.to_onnx_gates(b_ih),
                                                fam.to_onnx_gates(b_hh)])[None])
            g.nodes.append(helper.make_node(op, [seq, w, r, bias, "", *states], ["", *outs],
                                            name=f"{op.lower()}{layer}", **attrs))
        for s in states:
            b.states.append((s, [1, "batch", hidden], ["directions", "batch", "hidden"]))
        seq = outs[0]                                                    # Y_h: (1, B, H)
    top = g.one("Squeeze", [seq, axis0])                                 # (B, H)
    proto = b.finish(top, opset)
    cells8.functions(proto, opset)
    return proto, b.states
