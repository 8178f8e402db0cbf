"""The recurrent cell families, each declared once, with every form of the cell.

Everything edgernn knows about a family lives in its :class:`CellFamily`; the rest of the code
asks the family instead of testing ``if cell == "gru"``. A family's forms:

- **torch**: the ``torch.nn`` module, its keyword arguments, its initialisation;
- **torch, decomposed**: one step as plain tensor math (:attr:`CellFamily.step`), what the
  torch exporters trace where a fused operator will not do;
- **ONNX, fused**: the ONNX operator, its attributes, its default activations and its gate
  order (:meth:`CellFamily.to_onnx_gates` / :meth:`CellFamily.from_onnx_gates`), what the lean
  graph writes and what lowering reads;
- **ONNX, decomposed**: one layer's step as graph nodes (:attr:`CellFamily.graph`), what the
  compact graph writes and lowering (hence int8) rewrites fused nodes into.

This module is importable without torch or onnx (the device side reads the families too);
torch is imported inside the math functions only, and the graph builders take a graph-writing
object (``one``/``op``/``const``/``sizes``, see ``exporters/forms/compact.py``) instead of onnx.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from edgernn.errors import ConfigError


def _lstm_step(x, state, w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh"):
    import torch

    h, c = state                                              # (B, H) each
    gates = x @ w_ih.t() + b_ih + h @ w_hh.t() + b_hh         # (B, 4H), torch order i f g o
    i, f, g, o = gates.chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return h, (h, c)


def _gru_step(x, state, w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh"):
    import torch

    (h,) = state                                              # (B, H)
    gi = x @ w_ih.t() + b_ih                                  # (B, 3H), torch order r z n
    gh = h @ w_hh.t() + b_hh
    i_r, i_z, i_n = gi.chunk(3, dim=-1)
    h_r, h_z, h_n = gh.chunk(3, dim=-1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    h = (1 - z) * n + z * h
    return h, (h,)


def _rnn_step(x, state, w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh"):
    import torch

    (h,) = state                                              # (B, H)
    pre = x @ w_ih.t() + b_ih + h @ w_hh.t() + b_hh
    h = torch.tanh(pre) if nonlinearity == "tanh" else torch.relu(pre)
    return h, (h,)


# ---------------------------------------------------------------- ONNX, decomposed: one layer
# g: a graph writer; x, h, c: tensor names (B, I) and (B, H); weights in torch's gate order.

def _lstm_graph(g, x, state, w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh"):
    (h, c), hidden = state, w_hh.shape[1]
    # torch gate order i f g o -> i f o g: sigmoid gates contiguous, tanh gate last
    order = np.r_[0:2 * hidden, 3 * hidden:4 * hidden, 2 * hidden:3 * hidden]
    w = np.concatenate([w_ih, w_hh], axis=1)[order]                    # (4H, I+H)
    xh = g.one("Concat", [x, h], axis=1)                                # (B, I+H)
    gates = g.one("Gemm", [xh, g.const("w", w), g.const("b", (b_ih + b_hh)[order])], transB=1)
    sig_in, tanh_in = g.op("Split", [gates, g.const("split", np.array(
        [3 * hidden, hidden], np.int64))], n_out=2, axis=1)
    i, f, o = g.op("Split", [g.one("Sigmoid", [sig_in]), g.sizes(hidden, 3)], n_out=3, axis=1)
    c_new = g.one("Add", [g.one("Mul", [f, c]), g.one("Mul", [i, g.one("Tanh", [tanh_in])])])
    h_new = g.one("Mul", [o, g.one("Tanh", [c_new])])
    return h_new, (h_new, c_new)


def _gru_graph(g, x, state, w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh"):
    (h,), hidden = state, w_hh.shape[1]
    gi = g.one("Gemm", [x, g.const("w_ih", w_ih), g.const("b_ih", b_ih)], transB=1)
    gh = g.one("Gemm", [h, g.const("w_hh", w_hh), g.const("b_hh", b_hh)], transB=1)
    sizes = g.const("split", np.array([2 * hidden, hidden], np.int64))
    gi_rz, gi_n = g.op("Split", [gi, sizes], n_out=2, axis=1)
    gh_rz, gh_n = g.op("Split", [gh, sizes], n_out=2, axis=1)
    r, z = g.op("Split", [g.one("Sigmoid", [g.one("Add", [gi_rz, gh_rz])]), g.sizes(hidden, 2)],
                n_out=2, axis=1)
    n = g.one("Tanh", [g.one("Add", [gi_n, g.one("Mul", [r, gh_n])])])
    h_new = g.one("Add", [n, g.one("Mul", [z, g.one("Sub", [h, n])])])    # (1-z)n + zh
    return h_new, (h_new,)


def _rnn_graph(g, x, state, w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh"):
    (h,) = state
    # Two products, not one over [x, h]: int8 activations get a scale each, and without gates
    # the vanilla cell is too sensitive to share one scale between frames and state.
    gi = g.one("Gemm", [x, g.const("w_ih", w_ih), g.const("b", b_ih + b_hh)], transB=1)
    pre = g.one("Add", [gi, g.one("Gemm", [h, g.const("w_hh", w_hh)], transB=1)])
    h_new = g.one("Tanh" if nonlinearity == "tanh" else "Relu", [pre])
    return h_new, (h_new,)


@dataclass(frozen=True)
class CellFamily:
    name: str                     # edgernn's name: rnn, lstm, gru
    torch_module: str             # the torch.nn class: RNN, LSTM, GRU
    onnx_op: str                  # the fused ONNX operator
    gates: int                    # gate blocks in weight_ih / weight_hh
    states: tuple[str, ...]       # state tensors, in torch's order
    step: Callable                # decomposed one-step math (torch tensors)
    graph: Callable               # decomposed one-layer step as ONNX nodes
    onnx_order: tuple[int, ...]   # torch's gate block k goes to ONNX's position onnx_order[k]
    onnx_activations: tuple[str, ...]     # the fused operator's default activations
    onnx_attrs: tuple = ()        # (name, value) attributes torch's semantics need
    # int8 hidden-to-hidden products hold up over a stream: gates keep the state from feeding
    # its rounding straight back; a vanilla cell amplifies it (docs/quantization.md measures it)
    int8_recurrent: bool = True
    nonlinear: bool = False       # takes a nonlinearity (tanh or relu): the vanilla cell
    forget_gate: int | None = None   # the forget gate's block in torch's order (LSTM)
    # inputs of the fused ONNX operator that torch's cell has no counterpart for, by position
    onnx_unsupported: tuple = ()

    def describe(self, nonlinearity: str = "tanh") -> str:
        return f"{self.name}-{nonlinearity}" if self.nonlinear else self.name

    def torch_kwargs(self, nonlinearity: str = "tanh") -> dict:
        """Keyword arguments of the torch module beyond the sizes."""
        return {"nonlinearity": nonlinearity} if self.nonlinear else {}

    def fused_attrs(self, nonlinearity: str = "tanh") -> dict:
        """Attributes of the fused ONNX operator that computes what torch's module does."""
        attrs = dict(self.onnx_attrs)
        if self.nonlinear:
            attrs["activations"] = ["Tanh" if nonlinearity == "tanh" else "Relu"]
        return attrs

    def nonlinearity_of(self, activations) -> str | None:
        """The torch nonlinearity a fused node's activations stand for; None when the node
        computes something torch's cell does not."""
        acts = [a.decode() if isinstance(a, bytes) else a for a in activations]
        if not acts or acts == list(self.onnx_activations):
            return "tanh"
        return "relu" if self.nonlinear and acts == ["Relu"] else None

    def to_onnx_gates(self, w: np.ndarray) -> np.ndarray:
        """torch's gate blocks (axis 0) in ONNX's order: LSTM i f g o -> i o f c; GRU r z n ->
        z r h."""
        blocks = np.split(w, self.gates, axis=0)
        out = [None] * self.gates
        for k, pos in enumerate(self.onnx_order):
            out[pos] = blocks[k]
        return np.concatenate(out, 0)

    def from_onnx_gates(self, w: np.ndarray) -> np.ndarray:
        """ONNX's gate blocks back in torch's order."""
        blocks = np.split(w, self.gates, axis=0)
        return np.concatenate([blocks[pos] for pos in self.onnx_order], 0)

    def macs_per_step(self, input_size: int, hidden_size: int) -> int:
        """Multiply-accumulates of one cell for one time step and one stream."""
        return self.gates * hidden_size * (input_size + hidden_size)

    def pack_state(self, tensors):
        """Torch-convention state (a tensor, or a tuple for LSTM) from a tuple of tensors."""
        return tensors[0] if len(self.states) == 1 else tuple(tensors)

    def unpack_state(self, state) -> tuple:
        """A tuple of tensors from torch-convention state."""
        return (state,) if len(self.states) == 1 else tuple(state)


FAMILIES: dict[str, CellFamily] = {
    f.name: f
    for f in (
        CellFamily("rnn", "RNN", "RNN", 1, ("h",), _rnn_step, _rnn_graph, (0,), ("Tanh",),
                   int8_recurrent=False, nonlinear=True),
        CellFamily("lstm", "LSTM", "LSTM", 4, ("h", "c"), _lstm_step, _lstm_graph,
                   (0, 2, 3, 1), ("Sigmoid", "Tanh", "Tanh"), forget_gate=1,
                   onnx_unsupported=((7, "peepholes"),)),
        # torch's GRU applies the reset gate after the hidden product: linear_before_reset
        CellFamily("gru", "GRU", "GRU", 3, ("h",), _gru_step, _gru_graph, (1, 0, 2),
                   ("Sigmoid", "Tanh"), (("linear_before_reset", 1),)),
    )
}
BY_ONNX_OP: dict[str, CellFamily] = {f.onnx_op: f for f in FAMILIES.values()}


def family(name: str) -> CellFamily:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ConfigError(f"unknown cell {name!r}; expected one of {', '.join(FAMILIES)}") from None
