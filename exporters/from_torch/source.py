"""What is being exported: a module that follows the state convention, and what we know of it.

A *source* is either an edgernn checkpoint (config, normalisation, labels, task and data come
along) or any ``nn.Module`` with ``forward(x, state=None) -> (y, state)``, state a tensor or a
tuple of tensors. Each state may keep its batch on any axis: torch's recurrent layers use
``(layers, batch, hidden)``, a convolution's context is often ``(batch, features, k)``. The
batch axis of each state is found by running the module at two batch sizes (the axis whose size
follows the batch); when that is ambiguous, ``state_layout`` says it. Graphs always carry state
batch-major, so runtimes stack streams on axis 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgernn.checkpoint import Checkpoint, load_checkpoint, weights_sha256
from edgernn.config import ModelConfig
from edgernn.errors import ExportError
from edgernn.exporters.from_torch.modules import GraphModule, family_of, recurrent_layers

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
    batch_axes: list[int] = field(default_factory=list)   # each state's batch axis in the module
    layouts: list[list[str]] = field(default_factory=list)  # axis names, batch-major
    core: nn.Module | None = None           # the trained network inside any wrapper
    reference_module: nn.Module | None = None   # what PyTorch computes (default: module)

    @property
    def weights_sha256(self) -> str:
        """A hash of the trained weights (the network itself, without edgernn's wrappers)."""
        return weights_sha256((self.core or self.module).state_dict())

    def check_weights_of(self, contract, name, then: str) -> None:
        """Refuse when the file's contract records other weights than these (a file without a
        recorded hash, e.g. one written by another tool, is taken on trust)."""
        from edgernn.errors import ConfigError

        theirs = contract.provenance.weights_sha256 if contract.provenance else None
        if theirs and self.weights_sha256 != theirs:
            raise ConfigError(f"{self.name} does not hold the weights of {name} (weights sha256 "
                              f"{self.weights_sha256[:12]}... vs {theirs[:12]}... in its "
                              f"contract); {then}")

    def graph(self, kind: str, module: nn.Module | None = None) -> GraphModule:
        return GraphModule(module or self.module, kind, self.batch_axes,
                           per_step=self.config is not None).eval()

    def reference(self, x: np.ndarray):
        """Whole-sequence PyTorch outputs and final state (batch-major) from a zero state."""
        module = self.reference_module or self.module
        with torch.no_grad():
            xt = torch.from_numpy(x)
            if self.bidirectional:
                return self.graph("sequence", module)(xt).numpy(), []
            zeros = [torch.zeros((x.shape[0], *s)) for s in self.state_shapes]
            y, *states = self.graph("chunk", module)(xt, *zeros)
        return y.numpy(), [s.numpy() for s in states]

    def random_input(self, batch: int, steps: int, rng: np.random.Generator) -> np.ndarray:
        if self.example.dtype in (torch.int64, torch.int32):
            high = int(self.config.input_size) if self.config else int(self.example.max()) + 1
            return rng.integers(0, high, (batch, steps)).astype(np.int64)
        return rng.standard_normal((batch, steps, *self.example.shape[2:])).astype(np.float32)


def resolve(model, example_input=None, state_layout=None) -> Source:
    """A :class:`Source` from a checkpoint path, a Checkpoint, or an ``nn.Module``.

    ``state_layout`` (modules only) gives each state's batch axis where inference cannot: one
    entry per state, an int (the batch axis) or a string naming the axes (``"batch,features,k"``).
    """
    checkpoint = None
    if isinstance(model, (str, Path)):
        checkpoint = load_checkpoint(model)
    elif isinstance(model, Checkpoint):
        checkpoint = model
    if checkpoint is not None:
        module = checkpoint.build_model()
        name = str(model) if isinstance(model, (str, Path)) else "checkpoint"
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
    core, reference = module, None
    if checkpoint is not None:
        module, reference = _in_data_units(module, checkpoint)
    example = _example(module, config, example_input)
    y, states = _run(module, example, name)
    _, wider = _run(module, torch.cat([example, example[:1]]), name)
    layers = recurrent_layers(module)
    bidirectional = (config.bidirectional if config else any(r.bidirectional for r in layers))
    names = _state_names(module, layers, len(states))
    axes, layouts = _layouts(names, states, wider, example.shape[0], state_layout, layers)
    shapes = [tuple(s.movedim(a, 0).shape[1:]) for s, a in zip(states, axes)]
    per_step = config is not None or _follows_time(module, example, y)
    return Source(module, example, names, shapes, per_step, bidirectional, name, config,
                  checkpoint, axes, layouts, core, reference)


def _in_data_units(core, ckpt: Checkpoint):
    """What to convert and what to compare with, both taking frames in the data's units: a
    copy with the normalisation folded into its weights, and the network with the arithmetic
    around it (a differencing model handles raw levels itself)."""
    from edgernn.contract import Normalization
    from edgernn.exporters.from_torch.fold import Normalized, folded

    if ckpt.audio is not None:                 # samples in: the front end computes features
        from edgernn.exporters.from_torch.audio_front import AudioFront, folded_front

        return folded_front(core, ckpt.audio), AudioFront(core, ckpt.audio).eval()
    if ckpt.difference is not None:
        from edgernn.exporters.from_torch.difference import Differenced

        units = Normalization([0.0] * len(ckpt.difference.mean), [1.0] * len(ckpt.difference.std))
        wrapped = Differenced(core, units, ckpt.difference).eval()
        return wrapped, wrapped
    pre, post = ckpt.preprocessing, ckpt.postprocessing
    if pre is None and post is None:
        return core, None
    return folded(core, pre, post), Normalized(core, pre, post).eval()


def _run(module, example, name):
    with torch.no_grad():
        try:
            out = module(example)
        except Exception as exc:
            raise ExportError(f"running {name} on an example input of shape "
                              f"{tuple(example.shape)} failed: {type(exc).__name__}: {exc}. "
                              f"Pass example_input shaped (batch, time, features), batch "
                              f"first") from None
    if not (isinstance(out, tuple) and len(out) == 2):
        raise ExportError(f"{name}.forward returned {type(out).__name__}; edgernn exports models "
                          f"that follow forward(x, state=None) -> (y, state)")
    y, state = out
    states = (state,) if torch.is_tensor(state) else tuple(state or ())
    if not states or not all(torch.is_tensor(s) for s in states):
        raise ExportError(f"{name}.forward returned no state tensors; a recurrent model returns "
                          f"(y, state) with state a tensor or a tuple of tensors")
    return y, states


def _layouts(names, states, wider, batch: int, given, layers):
    """Each state's batch axis in the module's layout, and its axis names batch-major."""
    if given is not None:
        given = list(given.values()) if isinstance(given, dict) else list(given)
        if len(given) != len(states):
            raise ExportError(f"state_layout has {len(given)} entries for {len(states)} states "
                              f"({', '.join(names)}); give one per state")
    axes, layouts = [], []
    for i, (name, a, b) in enumerate(zip(names, states, wider)):
        follows = [d for d in range(a.dim()) if a.shape[d] == batch and b.shape[d] == batch + 1]
        where = f"state {name!r} of shape {tuple(a.shape)} (example batch {batch})"
        axis, labels = _given(given[i], a.dim(), where) if given is not None else (None, None)
        if axis is None:
            if len(follows) != 1:
                what = "no axis follows" if not follows else \
                    f"axes {follows} all follow"
                raise ExportError(f"cannot tell the batch axis of {where}: {what} the batch "
                                  f"size. Say it with state_layout=[...], one entry per state: "
                                  f"the batch axis as an int, or axis names like "
                                  f"'batch,features,k'")
            axis = follows[0]
        elif axis not in follows:
            raise ExportError(f"state_layout puts the batch of {where} on axis {axis}, but that "
                              f"axis does not follow the batch size (axes that do: "
                              f"{follows or 'none'})")
        axes.append(axis)
        layouts.append(labels or _axis_names(name, a.dim(), axis, layers))
    return axes, layouts


def _given(entry, ndim: int, where: str):
    if isinstance(entry, int) and not isinstance(entry, bool):
        if not -ndim <= entry < ndim:
            raise ExportError(f"state_layout gives batch axis {entry} for {where}")
        return entry % ndim, None
    if isinstance(entry, str):
        labels = [p.strip() for p in entry.strip("()[] ").split(",") if p.strip()]
        if len(labels) != ndim or labels.count("batch") != 1:
            raise ExportError(f"state_layout {entry!r} for {where} must name its {ndim} axes "
                              f"with exactly one called 'batch'")
        axis = labels.index("batch")
        return axis, ["batch"] + labels[:axis] + labels[axis + 1:]
    raise ExportError(f"state_layout entries are ints or strings, got {entry!r} for {where}")


def _axis_names(name: str, ndim: int, axis: int, layers) -> list[str]:
    if name in ("x_prev", "x_seen"):
        return ["batch", "features" if name == "x_prev" else "seen"]
    if ndim == 3 and axis == 1 and layers:
        return ["batch", "layers_x_directions", "hidden"]
    if ndim == 2 and axis == 0 and layers:
        return ["batch", "hidden"]
    return ["batch"] + [f"axis{d}" for d in range(ndim) if d != axis]


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
        if getattr(module, "frame_size", None):          # a hop of samples (AudioFront)
            return 0.1 * torch.randn(EXAMPLE_BATCH, EXAMPLE_STEPS, module.frame_size,
                                     generator=gen)
        if config.tokens:
            return torch.randint(0, config.input_size, (EXAMPLE_BATCH, EXAMPLE_STEPS),
                                 generator=gen)
        return torch.randn(EXAMPLE_BATCH, EXAMPLE_STEPS, config.input_size, generator=gen)
    inner = module.rnn if isinstance(module, _BatchFirst) else module
    if isinstance(inner, nn.RNNBase):
        return torch.randn(EXAMPLE_BATCH, EXAMPLE_STEPS, inner.input_size)
    raise ExportError(f"{type(module).__name__} is not an edgernn model, so its input shape is "
                      f"unknown; pass example_input shaped (batch, time, features)")


def _state_names(module, layers, count: int) -> list[str]:
    declared = getattr(module, "state_names", None)
    if declared is not None and len(declared) == count and all(
            isinstance(n, str) for n in declared):
        return list(declared)
    families = {family_of(r).name for r in layers}
    if len(families) == 1:
        names = list(family_of(layers[0]).states)
        if len(names) == count:
            return names
    return [f"state{i}" for i in range(count)]
