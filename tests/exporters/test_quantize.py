"""Quantization: every cell, each mode, really int8, behind the gate."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from edgernn.checkpoint import Checkpoint, save_checkpoint  # noqa: E402
from edgernn.config import ModelConfig  # noqa: E402
from edgernn.contract import Normalization  # noqa: E402
from edgernn.errors import ConfigError, ExportError, ModelError, ParityError  # noqa: E402
from edgernn.exporters import export  # noqa: E402
from edgernn.exporters.quant.quantize import Gate, quantize  # noqa: E402
from edgernn.models import build  # noqa: E402
from edgernn.runtime import load  # noqa: E402
from tests.conftest import run_cli  # noqa: E402
from tests.tolerances import FP16_VS_FP32  # noqa: E402

CELLS = {"lstm": ("lstm", "tanh"), "gru": ("gru", "tanh"), "rnn-tanh": ("rnn", "tanh"),
         "rnn-relu": ("rnn", "relu")}
GATE = Gate(horizon=500)


def artifact(tmp_path, cell, act="tanh", ops=None):
    cfg = ModelConfig(cell=cell, nonlinearity=act, input_size=6, hidden_size=32, num_layers=2,
                      output_size=4, head="classify_step")
    ckpt = Checkpoint(config=cfg, state_dict=build(cfg, seed=0).state_dict(),
                      preprocessing=Normalization([1.0] * 6, [2.0] * 6),
                      labels=["a", "b", "c", "d"])
    path = save_checkpoint(tmp_path / f"{cell}.pt", ckpt)
    return path, export(path, tmp_path / f"{cell}.onnx", ops=ops).path


def calibration(tmp_path, scale=1.0):
    x = np.random.default_rng(0).normal(1.0, 2.0, size=(8, 40, 6)) * scale
    np.savez(tmp_path / f"calib{scale:g}.npz", x=x.astype(np.float32))
    return str(tmp_path / f"calib{scale:g}.npz")


@pytest.mark.parametrize("mode", ["dynamic", "static"])
@pytest.mark.parametrize("ops", ["compact", "lean", "fused"])
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_every_cell_form_and_mode_is_really_int8(tmp_path, cell, ops, mode):
    """From any step form, no checkpoint needed: fused operators are lowered from the file."""
    ckpt, fp32 = artifact(tmp_path, *CELLS[cell], ops=ops)
    out = tmp_path / "q.onnx"
    report = quantize(fp32, out, mode=mode, gate=GATE, inputs="int8", recurrent="int8",
                      calibration=calibration(tmp_path) if mode == "static" else None,
                      measure_latency=False)
    assert report.passed and report.coverage.weight_tensors_int8 > 0
    # relu states are unbounded: per row at run time (dynamic) or calibrated (static)
    assert report.coverage.mac_share_int8 > 0.99
    onnx.checker.check_model(onnx.load(out), full_check=True)
    ops_used = {n.op_type for n in onnx.load(out).graph.node}
    assert "MatMulInteger" in ops_used and not ops_used & {"LSTM", "GRU", "RNN", "Gemm",
                                                            "MatMul", "DynamicQuantizeLinear"}
    model = load(out)
    c = model.contract
    assert c.quantization.mode == mode and c.labels == ["a", "b", "c", "d"]
    assert c.preprocessing.mean == [1.0] * 6 and c.provenance.weights_sha256
    assert any(p.reference == "fp32" for p in c.parity)
    y = model.stream().feed(np.random.default_rng(1).normal(size=(5, 6)))
    assert y.shape == (5, 4) and np.isfinite(y).all()


def test_fp16(tmp_path):
    ckpt, fp32 = artifact(tmp_path, "gru")
    report = quantize(fp32, tmp_path / "h.onnx", mode="fp16", checkpoint=ckpt, gate=GATE)
    assert report.passed and report.size_ratio < 0.8     # tiny model: graph and contract weigh in
    inits = onnx.load(tmp_path / "h.onnx").graph.initializer
    assert all(t.data_type == onnx.TensorProto.FLOAT16 for t in inits if len(t.dims) == 2)
    assert any("CPU target" in n for n in report.notes)
    assert load(tmp_path / "h.onnx").contract.quantization.mode == "fp16"


def test_gate_rejects_absurd_calibration_and_writes_nothing(tmp_path):
    ckpt, fp32 = artifact(tmp_path, "lstm")
    out = tmp_path / "bad.onnx"
    with pytest.raises(ParityError, match="fails the quality gate: p99 error .* Nothing was "
                                          "written"):
        quantize(fp32, out, mode="static", gate=GATE, recurrent="int8", inputs="int8",
                 calibration=calibration(tmp_path, scale=1e4), measure_latency=False)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".onnx") == ["lstm.onnx"]


def test_fused_operators_are_quantized_from_the_file_alone(tmp_path):
    _, fp32 = artifact(tmp_path, "gru", ops="fused")
    report = quantize(fp32, tmp_path / "q.onnx", gate=GATE, measure_latency=False)
    assert report.passed and "written out as matrix products" in " ".join(report.notes)
    with pytest.raises(ConfigError, match="dynamic quantization works on step graphs .also: fp16 on chunk"):
        quantize(export(artifact(tmp_path, "gru")[0], tmp_path / "c.onnx", graph="chunk").path,
                 tmp_path / "q2.onnx")


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_fp16_of_a_chunk_graph_loads_and_streams(tmp_path, cell):
    """The nvidia-gpu profile's form (fused chunk graph, fp16). An fp16 Transpose there once
    crashed ONNX Runtime's session creation (segfault); the file must load at the default
    optimisation level and stream as the fp32 file does (fp16 rounding: 1e-2 on outputs of
    order 1)."""
    ckpt, _ = artifact(tmp_path, cell)
    chunk = export(ckpt, tmp_path / "c.onnx", graph="chunk").path
    report = quantize(chunk, tmp_path / "c.fp16.onnx", mode="fp16", gate=GATE,
                      measure_latency=False)
    assert report.passed and any("keep fp32 weights" in n for n in report.notes)
    xs = np.random.default_rng(1).normal(1.0, 2.0, (20, 6)).astype(np.float32)
    want = load(chunk).stream().feed(xs)
    got = load(tmp_path / "c.fp16.onnx").stream().feed(xs)
    np.testing.assert_allclose(got, want, atol=FP16_VS_FP32)
    assert load(tmp_path / "c.fp16.onnx").contract.quantization.mode == "fp16"


def test_a_file_that_is_not_an_edgernn_model(tmp_path):
    torch.onnx.export(torch.nn.Linear(3, 2), (torch.randn(1, 3),), str(tmp_path / "l.onnx"),
                      dynamo=False)
    with pytest.raises(ModelError, match="carries no edgernn contract"):
        quantize(tmp_path / "l.onnx", tmp_path / "q.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"junk")
    with pytest.raises(ModelError, match="is not a readable ONNX file"):
        quantize(tmp_path / "junk.onnx", tmp_path / "q.onnx")


def test_quantizing_twice_is_refused(tmp_path):
    ckpt, fp32 = artifact(tmp_path, "lstm")
    quantize(fp32, tmp_path / "q.onnx", gate=GATE, measure_latency=False)
    with pytest.raises(ConfigError, match="already quantized"):
        quantize(tmp_path / "q.onnx", tmp_path / "qq.onnx")


def test_keeping_the_recurrent_path_fp32(tmp_path):
    ckpt, fp32 = artifact(tmp_path, "gru")
    full = quantize(fp32, None, checkpoint=ckpt, recurrent="int8", gate=GATE,
                    measure_latency=False)
    partial = quantize(fp32, None, checkpoint=ckpt, recurrent="fp32", gate=GATE,
                       measure_latency=False)
    assert partial.recurrent == "fp32" and full.recurrent == "int8"
    assert 0 < partial.coverage.weight_tensors_int8 < full.coverage.weight_tensors_int8
    assert partial.coverage.mac_share_int8 < full.coverage.mac_share_int8


def test_silent_no_op_is_an_error(tmp_path, monkeypatch):
    import importlib

    q = importlib.import_module("edgernn.exporters.quant.quantize")
    from edgernn.exporters.quant.int8 import Plan

    ckpt, fp32 = artifact(tmp_path, "lstm")
    monkeypatch.setattr(q, "rewrite", lambda proto, *a, **k: (proto, Plan(products=3)))
    with pytest.raises(ExportError, match="found no product to make int8"):
        quantize(fp32, tmp_path / "q.onnx")
    assert not (tmp_path / "q.onnx").exists()


def test_cli(tmp_path):
    ckpt, fp32 = artifact(tmp_path, "rnn")
    out = run_cli("quantize", fp32, "--checkpoint", ckpt, "--horizon", "300", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["passed"] and doc["coverage"]["weight_tensors_int8"] > 0
    assert (tmp_path / "rnn.int8.onnx").exists() and doc["size_ratio"] < 1
    bad = run_cli("quantize", fp32, "--mode", "static", "--recurrent", "int8", "--inputs",
                  "int8", "--calibration", calibration(tmp_path, 1e4), "-o", tmp_path / "x.onnx",
                  "--horizon", "300")
    assert bad.returncode == 1 and "fails the quality gate" in bad.stderr
    assert not (tmp_path / "x.onnx").exists()


def test_calibration_points_come_from_the_whole_training_split():
    from edgernn.exporters.quant.calibrate import positions
    from edgernn.tasks.base import Split

    long = Split(np.zeros((1, 100_000, 3), np.float32), np.zeros(1))
    seqs, steps = positions(long, 1024)
    assert len(steps) == 1024 and steps.max() > 90_000 and steps.min() < 10_000
    many = Split(np.zeros((5000, 20, 3), np.float32), np.zeros(5000),
                 lengths=np.full(5000, 10))
    seqs, steps = positions(many, 512)
    assert len(np.unique(seqs)) > 400 and steps.max() < 10          # never padding


def test_static_calibration_is_recorded_with_its_data(forecast_checkpoint, tmp_path):
    fp32 = export(forecast_checkpoint, tmp_path / "f.onnx", ops="decomposed").path
    report = quantize(fp32, tmp_path / "s.onnx", mode="static", gate=GATE,
                      calibration_frames=256, measure_latency=False)
    cov = load(tmp_path / "s.onnx").contract.quantization
    assert cov.calibration_dataset.kind == "builtin" and cov.calibration_dataset.split == "train"
    assert cov.calibration_dataset.steps == 256 and "256 (frame, state) points" in cov.calibration
    assert report.data.split == "test" and report.metric.items == report.data.steps


def test_force_writes_the_best_failing_attempt_and_says_which(tmp_path):
    ckpt, fp32 = artifact(tmp_path, "lstm")
    out = tmp_path / "forced.onnx"
    report = quantize(fp32, out, mode="static", gate=GATE, inputs="int8",
                      calibration=calibration(tmp_path, scale=1e4), force=True,
                      measure_latency=False)
    assert not report.passed and out.exists()
    note = next(n for n in report.notes if n.startswith("--force"))
    assert f"wrote the {report.attempt} attempt, the best of 2" in note and "p99 error" in note
    others = [n for n in report.notes if "recurrent products failed the gate" in n]
    assert len(others) == 2


def test_a_checkpoint_of_another_model_is_refused(tmp_path):
    ckpt, fp32 = artifact(tmp_path, "gru")
    cfg = ModelConfig(cell="gru", input_size=6, hidden_size=32, num_layers=2, output_size=4,
                      head="classify_step")
    other = save_checkpoint(tmp_path / "other.pt", Checkpoint(
        config=cfg, state_dict=build(cfg, seed=7).state_dict()))
    out = run_cli("quantize", fp32, "--checkpoint", other, "-o", tmp_path / "q.onnx")
    assert out.returncode == 2 and "does not hold the weights of" in out.stderr
    assert not (tmp_path / "q.onnx").exists()


def test_the_int8_contract_records_figures_measured_on_the_int8_file(forecast_checkpoint,
                                                                     tmp_path):
    """The fp32 file's parity (vs torch at fp32 rounding) never carries over: the int8 file
    records its own error vs fp32 (the gate) and, given the checkpoint, vs PyTorch."""
    from edgernn.exporters.checks.parity import drive
    from edgernn.exporters.from_torch.source import resolve

    fp32 = export(forecast_checkpoint, tmp_path / "f.onnx").path
    assert [p.reference for p in load(fp32).contract.parity] == ["torch"]
    quantize(fp32, tmp_path / "bare.onnx", gate=GATE, measure_latency=False)
    bare = load(tmp_path / "bare.onnx").contract.parity
    assert {p.reference for p in bare} == {"fp32"}
    quantize(fp32, tmp_path / "q.onnx", gate=GATE, checkpoint=forecast_checkpoint,
             measure_latency=False)
    parity = load(tmp_path / "q.onnx").contract.parity
    torch_p99 = next(p for p in parity if (p.reference, p.metric) ==
                     ("torch", "p99_error_over_std"))
    assert all(p.metric != "max_abs" for p in parity)           # the fp32 figure is gone
    # measured again here, on a stream of the same task data: of the same order, not fp32's
    from edgernn.tasks import get_task
    from edgernn.tasks.resolve import data_for_contract

    model = load(tmp_path / "q.onnx")
    data = data_for_contract(model.contract, None, stage="test", model="q")
    x, _ = get_task("forecast").drift_input(data, GATE.horizon, 0)
    want, _ = resolve(forecast_checkpoint).reference(x)
    got, _ = drive(model, x)
    p99 = np.percentile(np.abs(got - want).reshape(*want.shape[:2], -1).max(-1),
                        99) / np.std(want)
    assert torch_p99.measured == pytest.approx(p99, rel=1e-6)
    assert torch_p99.measured > 1e-3        # int8 rounding, three orders above fp32's 1e-6


def test_quantize_runs_without_torch(forecast_checkpoint, tmp_path):
    """From the file alone: a `torch` that cannot be imported changes nothing; asking to read
    a checkpoint then names the extra to install."""
    fp32 = export(forecast_checkpoint, tmp_path / "f.onnx").path
    blocker = tmp_path / "block" / "torch"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('torch is blocked in this test')\n")
    env = {"PYTHONPATH": str(tmp_path / "block")}
    done = run_cli("quantize", fp32, "-o", tmp_path / "q.onnx", env=env)
    assert done.returncode == 0, done.stderr
    assert load(tmp_path / "q.onnx").contract.quantization.mode == "dynamic"
    done = run_cli("quantize", fp32, "-o", tmp_path / "r.onnx", "--checkpoint",
                   forecast_checkpoint, env=env)
    assert done.returncode == 1 and "pip install 'edgernn[torch]'" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "r.onnx").exists()
