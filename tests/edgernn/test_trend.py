"""The trend test that decides whether a forecaster models changes: edgernn's augmented
Dickey-Fuller test against statsmodels' own on real series, and what ``train`` does with it
by default on trending data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgernn.tasks import get_task
from edgernn.tasks.trend import adf, decide

statsmodels = pytest.importorskip("statsmodels")


def _series():
    from statsmodels import datasets as d

    co2 = d.co2.load_pandas().data["co2"].resample("MS").mean().ffill().to_numpy()
    rng = np.random.default_rng(0)
    return {"co2": co2, "realgdp": d.macrodata.load_pandas().data["realgdp"].to_numpy(),
            "sunspots": d.sunspots.load_pandas().data["SUNACTIVITY"].to_numpy(),
            "random walk": np.cumsum(rng.normal(size=300)), "white noise": rng.normal(size=300)}


@pytest.mark.parametrize("name", ["co2", "realgdp", "sunspots", "random walk", "white noise"])
def test_the_statistic_is_statsmodels_adfuller(name):
    from statsmodels.tsa.stattools import adfuller

    x = _series()[name]
    ref = adfuller(x, regression="c", autolag="AIC", result_object=False)
    ours = adf(x)
    # the same least-squares problems: agreement to float64 rounding, lags and nobs exactly
    assert ours.statistic == pytest.approx(ref[0], rel=1e-9, abs=1e-9)
    assert (ours.lags, ours.nobs) == (ref[2], ref[3])
    assert ours.critical == pytest.approx(ref[4]["5%"], rel=1e-12)


def test_trends_are_differenced_and_stationary_series_are_not():
    s = _series()
    assert decide([s["co2"][:, None]], ["co2"])[0]
    assert decide([s["random walk"][:, None]])[0]
    chosen, why = decide([s["white noise"][:, None]])
    assert not chosen and why.startswith("levels") and "--difference" in why
    data = get_task("forecast").generate(seed=0)                # the built-in sensor streams
    assert not decide(list(data.train.x))[0]


def test_too_short_to_test():
    with pytest.raises(ValueError, match="at least 20"):
        adf(np.arange(10.0))
    assert decide([np.zeros((5, 1))]) == (False, "levels: the training streams are too short "
                                                 "for a trend test")


@pytest.mark.parametrize("make", ["co2", "realgdp"])
def test_trending_series_beat_naive_with_no_options(tmp_path, make):
    from tests import realdata
    from tests.conftest import run_cli

    data = getattr(realdata, make)(tmp_path)
    out = run_cli("train", "--task", "forecast", "--data", data, "-o", tmp_path / "m.pt",
                  "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["test"] < result["baseline"]["naive_mae"], result["test"]
    assert result["data"]["trend"].startswith("differences: ")
    assert "augmented Dickey-Fuller" in out.stderr               # says what it chose
    assert run_cli("export", tmp_path / "m.pt", "-o", tmp_path / "m.onnx").returncode == 0
    info = json.loads(run_cli("info", tmp_path / "m.onnx", "--json").stdout)["contract"]
    assert info["difference"] is not None and info["dataset"]["trend"] == result["data"]["trend"]
    # the override wins, and a model of levels worse than naive is told so, with the option
    levels = run_cli("train", "--task", "forecast", "--data", data, "--no-difference",
                     "-o", tmp_path / "levels.pt")
    assert levels.returncode == 0, levels.stderr
    assert "worse than the naive last-value forecast" in levels.stdout
    assert "--difference models its changes" in levels.stdout
