"""The recurrent cell families, each declared once.

Everything edgernn knows about a family lives in its :class:`CellFamily`: the PyTorch module,
the ONNX operator, how many gates and which states it has, and the cell written out as plain
matrix products (the *decomposed* form the exporter uses where a fused operator will not do).
The rest of the code asks the family instead of testing ``if cell == "gru"``.

This module is importable without torch; torch is imported inside the math functions only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

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


@dataclass(frozen=True)
class CellFamily:
    name: str                     # edgernn's name: rnn, lstm, gru
    torch_module: str             # the torch.nn class: RNN, LSTM, GRU
    onnx_op: str                  # the fused ONNX operator
    gates: int                    # gate blocks in weight_ih / weight_hh
    states: tuple[str, ...]       # state tensors, in torch's order
    step: Callable                # decomposed one-step math (torch tensors)
    # int8 hidden-to-hidden products hold up over a stream: gates keep the state from feeding
    # its rounding straight back; a vanilla cell amplifies it (docs/quantization.md measures it)
    int8_recurrent: bool = True

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
        CellFamily("rnn", "RNN", "RNN", 1, ("h",), _rnn_step, int8_recurrent=False),
        CellFamily("lstm", "LSTM", "LSTM", 4, ("h", "c"), _lstm_step),
        CellFamily("gru", "GRU", "GRU", 3, ("h",), _gru_step),
    )
}


def family(name: str) -> CellFamily:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ConfigError(f"unknown cell {name!r}; expected one of {', '.join(FAMILIES)}") from None
