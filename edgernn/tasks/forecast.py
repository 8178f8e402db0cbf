"""Forecasting a sensor stream: predict every channel's next value.

Generated streams are noisy mixtures of periodic signals with a slow drift and a cross-channel
coupling, like vibration or temperature sensors. The metric is the mean absolute error of the
one-step forecast, in the data's own units, next to the naive last-value forecast.
"""

from __future__ import annotations

import numpy as np

from edgernn.config import ModelConfig, TrainConfig
from edgernn.errors import DataError
from edgernn.tasks.base import Split, Task, TaskData, fit_normalization, read_npz

HELP = ("A forecast .npz holds 'series' of shape (T, C) (one stream) or (N, T, C) (N streams) "
        "of float values; a CSV holds one row per time step and one column per channel, with an "
        "optional header row.")


def _pairs(streams: np.ndarray) -> Split:
    """Inputs are every step but the last, targets the step after: (N, T-1, C) each."""
    return Split(x=streams[:, :-1].astype(np.float32), y=streams[:, 1:].astype(np.float32))


class ForecastTask(Task):
    name = "forecast"
    summary = "one-step forecasting of a 3-channel sensor stream (periodic + drift + noise)"
    metric = "mae"
    higher_is_better = False
    threshold = 0.9               # reached when MAE <= 0.9 x the naive last-value MAE
    metric_tolerance, metric_relative = 0.05, True      # 5% of the reference MAE
    channels, length = 3, 1000
    model = ModelConfig(cell="gru", input_size=3, hidden_size=64, num_layers=1, output_size=3,
                        head="regress")
    training = TrainConfig(epochs=25, batch_size=16, lr=5e-3, bptt=50, patience=5,
                           time_budget=45)
    data_help = HELP

    def _streams(self, rng, n: int, length: int | None = None) -> np.ndarray:
        """``n`` streams of ``length`` + 1 steps: (n, length + 1, channels)."""
        t = np.arange((length or self.length) + 1, dtype=np.float64)
        out = np.empty((n, t.size, self.channels))
        for i in range(n):
            for c in range(self.channels):
                periods = rng.uniform(12.0, 120.0, 3)
                amps = rng.uniform(0.3, 1.0, 3)
                phases = rng.uniform(0, 2 * np.pi, 3)
                wave = (amps[:, None] * np.sin(2 * np.pi * t / periods[:, None]
                                               + phases[:, None])).sum(0)
                drift = np.cumsum(rng.normal(0.0, 0.01, t.size))
                out[i, :, c] = wave + drift + 0.5 * c
            out[i, :, -1] += 0.5 * np.roll(out[i, :, 0], 3)            # coupled channel
        out += rng.normal(0.0, 0.1, out.shape)                         # sensor noise
        return out.astype(np.float32)

    def generate(self, seed: int = 0, size: float = 1.0) -> TaskData:
        rng = np.random.default_rng(seed)
        n = max(4, int(48 * size))
        return TaskData(train=_pairs(self._streams(rng, n)),
                        val=_pairs(self._streams(rng, max(2, n // 6))),
                        test=_pairs(self._streams(rng, max(2, n // 6))))

    def stream(self, steps: int, seed: int = 0) -> np.ndarray:
        return self._streams(np.random.default_rng(seed), 1, steps)[0, :steps]

    def load(self, path) -> TaskData:
        path_str = str(path)
        if path_str.lower().endswith(".csv"):
            series = _read_csv(path)
        else:
            series = read_npz(path, ("series",), HELP)["series"]
        if series.ndim == 2:
            series = series[None]
        if series.ndim != 3 or series.dtype.kind not in "fiu":
            raise DataError(f"{path}: 'series' has shape {series.shape} and dtype {series.dtype}; "
                            f"expected (T, C) or (N, T, C) numbers. {HELP}")
        series = series.astype(np.float32)
        n, t, _ = series.shape
        if n >= 3:
            a, b = max(1, int(n * 0.8)), max(2, int(n * 0.9))
            parts = series[:a], series[a:b], series[b:]
        else:
            if t < 60:
                raise DataError(f"{path}: a single stream of {t} steps is too short; provide at "
                                f"least 60 time steps")
            a, b = int(t * 0.8), int(t * 0.9)
            parts = series[:, :a], series[:, a:b], series[:, b:]
            parts = (_cut(parts[0], 16, 100),) + parts[1:]
        train, val, test = (_pairs(p) for p in parts)
        return TaskData(train=train, val=val, test=test, source=path_str)

    def fit_config(self, config: ModelConfig, data: TaskData) -> ModelConfig:
        c = data.train.x.shape[-1]
        return config.replace(input_size=c, output_size=c)

    def normalization(self, data):
        # Targets are the next inputs, so outputs are denormalised with the input statistics.
        norm = fit_normalization(data.train.x)
        return norm, norm

    def loss(self, outputs, y):
        import torch.nn.functional as F

        return F.mse_loss(outputs, y)

    def score(self, outputs, split, post=None) -> float:
        from edgernn.tasks.base import invert_normalization

        return float(np.abs(invert_normalization(outputs, post) - split.y).mean())

    def baseline(self, split) -> dict[str, float]:
        return {"naive_mae": float(np.abs(split.x - split.y).mean())}

    def reached(self, value: float, split: Split | None = None) -> bool:
        if split is None:
            return False
        return value <= self.threshold * self.baseline(split)["naive_mae"]


def _cut(series: np.ndarray, pieces: int, min_len: int) -> np.ndarray:
    """One long training stream into up to ``pieces`` parallel streams, for batched TBPTT."""
    _, t, c = series.shape
    k = max(1, min(pieces, t // min_len))
    usable = (t // k) * k
    return series[:, :usable].reshape(k, usable // k, c)


def _read_csv(path) -> np.ndarray:
    try:
        with open(path, encoding="utf-8") as fh:
            lines = [ln.strip() for ln in fh if ln.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if lines and not _numeric(lines[0]):
        lines = lines[1:]                                   # a header row
    rows = []
    for i, line in enumerate(lines, start=1):
        try:
            rows.append([float(v) for v in line.split(",")])
        except ValueError:
            raise DataError(f"{path}: data row {i} ({line[:60]!r}) is not comma-separated numbers. "
                            f"{HELP}") from None
    if not rows or len({len(r) for r in rows}) != 1:
        raise DataError(f"{path}: rows must all have the same number of columns. {HELP}")
    series = np.asarray(rows, dtype=np.float32)
    if not np.isfinite(series).all():
        raise DataError(f"{path} holds NaN or inf; clean the data first")
    return series


def _numeric(line: str) -> bool:
    try:
        [float(v) for v in line.split(",")]
        return True
    except ValueError:
        return False
