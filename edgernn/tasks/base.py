"""What a built-in task is: data, a loss, a metric, and sensible defaults.

Tasks are numpy-only apart from :meth:`Task.loss`, so the metric of an ONNX artifact is computed
by the very same code as the metric of the PyTorch model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgernn.config import ModelConfig, TrainConfig
from edgernn.contract import Normalization
from edgernn.errors import DataError


@dataclass
class Split:
    x: np.ndarray    # (N, T, F) float32 frames, or (N, T) int64 token ids
    y: np.ndarray    # targets, shaped by the task

    def __len__(self) -> int:
        return len(self.x)

    def head(self, items: int, steps: int) -> "Split":
        """The first ``items`` sequences, cut to their first ``steps`` steps (targets too)."""
        y = self.y[:items]
        return Split(x=self.x[:items, :steps], y=y[:, :steps] if y.ndim >= 2 else y)


@dataclass
class TaskData:
    train: Split
    val: Split
    test: Split
    labels: list[str] | None = None
    vocabulary: str | None = None
    source: str = "generated"


class Task:
    name: str = ""
    summary: str = ""
    metric: str = ""
    higher_is_better: bool = True
    threshold: float = 0.0        # the "useful level" the default configuration reaches
    metric_tolerance: float = 0.0  # how far an artifact's metric may move from the reference's
    metric_relative: bool = False  # ... as a share of the reference value, not in metric units
    reset_every: int | None = None  # a device resets the state this often (per clip); None: never
    model: ModelConfig
    training: TrainConfig
    data_help: str = ""

    def generate(self, seed: int = 0, size: float = 1.0) -> TaskData:
        raise NotImplementedError

    def load(self, path: str | Path) -> TaskData:
        raise NotImplementedError

    def loss(self, outputs, y):
        """Training loss (torch tensors) from ``model(x)`` outputs and targets."""
        raise NotImplementedError

    def score(self, outputs: np.ndarray, split: Split, post: Normalization | None) -> float:
        """The task metric from per-step outputs (B, T, O), as a streamed model produces them."""
        raise NotImplementedError

    def baseline(self, split: Split) -> dict[str, float]:
        """Reference figures a trained model should beat (e.g. a naive forecast)."""
        return {}

    def reached(self, value: float, split: Split | None = None) -> bool:
        """Whether ``value`` of the metric is the useful level this task's defaults reach."""
        return value >= self.threshold if self.higher_is_better else value <= self.threshold

    def metric_close(self, reference: float, value: float) -> bool:
        """Whether an artifact's metric is within tolerance of its reference's."""
        allowed = self.metric_tolerance * (abs(reference) if self.metric_relative else 1.0)
        return abs(value - reference) <= allowed + 1e-12

    def stream(self, steps: int, seed: int = 0) -> np.ndarray:
        """A long realistic input stream, (steps, F) frames or (steps,) ids, for drift checks."""
        raise NotImplementedError

    def drift_input(self, steps: int, seed: int = 0) -> np.ndarray:
        """The long stream for drift checks, as the device would run it: (segments, T, ...),
        the state starting fresh at each segment (one segment when the task never resets)."""
        stream = self.stream(steps, seed)
        if not self.reset_every:
            return stream[None]
        usable = len(stream) // self.reset_every * self.reset_every
        return stream[:usable].reshape(-1, self.reset_every, *stream.shape[1:])

    def fit_config(self, config: ModelConfig, data: TaskData) -> ModelConfig:
        """``config`` with input and output sizes matched to ``data``."""
        return config

    def normalization(self, data: TaskData) -> tuple[Normalization | None, Normalization | None]:
        """Input and output normalisation fitted on the training split (float inputs only)."""
        if data.train.x.dtype.kind != "f":
            return None, None
        norm = fit_normalization(data.train.x)
        return norm, None


# ---------------------------------------------------------------------------- helpers

def fit_normalization(x: np.ndarray) -> Normalization:
    flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
    std = flat.std(axis=0)
    std = np.where(std < 1e-6, 1.0, std)
    return Normalization(mean=[float(v) for v in flat.mean(axis=0)], std=[float(v) for v in std])


def apply_normalization(x: np.ndarray, norm: Normalization | None) -> np.ndarray:
    """``(x - mean) / std`` as contiguous float32; token ids (integers) pass through."""
    if norm is None or x.dtype.kind != "f":
        return np.ascontiguousarray(x)
    return np.ascontiguousarray(
        (x - np.asarray(norm.mean, np.float32)) / np.asarray(norm.std, np.float32),
        dtype=np.float32)


def invert_normalization(y: np.ndarray, norm: Normalization | None) -> np.ndarray:
    if norm is None:
        return y
    return y * np.asarray(norm.std, np.float32) + np.asarray(norm.mean, np.float32)


def split_by_fraction(n: int, fractions=(0.8, 0.1)) -> tuple[slice, slice, slice]:
    a = max(1, int(n * fractions[0]))
    b = max(a + 1, int(n * (fractions[0] + fractions[1])))
    if b >= n:
        raise DataError(f"{n} items are too few to split into train, validation and test; "
                        f"provide at least 3")
    return slice(0, a), slice(a, b), slice(b, n)


def read_npz(path: str | Path, required: tuple[str, ...], help_text: str) -> dict[str, np.ndarray]:
    """Open an .npz file and check it has ``required`` arrays; clear errors otherwise."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as exc:  # zipfile, pickle refusal, truncated file...
        raise DataError(f"{path} is not a readable .npz file ({type(exc).__name__}: {exc}). "
                        f"{help_text}") from None
    missing = [k for k in required if k not in arrays]
    if missing:
        raise DataError(f"{path} has no array(s) {', '.join(missing)} (it has "
                        f"{', '.join(sorted(arrays)) or 'none'}). {help_text}")
    for k, a in arrays.items():
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise DataError(f"{path}: array {k!r} holds NaN or inf; clean the data first")
    return arrays


def check_array(a: np.ndarray, name: str, ndim: int, kinds: str, path, help_text: str) -> np.ndarray:
    if a.ndim != ndim or a.dtype.kind not in kinds:
        want = {"f": "float", "i": "integer", "u": "integer"}
        raise DataError(f"{path}: array {name!r} has shape {a.shape} and dtype {a.dtype}; "
                        f"expected {ndim} dimensions of "
                        f"{' or '.join(sorted({want[k] for k in kinds}))}. {help_text}")
    return a


def check_lengths(path, part: str, x: np.ndarray, y: np.ndarray) -> None:
    if len(x) != len(y):
        raise DataError(f"{path}: x_{part} has {len(x)} items but y_{part} has {len(y)}; "
                        f"they must match")
