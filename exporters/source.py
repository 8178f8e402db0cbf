"""What is being exported: a module that follows the state convention, and what we know of it.

A *source* is either an edgernn checkpoint (config, normalisation, labels and task come along)
or any ``nn.Module`` with ``forward(x, state=None) -> (y, state)``, state a tensor or a tuple
of tensors in torch's layout, as ``nn.LSTM``/``nn.GRU``/``nn.RNN`` use. State shapes are found
by running the module once on the example input.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgernn.checkpoint import Checkpoint, load_checkpoint, weights_sha256
from edgernn.config import ModelConfig
from edgernn.errors import ExportError
from edgernn.exporters.graphs import GraphModule, family_of, recurrent_layers

EXAMPLE_BATCH, EXAMPLE_STEPS = 3, 7      # odd sizes, unlikely to coincide with model dimensions


class _BatchFirst(nn.Module):
    """A bare time-major ``nn.RNN``/``LSTM``/``GRU`` seen through batch-first inputs."""

    def __init__(self, rnn: nn.RNNBase):
        super().__init__()
        self.rnn = rnn

    def forward(self, x, state=None):
        y, state = self.rnn(x.transpose(0, 1), state)
        return y.transpose(0, 1), state


@dataclass
class Source:
    module: nn.Module
    example: torch.Tensor                   # (B, T, ...) batch-first
    state_names: list[str]
    state_shapes: list[tuple[int, ...]]     # batch-major, without the batch axis
    per_step: bool                          # the output has a time axis
    bidirectional: bool
    name: str
    config: ModelConfig | None = None
    checkpoint: Checkpoint | None = None

    @property
    def weights_sha256(self) -> str:
        return weights_sha256(self.module.state_dict())

    def graph(self, kind: str, module: nn.Module | None = None) -> GraphModule:
        return GraphModule(module or self.module, kind, len(self.state_names),
                           per_step=self.config is not None).eval()

    def reference(self, x: np.ndarray):
        """Whole-sequence PyTorch outputs and final state (batch-major) from a zero state."""
        with torch.no_grad():
            xt = torch.from_numpy(x)
            if self.bidirectional:
                return self.graph("sequence")(xt).numpy(), []
            zeros = [torch.zeros((x.shape[0], *s)) for s in self.state_shapes]
            y, *states = self.graph("chunk")(xt, *zeros)
        return y.numpy(), [s.numpy() for s in states]

    def random_input(self, batch: int, steps: int, rng: np.random.Generator) -> np.ndarray:
        if self.example.dtype in (torch.int64, torch.int32):
            high = int(self.config.input_size) if self.config else int(self.example.max()) + 1
            return rng.integers(0, high, (batch, steps)).astype(np.int64)
        return rng.standard_normal((batch, steps, *self.example.shape[2:])).astype(np.float32)


def resolve(model, example_input=None) -> Source:
    """A :class:`Source` from a checkpoint path, a Checkpoint, or an ``nn.Module``."""
    checkpoint = None
    if isinstance(model, (str, Path)):
        checkpoint = load_checkpoint(model)
    elif isinstance(model, Checkpoint):
        checkpoint = model
    if checkpoint is not None:
        module, name = checkpoint.build_model(), str(model) if isinstance(model, (str, Path)) \
            else "checkpoint"
    elif isinstance(model, nn.Module):
        module, name = model, type(model).__name__
    else:
        raise ExportError(f"cannot export a {type(model).__name__}; pass an nn.Module that "
                          f"follows forward(x, state=None) -> (y, state), or a checkpoint path")
    if isinstance(module, nn.RNNBase) and not module.batch_first:
        module = _BatchFirst(module)
    module = module.eval()
    config = getattr(module, "config", None)
    config = config if isinstance(config, ModelConfig) else None
    example = _example(module, config, example_input)
    with torch.no_grad():
        try:
            out = module(example)
        except Exception as exc:
            raise ExportError(f"running {name} on the example input of shape "
                              f"{tuple(example.shape)} failed: {type(exc).__name__}: {exc}. "
                              f"Pass example_input shaped (batch, time, features)") from None
    if not (isinstance(out, tuple) and len(out) == 2):
        raise ExportError(f"{name}.forward returned {type(out).__name__}; edgernn exports models "
                          f"that follow forward(x, state=None) -> (y, state)")
    y, state = out
    states = (state,) if torch.is_tensor(state) else tuple(state or ())
    if not states or not all(torch.is_tensor(s) for s in states):
        raise ExportError(f"{name}.forward returned no state tensors; a recurrent model returns "
                          f"(y, state) with state a tensor or a tuple of tensors")
    layers = recurrent_layers(module)
    bidirectional = (config.bidirectional if config else any(r.bidirectional for r in layers))
    names = _state_names(layers, len(states))
    shapes = [tuple(s.transpose(0, 1).shape[1:]) if s.dim() == 3 else tuple(s.shape[1:])
              for s in states]
    per_step = config is not None or _follows_time(module, example, y)
    return Source(module, example, names, shapes, per_step, bidirectional, name, config,
                  checkpoint)


def _follows_time(module, example, y) -> bool:
    """Whether ``module`` returns one output per step (checked at two lengths)."""
    if example.shape[1] < 2 or y.dim() < 2 or y.shape[1] != example.shape[1]:
        return False
    with torch.no_grad():
        shorter = module(example[:, :-1])[0]
    return shorter.dim() >= 2 and shorter.shape[1] == example.shape[1] - 1


def _example(module, config, example_input) -> torch.Tensor:
    if example_input is not None:
        example = torch.as_tensor(example_input)
        if example.dim() < 2:
            raise ExportError(f"example_input has shape {tuple(example.shape)}; expected "
                              f"(batch, time, ...) batch-first")
        return example
    if config is not None:
        gen = torch.Generator().manual_seed(0)
        if config.head == "lm":
            return torch.randint(0, config.input_size, (EXAMPLE_BATCH, EXAMPLE_STEPS),
                                 generator=gen)
        return torch.randn(EXAMPLE_BATCH, EXAMPLE_STEPS, config.input_size, generator=gen)
    inner = module.rnn if isinstance(module, _BatchFirst) else module
    if isinstance(inner, nn.RNNBase):
        return torch.randn(EXAMPLE_BATCH, EXAMPLE_STEPS, inner.input_size)
    raise ExportError(f"{type(module).__name__} is not an edgernn model, so its input shape is "
                      f"unknown; pass example_input shaped (batch, time, features)")


def _state_names(layers, count: int) -> list[str]:
    families = {family_of(r).name for r in layers}
    if len(families) == 1:
        names = list(family_of(layers[0]).states)
        if len(names) == count:
            return names
    return [f"state{i}" for i in range(count)]
