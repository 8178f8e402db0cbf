"""Does a forecast series need differencing? The augmented Dickey-Fuller test on the training
split decides what ``edgernn train --task forecast`` does when given neither ``--difference``
nor ``--no-difference``.

A recurrent forecaster trained on levels cannot follow a series out of the range it saw: a
trend or a random walk takes the validation and test parts there, and the model ends up far
worse than the naive last value (statsmodels' co2 and US real GDP: 2x and 7x its error).
Modelled through one-step changes, the same series stays in range. A series that is stationary
around a constant level (a vibration sensor, the built-in sensor task) gains nothing from it.

The test regresses ``dy_t`` on a constant, ``y_{t-1}`` and ``p`` lagged changes, ``p`` chosen
by AIC up to Schwert's ``12 (n/100)^(1/4)`` as statsmodels' ``adfuller(autolag="AIC")`` does,
and compares the t statistic of ``y_{t-1}``'s coefficient with MacKinnon's (2010) 5 % critical
value for ``n`` observations. Not rejecting the unit root means: difference.
``tests/edgernn/test_trend.py`` holds the statistic to statsmodels' own on real series.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_STEPS = 20                   # shorter streams say nothing useful about a trend


@dataclass(frozen=True)
class ADF:
    statistic: float
    critical: float              # at the 5 % level, for this many observations
    lags: int
    nobs: int


def _ols(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares coefficients and the sum of squared residuals."""
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ beta
    return beta, float(resid @ resid)


def critical_5(nobs: int) -> float:
    """MacKinnon (2010) 5 % critical value, constant and no trend, ``nobs`` observations."""
    return -2.86154 - 2.8903 / nobs - 4.234 / nobs ** 2 - 40.040 / nobs ** 3


def adf(series) -> ADF:
    """Augmented Dickey-Fuller test (constant, AIC lag choice) of a 1-D series."""
    y = np.asarray(series, np.float64).reshape(-1)
    y = y[np.isfinite(y)]
    n = len(y)
    if n < MIN_STEPS:
        raise ValueError(f"the test needs at least {MIN_STEPS} values; got {n}")
    dy = np.diff(y)
    maxlag = min(int(np.ceil(12 * (n / 100) ** 0.25)), n // 2 - 2)

    def design(p: int, start: int) -> tuple[np.ndarray, np.ndarray]:
        rows = np.arange(start, len(dy))                       # dy index of each equation
        cols = [np.ones(len(rows)), y[rows]] + [dy[rows - i] for i in range(1, p + 1)]
        return dy[rows], np.stack(cols, 1)

    best, best_aic = 0, np.inf
    for p in range(maxlag + 1):                    # one common sample for the comparison
        target, x = design(p, maxlag)
        _, ssr = _ols(target, x)
        m = len(target)
        aic = m * np.log(ssr / m) + 2 * x.shape[1]
        if aic < best_aic - 1e-12:
            best, best_aic = p, aic
    target, x = design(best, best)
    beta, ssr = _ols(target, x)
    m, k = x.shape
    sigma2 = ssr / (m - k)
    cov = sigma2 * np.linalg.pinv(x.T @ x)
    stat = float(beta[1] / np.sqrt(cov[1, 1])) if cov[1, 1] > 0 else -np.inf
    return ADF(stat, critical_5(m), best, m)


def decide(streams: list[np.ndarray], names: list[str] | None = None) -> tuple[bool, str]:
    """Whether to difference, and one line saying why: streams (T, C) of the training split;
    a channel counts as wandering when the median statistic over its streams does not reject
    the unit root. One wandering channel is enough: it alone would leave the trained range."""
    streams = [s for s in streams if np.isfinite(s).all(-1).sum() >= MIN_STEPS]
    if not streams:
        return False, "levels: the training streams are too short for a trend test"
    c = streams[0].shape[-1]
    names = names or [f"channel {i}" for i in range(c)]
    found = []
    for i in range(c):
        tests = [adf(s[:, i]) for s in streams[:64]]
        stat = float(np.median([t.statistic for t in tests]))
        crit = float(np.median([t.critical for t in tests]))
        found.append((stat - crit, names[i], stat, crit))
    worst = max(found)
    _, name, stat, crit = worst
    if worst[0] >= 0:
        return True, (f"differences: {name} has a trend or unit root (augmented Dickey-Fuller "
                      f"statistic {stat:.2f} >= {crit:.2f}, the 5 % critical value, on the "
                      f"training split); --no-difference models levels")
    return False, (f"levels: every channel is stationary (augmented Dickey-Fuller statistic at "
                   f"most {stat:.2f} < {crit:.2f}, 5 %, on the training split); --difference "
                   f"models changes")
