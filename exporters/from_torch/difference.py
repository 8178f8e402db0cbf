"""Forecasting through differences, inside the graph.

A model trained with ``--difference`` saw one-step changes and predicted the next change
(:class:`edgernn.tasks.forecast.Differencing`). Its artifact must still take the frames a
sensor sends and return the next *level*, so the graph does the bookkeeping itself: it keeps
the previous frame as one more state (``x_prev``, with ``x_seen`` saying whether there was one)
and wraps the network in an affine map in and out. Every runtime (a stream, a pool, Triton, a
browser) then handles it as plain state, and snapshots carry it.

:class:`Differenced` is the PyTorch module (the reference, and what the torch exporters
convert); :func:`step_graph_in` and :func:`step_graph_out` write the same arithmetic into
edgernn's compact step graph.
"""

from __future__ import annotations

import numpy as np
import torch
from onnx import helper
from torch import nn

from edgernn.contract import Normalization

STATE_NAMES = ("x_prev", "x_seen")


def _affine(level: Normalization, change: Normalization):
    """In: normalised-level difference -> normalised change. Out: normalised change ->
    normalised-level increment. Each as (scale, shift) per feature."""
    lvl_std = np.asarray(level.std, np.float64)
    c_mean, c_std = np.asarray(change.mean, np.float64), np.asarray(change.std, np.float64)
    return ((lvl_std / c_std, -c_mean / c_std), (c_std / lvl_std, c_mean / lvl_std))


class Differenced(nn.Module):
    """``core`` (trained on changes) seen from outside as a model of levels.

    Takes level-normalised frames (B, T, F) and state ``(*core_state, x_prev (B, F),
    x_seen (B, 1))``; returns next-level forecasts (B, T, F), level-normalised, and new state.
    """

    def __init__(self, core: nn.Module, level: Normalization, change: Normalization):
        super().__init__()
        self.core = core
        self.config = core.config
        self.normalizations = (level, change)
        (a, b), (c, d) = _affine(level, change)
        for name, value in (("scale_in", a), ("shift_in", b), ("scale_out", c),
                            ("shift_out", d)):
            self.register_buffer(name, torch.tensor(value, dtype=torch.float32))
        family = core.config.family
        self.state_names = list(family.states) + list(STATE_NAMES)
        self._core_states = len(family.states)

    def forward_steps(self, x, state=None):
        batch, steps = x.shape[0], x.shape[1]
        if state is None:
            core_state = None
            prev = x.new_zeros(batch, x.shape[2])
            seen = x.new_zeros(batch, 1)
        else:
            *core, prev, seen = state
            core_state = self.config.family.pack_state(tuple(core))
        previous = torch.cat([prev[:, None], x[:, :-1]], dim=1)            # (B, T, F)
        known = torch.cat([seen[:, None], torch.ones_like(x[:, 1:, :1])], dim=1)   # (B, T, 1)
        change = (x - previous) * known * self.scale_in + self.shift_in
        out, core_state = self.core.forward_steps(change, core_state)     # (B, T, F) changes
        y = x + out * self.scale_out + self.shift_out                     # next levels
        new = self.config.family.unpack_state(core_state)
        return y, (*new, x[:, steps - 1], torch.ones_like(seen))

    forward = forward_steps


def step_graph_in(graph, x: str, level: Normalization, change: Normalization) -> str:
    """Nodes of a compact step graph under construction (an ``exporters.graph.Writer``) that
    turn the frame ``x`` and the state into the network's input (returned)."""
    (a, b), _ = _affine(level, change)
    previous, seen = STATE_NAMES
    diff = graph.one("Mul", [graph.one("Sub", [x, previous]), seen])      # 0 before a frame
    return graph.one("Add", [graph.one("Mul", [diff, _const(graph, "scale_in", a)]),
                             _const(graph, "shift_in", b)])


def step_graph_out(graph, x: str, net_out: str, y: str, level: Normalization,
                   change: Normalization) -> None:
    """Nodes that turn the network's output ``net_out`` into the next level ``y`` and write the
    new ``x_prev``/``x_seen`` state outputs."""
    _, (c, d) = _affine(level, change)
    previous, seen = STATE_NAMES
    step = graph.one("Add", [graph.one("Mul", [net_out, _const(graph, "scale_out", c)]),
                             _const(graph, "shift_out", d)])
    graph.nodes.append(helper.make_node("Add", [x, step], [y], name="level"))
    graph.nodes.append(helper.make_node("Identity", [x], [f"{previous}_out"], name="keep_x"))
    graph.nodes.append(helper.make_node("Max", [seen, _const(graph, "one", np.ones((1, 1)))],
                                        [f"{seen}_out"], name="seen"))


def _const(graph, base: str, value) -> str:
    return graph.const(base, np.asarray(value, np.float32))
