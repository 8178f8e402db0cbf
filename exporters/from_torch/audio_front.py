"""A network trained on log-mel features, seen from outside as a model of raw samples.

A model trained from WAV clips (:mod:`edgernn.tasks.audio`) read normalised log-mel features.
Its artifact takes what a microphone gives, hops of samples, and computes the features itself,
with the window overlap as one more state (``audio_tail``). Every runtime (a stream, a pool,
Triton, a browser) handles it as plain state, and snapshots carry it.

:class:`AudioFront` is the PyTorch module (the reference, and what the torch exporters
convert); :func:`step_graph_in` writes the same arithmetic into edgernn's step graphs.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from edgernn.frontend import TAIL
from edgernn.tasks.audio import AudioFeatures, log_mel

STATE_NAMES = (TAIL,)


class AudioFront(nn.Module):
    """``core`` (trained on normalised features) behind the front end.

    Takes samples (B, T, hop) and state ``(*core_state, audio_tail (B, frame - hop))``; returns
    the core's outputs and the new state. :func:`folded_front` is what gets converted: the
    features' normalisation folded into the first layer's weights, as
    :func:`~edgernn.exporters.from_torch.fold.folded` does for frames, so no runtime spends a
    step on it; this module, normalising, is the reference export's parity check compares
    with."""

    def __init__(self, core: nn.Module, audio: AudioFeatures, normalize: bool = True):
        super().__init__()
        self.core = core
        self.config = core.config
        self.audio = audio
        self.normalize = normalize
        mean, std = audio.norm.arrays()
        self.register_buffer("mean", torch.from_numpy(mean))
        self.register_buffer("inv_std", torch.from_numpy(1.0 / std))
        family = core.config.family
        self.state_names = list(family.states) + list(STATE_NAMES)
        self.frame_size = audio.fbank.hop

    def _split(self, state):
        if state is None:
            return None, None
        *core, tail = state
        return self.config.family.pack_state(tuple(core)), tail

    def _features(self, x, tail):
        feats, tail = log_mel(self.audio.fbank, x, tail)
        return ((feats - self.mean) * self.inv_std if self.normalize else feats), tail

    def forward_steps(self, x, state=None):
        core_state, tail = self._split(state)
        feats, tail = self._features(x, tail)
        y, core_state = self.core.forward_steps(feats, core_state)
        return y, (*self.config.family.unpack_state(core_state), tail)

    def forward(self, x, state=None, lengths=None):
        core_state, tail = self._split(state)
        feats, tail = self._features(x, tail)
        y, core_state = self.core(feats, core_state)
        return y, (*self.config.family.unpack_state(core_state), tail)


def folded_front(core: nn.Module, audio: AudioFeatures) -> AudioFront:
    """The module export converts: ``AudioFront(core, audio)`` with the features'
    normalisation folded into a copy of the first layer (``W' = W / std``,
    ``b' = b - W (mean / std)``), so the graph goes from the log straight to the layer."""
    from edgernn.exporters.from_torch.fold import folded

    return AudioFront(folded(core, audio.norm, None), audio, normalize=False).eval()


def step_graph_in(graph, x: str, front: AudioFront) -> str:
    """Nodes of a step graph under construction (an ``exporters.graph.Writer``) from one hop of
    samples ``x`` (B, hop) and the state ``audio_tail`` to the features the network takes
    (B, mel): normalised in the graph only when ``front`` has not folded that into the
    network's weights. The new tail is written as ``audio_tail_out``."""
    from onnx import helper

    from edgernn.exporters.audio import write

    flat, tail = write(graph, x, TAIL, front.audio.fbank, hops=1, flat=True)  # (B, mel)
    graph.nodes.append(helper.make_node("Identity", [tail], [f"{TAIL}_out"], name="keep_tail"))
    if not front.normalize:
        return flat
    mean, std = front.audio.norm.arrays()
    return graph.one("Mul", [graph.one("Sub", [flat, graph.const("feature_mean", mean)]),
                             graph.const("feature_inv_std", (1.0 / std).astype(np.float32))])
