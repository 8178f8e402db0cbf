import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgernn.errors import ConfigError, ParityError  # noqa: E402
from edgernn.exporters import Tolerances, export, validate  # noqa: E402
from edgernn.exporters.checks.validate import plot, record  # noqa: E402
from edgernn.runtime import load  # noqa: E402
from tests.conftest import run_cli  # noqa: E402


@pytest.fixture(scope="module")
def artifacts(forecast_checkpoint, tmp_path_factory):
    d = tmp_path_factory.mktemp("art")
    return {g: export(forecast_checkpoint, d / f"{g}.onnx", graph=g).path
            for g in ("step", "chunk")}


def test_good_artifacts_pass_every_check(forecast_checkpoint, artifacts):
    report = validate(forecast_checkpoint, list(artifacts.values()), horizon=2000)
    assert report.passed and report.task == "forecast" and report.metric_name == "mae"
    step, chunk = report.artifacts
    names = [c.name for c in chunk.checks]
    assert names[0].startswith("random") and "random chunk splits" in names
    assert any(n.startswith("task data") for n in names)
    assert any(n.startswith("onnx.reference") for n in names)
    states = [s.name for s in load(artifacts["step"]).contract.states]   # lean: h0
    for check in step.checks:  # every output and every state is listed
        assert [e.name for e in check.errors] == ["y", *states]
    assert step.drift.steps == 2000 and step.drift.curve.shape == (2000,)
    assert step.drift.max < 1e-3 and abs(step.drift.slope_per_1k) < 1e-4
    assert step.metric.value == pytest.approx(report.reference_metric, rel=1e-3)
    assert step.metric.items == report.data.steps and report.data.split == "test"
    doc = report.to_dict()
    json.dumps(doc)
    assert doc["artifacts"][0]["drift"]["steps"] == 2000


def test_a_different_model_is_caught(forecast_checkpoint, tmp_path):
    from edgernn.checkpoint import load_checkpoint, save_checkpoint

    other = load_checkpoint(forecast_checkpoint)
    other.state_dict = {k: v + 0.05 for k, v in other.state_dict.items()}
    save_checkpoint(tmp_path / "other.pt", other)
    wrong = export(tmp_path / "other.pt", tmp_path / "other.onnx").path
    # the contract records the weights it was exported from: named as another model at once
    with pytest.raises(ConfigError, match="does not hold the weights of"):
        validate(forecast_checkpoint, [wrong], horizon=300)
    # a file that records no weights (another tool's) is taken on trust: parity catches it
    import dataclasses

    import onnx

    from edgernn.exporters.artifact import contract_in, embed_contract
    proto = onnx.load(wrong)
    c = contract_in(proto)
    embed_contract(proto, c.with_changes(provenance=dataclasses.replace(c.provenance,
                                                                        weights_sha256=None)))
    onnx.save(proto, wrong)
    report = validate(forecast_checkpoint, [wrong], horizon=300)
    assert not report.passed
    failed = {c.name for c in report.artifacts[0].checks if not c.passed}
    assert any(n.startswith("random") for n in failed) and not report.artifacts[0].drift.passed
    # every tensor is still reported, not only the first failure
    assert all(len(c.errors) == 2 for c in report.artifacts[0].checks)


def test_record_writes_parity_into_the_contract(forecast_checkpoint, artifacts, tmp_path):
    path = tmp_path / "rec.onnx"
    path.write_bytes(artifacts["step"].read_bytes())
    report = validate(forecast_checkpoint, [path], horizon=500)
    record(report)
    contract = load(path).contract
    metrics = {p.metric for p in contract.parity}
    assert {"max_abs", "drift_max_abs", "task_mae_drop"} <= metrics
    drift = next(p for p in contract.parity if p.metric == "drift_max_abs")
    assert drift.measured == pytest.approx(report.artifacts[0].drift.max)
    assert contract.preprocessing is not None and contract.task == "forecast"
    record(report)      # recording twice replaces, never duplicates
    assert len(load(path).contract.parity) == len(contract.parity)


def test_plot_is_a_png(forecast_checkpoint, artifacts, tmp_path):
    report = validate(forecast_checkpoint, [artifacts["step"]], horizon=300)
    out = plot(report, tmp_path / "drift.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tight_tolerance_fails_through_the_cli(forecast_checkpoint, artifacts):
    out = run_cli("validate", forecast_checkpoint, artifacts["step"], "--atol", "1e-12",
                  "--horizon", "200")
    assert out.returncode == 1
    assert "FAIL" in out.stdout and "Error: parity exceeds tolerance in step.onnx" in out.stderr


def test_cli_json_and_plot(forecast_checkpoint, artifacts, tmp_path):
    out = run_cli("validate", forecast_checkpoint, *artifacts.values(), "--horizon", "300",
                  "--json", "--plot", tmp_path / "d.png")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["passed"] and len(doc["artifacts"]) == 2 and (tmp_path / "d.png").exists()


def test_user_module_without_task(tmp_path):
    torch.manual_seed(0)
    module = torch.nn.LSTM(3, 4, batch_first=True)
    path = export(module, tmp_path / "u.onnx", graph="chunk").path
    report = validate(module, [path], horizon=200, tolerances=Tolerances())
    assert report.passed and report.task == "" and report.artifacts[0].metric is None


def test_validate_needs_artifacts(forecast_checkpoint):
    from edgernn.errors import ConfigError

    with pytest.raises(ConfigError, match="at least one ONNX artifact"):
        validate(forecast_checkpoint, [])


def test_parity_error_carries_the_report():
    assert issubclass(ParityError, Exception)
    assert np.isfinite(Tolerances().atol)
