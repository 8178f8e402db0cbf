"""The one frozen configuration every model is built from."""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, fields, replace

from edgernn.cells import FAMILIES, CellFamily, family
from edgernn.choices import NONLINEARITIES
from edgernn.errors import ConfigError

# What the network computes from the recurrent outputs:
#   classify_last  one label per sequence (from the last step; per step when streamed)
#   classify_step  one label per time step
#   regress        one vector per time step (forecasting)
#   lm             next-token logits per step; inputs are token ids through an embedding
HEADS = ("classify_last", "classify_step", "regress", "lm")


@dataclass(frozen=True)
class ModelConfig:
    cell: str = "lstm"
    input_size: int = 40          # features per frame; with token inputs, the vocabulary size
    hidden_size: int = 128
    num_layers: int = 2
    output_size: int = 10         # classes, regression targets, or vocabulary size
    head: str = "classify_last"
    nonlinearity: str = "tanh"    # "rnn" cells only
    bidirectional: bool = False   # whole-sequence models only: they cannot be streamed
    dropout: float = 0.0          # training: embeddings, between layers, before the head
    embedding_dim: int = 0        # > 0: the input is token ids, embedded (lm, text classifiers)

    def __post_init__(self):
        family(self.cell)
        for name in ("input_size", "hidden_size", "num_layers", "output_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.head not in HEADS:
            raise ConfigError(f"head {self.head!r} is unknown; expected one of {', '.join(HEADS)}")
        if self.nonlinearity not in NONLINEARITIES:
            raise ConfigError(f"nonlinearity {self.nonlinearity!r} is unknown; expected tanh or relu")
        if self.nonlinearity != "tanh" and self.cell != "rnn":
            raise ConfigError(f"nonlinearity applies to 'rnn' cells only, not {self.cell!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.head == "lm":
            if self.embedding_dim < 1:
                raise ConfigError("an 'lm' head needs embedding_dim >= 1 (token ids are embedded)")
            if self.bidirectional:
                raise ConfigError("a language model predicts the next character and cannot see "
                                  "the future: bidirectional=True is not allowed with head 'lm'")
        elif self.embedding_dim and self.head == "regress":
            raise ConfigError("embedding_dim is for token inputs (language models and text "
                              "classifiers); a regressor takes frames: set it to 0")
        if self.embedding_dim < 0:
            raise ConfigError("embedding_dim must be 0 (frames in) or positive (token ids in)")

    @property
    def family(self) -> CellFamily:
        return FAMILIES[self.cell]

    @property
    def name(self) -> str:
        """A short name such as ``lstm``, ``rnn-relu`` or ``gru-bi``."""
        name = self.family.describe(self.nonlinearity)
        return name + ("-bi" if self.bidirectional else "")

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def streamable(self) -> bool:
        return not self.bidirectional

    @property
    def tokens(self) -> bool:
        """The input is token ids (one per step), embedded before the first layer."""
        return self.embedding_dim > 0

    @property
    def rnn_input_size(self) -> int:
        return self.embedding_dim if self.tokens else self.input_size

    def macs_per_step(self) -> int:
        """Multiply-accumulates per time step and stream: cells of every layer plus the head."""
        f, h, d = self.family, self.hidden_size, self.directions
        total = f.macs_per_step(self.rnn_input_size, h) * d
        total += f.macs_per_step(h * d, h) * d * (self.num_layers - 1)
        return total + h * d * self.output_size

    def replace(self, **changes) -> "ModelConfig":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        if not isinstance(data, dict):
            raise ConfigError(f"a model config is a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown model config field(s): {', '.join(unknown)}; "
                              f"known fields are {', '.join(sorted(known))}")
        return cls(**data)


SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True)
class TrainConfig:
    """How to train. ``bptt`` set: truncated BPTT over long streams, state carried and detached
    between windows of that many steps; unset: BPTT over whole sequences."""

    epochs: int = 20
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    clip_norm: float = 1.0
    schedule: str = "cosine"      # learning rate: cosine decay after a short warm-up, or constant
    warmup_steps: int = 20        # optimiser steps of linear warm-up (early stopping waits)
    bptt: int | None = None
    patience: int = 4             # early stopping: epochs without a better validation loss
    min_delta: float = 1e-6       # ... better by at least this much
    seed: int = 0
    time_budget: float | None = None  # seconds; stop after the epoch that crosses it (off: None)
    difference: bool | None = None  # forecast: model one-step changes (None: the trend test)
    select: str = "loss"          # the best epoch (kept, and early stopping): "loss" or "metric"

    def __post_init__(self):
        for name in ("epochs", "batch_size", "patience", "warmup_steps", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ConfigError(f"{name} must be an int, got {value!r}")
        for name in ("lr", "weight_decay", "clip_norm", "min_delta"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
                    not math.isfinite(value):
                raise ConfigError(f"{name} must be a finite number, got {value!r}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if self.clip_norm <= 0:
            raise ConfigError(f"clip_norm must be > 0, got {self.clip_norm}")
        if self.select not in ("loss", "metric"):
            raise ConfigError(f"select {self.select!r} is unknown; expected loss or metric")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule {self.schedule!r} is unknown; expected cosine or constant")
        if self.bptt is not None and self.bptt < 1:
            raise ConfigError(f"bptt must be >= 1 or unset, got {self.bptt}")
        if self.patience < 1:
            raise ConfigError(f"patience must be >= 1, got {self.patience}")
        if self.warmup_steps < 0 or self.min_delta < 0:
            raise ConfigError("warmup_steps and min_delta must be >= 0")
        if self.time_budget is not None and self.time_budget <= 0:
            raise ConfigError(f"time_budget must be > 0 seconds or None (off), got "
                              f"{self.time_budget}")

    def replace(self, **changes) -> "TrainConfig":
        """A copy with ``changes``; ``None`` sets a field to None (bptt or time_budget off)."""
        return replace(self, **changes)
