"""The modules that become ONNX graphs: step, chunk and sequence, fused or decomposed.

Every graph takes state batch-major (``(B, layers*directions, H)`` for torch's recurrent layers),
so that a runtime can stack streams along axis 0; inside, each state is moved back to the
layout the wrapped module keeps it in.

``decompose(module)`` swaps every ``nn.RNN``/``nn.LSTM``/``nn.GRU`` for the same cell written as
matrix products (the family's ``step`` in :mod:`edgernn.cells`), so the graph holds MatMul and
element-wise ops instead of the ONNX ``RNN``/``LSTM``/``GRU`` operators.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from edgernn.cells import CellFamily, family
from edgernn.errors import ExportError


def family_of(rnn: nn.RNNBase) -> CellFamily:
    return family(rnn.mode.split("_")[0].lower())                  # LSTM, GRU, RNN_TANH...


def recurrent_layers(module: nn.Module) -> list[nn.RNNBase]:
    return [m for m in module.modules() if isinstance(m, nn.RNNBase)]


class DecomposedRecurrent(nn.Module):
    """A drop-in for an ``nn.RNNBase`` that computes each step with explicit matrix products."""

    def __init__(self, rnn: nn.RNNBase):
        super().__init__()
        if rnn.bidirectional:
            raise ExportError("the decomposed form is for streaming graphs; a bidirectional layer "
                              "cannot stream. Use --graph sequence --ops fused")
        if getattr(rnn, "proj_size", 0):
            raise ExportError("LSTM layers with proj_size are not supported by --ops decomposed; "
                              "use --ops fused")
        self.family = family_of(rnn)
        self.nonlinearity = getattr(rnn, "nonlinearity", "tanh")
        self.batch_first = rnn.batch_first
        self.num_layers = rnn.num_layers
        self.hidden_size = rnn.hidden_size
        for layer in range(rnn.num_layers):
            for kind in ("ih", "hh"):
                w = getattr(rnn, f"weight_{kind}_l{layer}")
                b = getattr(rnn, f"bias_{kind}_l{layer}", None) if rnn.bias else None
                self.register_buffer(f"w_{kind}_{layer}", w.detach().clone())
                self.register_buffer(f"b_{kind}_{layer}", b.detach().clone() if b is not None
                                     else torch.zeros(w.shape[0]))

    def forward(self, x, state=None):
        if not self.batch_first:
            x = x.transpose(0, 1)                                   # (T, B, I) -> (B, T, I)
        batch, steps = x.shape[0], x.shape[1]
        if state is None:
            zeros = x.new_zeros(self.num_layers, batch, self.hidden_size)
            state = self.family.pack_state(tuple(zeros for _ in self.family.states))
        tensors = self.family.unpack_state(state)                   # each (L, B, H)
        layer_state = [tuple(s[layer] for s in tensors) for layer in range(self.num_layers)]
        outputs = []
        for t in range(steps):
            inp = x[:, t]                                           # (B, I)
            for layer in range(self.num_layers):
                inp, layer_state[layer] = self.family.step(
                    inp, layer_state[layer], getattr(self, f"w_ih_{layer}"),
                    getattr(self, f"w_hh_{layer}"), getattr(self, f"b_ih_{layer}"),
                    getattr(self, f"b_hh_{layer}"), self.nonlinearity)
            outputs.append(inp)
        y = torch.stack(outputs, dim=1)                             # (B, T, H)
        if not self.batch_first:
            y = y.transpose(0, 1)
        new = tuple(torch.stack([ls[i] for ls in layer_state])     # (L, B, H) each
                    for i in range(len(self.family.states)))
        return y, self.family.pack_state(new)


def decompose(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with each recurrent layer replaced by :class:`DecomposedRecurrent`."""
    if isinstance(module, nn.RNNBase):
        return DecomposedRecurrent(module)
    module = copy.deepcopy(module)
    for name, child in list(module.named_modules()):
        if isinstance(child, nn.RNNBase):
            parent_name, _, attr = name.rpartition(".")
            parent = module.get_submodule(parent_name) if parent_name else module
            setattr(parent, attr, DecomposedRecurrent(child))
    return module


def to_module_layout(states, batch_axes):
    """Graph state, batch-major (B, ...), to each state's own layout (batch on its axis)."""
    return [s if axis == 0 else s.movedim(0, axis).contiguous()
            for s, axis in zip(states, batch_axes)]


def to_batch_major(states, batch_axes):
    """The module's state, each with its batch on its own axis, to batch-major (B, ...)."""
    return [s if axis == 0 else s.movedim(axis, 0) for s, axis in zip(states, batch_axes)]


class GraphModule(nn.Module):
    """``core`` (following ``forward(x, state) -> (y, state)``) as a step/chunk/sequence graph,
    its state batch-major (each state's batch axis in ``core`` given by ``batch_axes``)."""

    def __init__(self, core: nn.Module, kind: str, batch_axes: list[int], per_step: bool):
        super().__init__()
        self.core, self.kind, self.batch_axes = core, kind, list(batch_axes)
        self.n_states = len(self.batch_axes)
        # edgernn's own networks expose the head at every step: that is what a stream returns.
        # A whole-sequence graph computes what the model's forward does (e.g. one label).
        stepwise = per_step and kind != "sequence" and hasattr(core, "forward_steps")
        self.call = core.forward_steps if stepwise else core

    def _pack(self, states):
        if not states:
            return None
        return states[0] if len(states) == 1 else tuple(states)

    def forward(self, x, *states):
        if self.kind == "step":
            x = x.unsqueeze(1)                                      # (B, F) -> (B, 1, F)
        y, new = self.call(x, self._pack(to_module_layout(states, self.batch_axes)))
        if self.kind == "step" and y.dim() >= 2 and y.shape[1] == 1:
            y = y.squeeze(1)                                        # (B, 1, O) -> (B, O)
        if self.kind == "sequence":
            return y
        new = (new,) if torch.is_tensor(new) else tuple(new)
        return (y, *to_batch_major(new, self.batch_axes))
