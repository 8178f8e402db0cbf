"""Forecasting a sensor stream: predict every channel's next value.

Generated streams are noisy mixtures of periodic signals with a slow drift and a cross-channel
coupling, like vibration or temperature sensors. The metric is the mean absolute error of the
one-step forecast, in the data's own units, next to the naive last-value forecast.

A series with a trend leaves the range it was trained on; such a series is modelled through
its one-step changes instead (:class:`Differencing`), and the exported graph turns them back
into levels. :func:`choose_difference` decides from the training split unless
``TrainConfig(difference=True/False)`` (``--difference`` / ``--no-difference``) says.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from edgernn import csvio
from edgernn.config import ModelConfig, TrainConfig
from edgernn.contract import Normalization
from edgernn.errors import DataError
from edgernn.tasks.base import (Split, Task, TaskData, builtin_ref, file_ref, fit_normalization,
                                invert_normalization, padded, read_npz, read_text)

HELP = ("A forecast .npz holds 'series' of shape (T, C) (one stream) or (N, T, C) (N streams; "
        "pad shorter ones with NaN at the end, or give 'lengths' (N,)) of float values, and "
        "optionally 'feature_names' (C,); a CSV holds one row per time step and one column per "
        "channel, with an optional header row naming the channels.")


def _pairs(streams: np.ndarray, lengths: np.ndarray | None = None) -> Split:
    """Inputs are every step but the last, targets the step after: (N, T-1, C) each."""
    return Split(x=streams[:, :-1].astype(np.float32), y=streams[:, 1:].astype(np.float32),
                 lengths=None if lengths is None else lengths - 1)


class ForecastTask(Task):
    name = "forecast"
    summary = "one-step forecasting of a 3-channel sensor stream (periodic + drift + noise)"
    metric = "mae"
    higher_is_better = False
    threshold = 0.9               # reached when MAE <= 0.9 x the naive last-value MAE
    metric_tolerance, metric_relative = 0.05, True      # 5% of the reference MAE
    dataset = "sensor"
    channels, length = 3, 1000
    model = ModelConfig(cell="gru", input_size=3, hidden_size=64, num_layers=1, output_size=3,
                        head="regress")
    training = TrainConfig(epochs=25, batch_size=16, lr=5e-3, bptt=50, patience=5)
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
        data = TaskData(train=_pairs(self._streams(rng, n)),
                        val=_pairs(self._streams(rng, max(2, n // 6))),
                        test=_pairs(self._streams(rng, max(2, n // 6))))
        data.ref = builtin_ref(self.dataset, seed, size, data, self.channels)
        return data

    def stream(self, steps: int, seed: int = 0) -> np.ndarray:
        return self._streams(np.random.default_rng(seed), 1, steps)[0, :steps]

    def load(self, path) -> TaskData:
        names = None
        if str(path).lower().endswith(".csv"):
            series, names = read_csv(path)
            lengths = None
        else:
            arrays = read_npz(path, ("series",), HELP, allow_nan=True)
            series, lengths = arrays["series"], arrays.get("lengths")
            if "feature_names" in arrays:
                names = [str(v) for v in arrays["feature_names"].reshape(-1)]
        if series.ndim == 2:
            series = series[None]
        if series.ndim != 3 or series.dtype.kind not in "fiu":
            raise DataError(f"{path}: 'series' has shape {series.shape} and dtype {series.dtype}; "
                            f"expected (T, C) or (N, T, C) numbers. {HELP}")
        if names is not None and len(names) != series.shape[-1]:
            raise DataError(f"{path}: {len(names)} channel names for {series.shape[-1]} channels")
        series, lengths = padded(series.astype(np.float32), lengths, "series", path)
        n, t, _ = series.shape
        whole = None
        if n >= 3:
            if lengths is not None and (lengths < 3).any():
                raise DataError(f"{path}: every stream needs at least 3 steps")
            a, b = max(1, int(n * 0.8)), max(2, int(n * 0.9))
            train, val, test = (_pairs(series[s], None if lengths is None else lengths[s])
                                for s in (slice(0, a), slice(a, b), slice(b, n)))
        else:
            if t < 60:
                raise DataError(f"{path}: a single stream of {t} steps is too short; provide at "
                                f"least 60 time steps")
            if lengths is not None:
                raise DataError(f"{path}: a single stream cannot hold padding; trim the NaN rows")
            a, b = int(t * 0.8), int(t * 0.9)
            whole = series[0]
            # Validation and test run the stream from its start, as a device would, and are
            # scored on their own part only: the state has seen everything before it.
            train = _pairs(_cut(series[:, :a], 16, 100))
            val, test = _pairs(series[:, :b]), _pairs(series)
            val.start, test.start = a - 1, b - 1
        data = TaskData(train=train, val=val, test=test, stream=whole)
        data.ref = file_ref(path, data, series.shape[-1], names)
        return data

    def fit_config(self, config: ModelConfig, data: TaskData) -> ModelConfig:
        c = data.train.x.shape[-1]
        return config.replace(input_size=c, output_size=c)

    def normalization(self, data):
        # Targets are the next inputs, so outputs are denormalised with the input statistics.
        norm = fit_normalization(data.train.x, data.train.mask())
        return norm, norm

    def loss(self, outputs, y, mask=None):
        import torch.nn.functional as F

        if mask is None:
            return F.mse_loss(outputs, y)
        return F.mse_loss(outputs[mask], y[mask])

    def item_scores(self, outputs, split, post=None) -> np.ndarray:
        err = np.abs(invert_normalization(outputs, post) - split.y).mean(-1)   # (N, T)
        mask = split.mask()
        return err.reshape(-1) if mask is None else err[mask]

    def baseline(self, split) -> dict[str, float]:
        err = np.abs(split.x - split.y).mean(-1)
        mask = split.mask()
        return {"naive_mae": float(err.mean() if mask is None else err[mask].mean())}

    def reached(self, value: float, split: Split | None = None) -> bool:
        if split is None:
            return False
        return value <= self.threshold * self.baseline(split)["naive_mae"]

    def behind(self, result) -> str:
        naive = result.baseline.get("naive_mae")
        if naive is None or result.test_metric < naive:
            return ""
        return (f"test MAE {result.test_metric:.4g} is worse than the naive last-value "
                f"forecast ({naive:.4g})")

    def advice(self, result=None) -> str:
        if result is not None and result.difference is None:
            return ("the model forecasts levels: if the series trends or wanders out of the "
                    "range it was trained on, --difference models its changes; else try more "
                    "--epochs, a larger --hidden or a longer --bptt")
        return ("the model forecasts through changes: try more --epochs, a larger --hidden or "
                "a longer --bptt; a series stationary around one level may do better with "
                "--no-difference")


@dataclass(frozen=True)
class Differencing:
    """Forecasting through one-step changes: the network sees ``d_t = x_t - x_{t-1}`` (0 at a
    stream's first step) and predicts ``x_{t+1} - x_t``; both in units of ``norm``, the
    changes' statistics on the training split."""

    norm: Normalization

    @classmethod
    def fit(cls, train: Split) -> "Differencing":
        return cls(fit_normalization(changes(train.x), train.mask()))

    def split(self, split: Split) -> Split:
        """The split as the network sees it: changes in, next changes as targets (raw units)."""
        return replace(split, x=changes(split.x), y=split.y - split.x)

    def levels(self, split: Split, outputs: np.ndarray) -> np.ndarray:
        """Next-level forecasts (raw units) from the network's normalised change outputs."""
        return split.x + invert_normalization(outputs, self.norm)


def choose_difference(data: TaskData, given: bool | None) -> tuple[bool, str]:
    """Whether to model changes, and the line that says why: ``given`` (``--difference`` /
    ``--no-difference``) wins; otherwise the augmented Dickey-Fuller test on the training
    split's streams (:mod:`edgernn.tasks.trend`)."""
    if given is not None:
        return given, ("differences (--difference)" if given else "levels (--no-difference)")
    from edgernn.tasks import trend

    if data.stream is not None:                  # one stream: its training part, uncut
        streams = [data.stream[:data.val.start + 1]]
    else:
        x, lengths = data.train.x, data.train.lengths
        streams = [x[i] if lengths is None else x[i, :lengths[i]] for i in range(len(x))]
    return trend.decide(streams, data.ref.feature_names if data.ref else None)


def changes(x: np.ndarray) -> np.ndarray:
    """``x_t - x_{t-1}`` along time, 0 at each sequence's first step: (N, T, C)."""
    out = np.zeros_like(x)
    out[:, 1:] = x[:, 1:] - x[:, :-1]
    return out


def _cut(series: np.ndarray, pieces: int, min_len: int) -> np.ndarray:
    """One long training stream into up to ``pieces`` parallel streams, for batched TBPTT."""
    _, t, c = series.shape
    k = max(1, min(pieces, t // min_len))
    usable = (t // k) * k
    return series[:, :usable].reshape(k, usable // k, c)


def read_csv(path) -> tuple[np.ndarray, list[str] | None]:
    """Rows of comma-separated numbers, and the header's names when the first row has them."""
    lines = [ln.strip() for ln in read_text(path, HELP).splitlines() if ln.strip()]
    names = None
    if lines and csvio.is_header(lines[0]):
        names = csvio.fields(lines[0])
        lines = lines[1:]
    rows = []
    for i, line in enumerate(lines, start=1):
        try:
            rows.append(list(csvio.numbers(line)))
        except ValueError:
            raise DataError(f"{path}: data row {i} ({line[:60]!r}) is not comma-separated numbers. "
                            f"{HELP}") from None
    if not rows:
        raise DataError(f"{path} holds no data rows. {HELP}")
    if len({len(r) for r in rows}) != 1 or (names and len(names) != len(rows[0])):
        raise DataError(f"{path}: rows must all have the same number of columns"
                        f"{' as the header' if names else ''}. {HELP}")
    series = np.asarray(rows, dtype=np.float32)
    if not np.isfinite(series).all():
        raise DataError(f"{path} holds NaN or inf; clean the data first")
    return series, names


