"""Normalisation inside the graph: frames in and forecasts out in the data's own units.

A checkpoint's network was trained on normalised frames, ``(x - mean) / std``, and a
regressor's outputs are normalised too. Exported, the graph takes raw frames and returns raw
outputs, so no runtime (a stream, a pool, a server, a browser) spends a step normalising:

- :class:`Normalized` is the reference: the trained network with the arithmetic around it;
- :func:`folded` is what gets converted: a copy whose first layer and head absorb it
  (``W' = W / std``, ``b' = b - W (mean / std)``; ``W'_head = std * W_head``,
  ``b' = std * b + mean``), the same function in fewer operations. Export's parity check
  compares the two.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from edgernn.contract import Normalization


def _vec(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


class Normalized(nn.Module):
    """``core`` seen from outside in the data's units (pre and post may be None)."""

    def __init__(self, core: nn.Module, pre: Normalization | None, post: Normalization | None):
        super().__init__()
        self.core, self.config = core, core.config
        self.pre, self.post = pre, post
        if pre is not None:
            self.register_buffer("mean", _vec(pre.mean))
            self.register_buffer("inv_std", 1.0 / _vec(pre.std))
        if post is not None:
            self.register_buffer("out_mean", _vec(post.mean))
            self.register_buffer("out_std", _vec(post.std))

    def _in(self, x):
        return (x - self.mean) * self.inv_std if self.pre is not None else x

    def _out(self, y):
        return y * self.out_std + self.out_mean if self.post is not None else y

    def forward_steps(self, x, state=None):
        y, state = self.core.forward_steps(self._in(x), state)
        return self._out(y), state

    def forward(self, x, state=None):
        y, state = self.core(self._in(x), state)
        return self._out(y), state


def folded(core: nn.Module, pre: Normalization | None, post: Normalization | None) -> nn.Module:
    """A copy of the RecurrentNet ``core`` computing ``Normalized(core, pre, post)``."""
    net = copy.deepcopy(core).eval()
    with torch.no_grad():
        if pre is not None and net.embedding is None:
            mean, std = _vec(pre.mean), _vec(pre.std)
            suffixes = ["", "_reverse"] if net.config.bidirectional else [""]
            for suffix in suffixes:
                w = getattr(net.rnn, f"weight_ih_l0{suffix}")             # (G*H, F)
                b = getattr(net.rnn, f"bias_ih_l0{suffix}")
                b -= w @ (mean / std)
                w /= std
        if post is not None:
            std, mean = _vec(post.std), _vec(post.mean)
            net.head.weight *= std[:, None]                                # (O, H*D)
            net.head.bias.mul_(std).add_(mean)
    return net


def in_graph(norm: Normalization | None) -> Normalization | None:
    """The contract's record of a normalisation the graph applies itself."""
    return None if norm is None else Normalization(norm.mean, norm.std, in_graph=True)
