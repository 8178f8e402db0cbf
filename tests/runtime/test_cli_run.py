"""edgernn run and edgernn bench through the real entry point."""

import json

import numpy as np

from tests.conftest import run_cli
from tests.tolerances import SPLITS


def test_run_streams_one_line_per_step_and_resumes(models, tmp_path):
    x = np.random.default_rng(0).normal(size=(6, 4))
    (tmp_path / "a.csv").write_text("\n".join(",".join(f"{v:.5f}" for v in r) for r in x[:4]))
    (tmp_path / "b.csv").write_text("\n".join(",".join(f"{v:.5f}" for v in r) for r in x[4:]))
    state = tmp_path / "s.state"
    first = run_cli("run", models / "lstm_step.onnx", tmp_path / "a.csv", "--state-file", state)
    assert first.returncode == 0, first.stderr
    lines = [json.loads(v) for v in first.stdout.splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3, 4]
    assert lines[0]["label"] in ("low", "mid", "high") and state.exists()
    second = run_cli("run", models / "lstm_step.onnx", "-", "--state-file", state,
                     input=(tmp_path / "b.csv").read_text())
    resumed = [json.loads(v) for v in second.stdout.splitlines()]
    assert [r["step"] for r in resumed] == [5, 6]
    whole = run_cli("run", models / "lstm_step.onnx", "--format", "csv", input="\n".join(
        ",".join(f"{v:.5f}" for v in r) for r in x))
    last = json.loads(whole.stdout.splitlines()[-1])
    np.testing.assert_allclose(resumed[-1]["y"], last["y"], atol=SPLITS)


def test_run_text_through_a_language_model(models):
    out = run_cli("run", models / "lm_step.onnx", input="abc d")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(v) for v in out.stdout.splitlines()]
    assert len(rows) == 5 and all(r["next"] in "abcdefgh .,\n" for r in rows)


def test_run_bad_frame_is_one_clear_error(models):
    out = run_cli("run", models / "lstm_step.onnx", input="1,2,3\n")
    assert out.returncode == 1
    assert out.stderr.strip() == ("Error: line 1 of stdin: this model takes one frame of shape "
                                  "(4,); got an array of shape (3,). Fix the line and run again")
    bad = run_cli("run", models / "lstm_step.onnx", input="1,2,x,4\n")
    assert "line 1 ('1,2,x,4') is not a csv frame" in bad.stderr and bad.returncode == 1


def test_run_npy_and_jsonl(models, tmp_path):
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    np.save(tmp_path / "f.npy", x)
    a = run_cli("run", models / "gru_step_decomposed.onnx", tmp_path / "f.npy")
    b = run_cli("run", models / "gru_step_decomposed.onnx", "--format", "jsonl",
                input="\n".join(json.dumps(r.tolist()) for r in x))
    assert a.returncode == b.returncode == 0
    assert [json.loads(v)["y"] for v in a.stdout.splitlines()] == \
        [json.loads(v)["y"] for v in b.stdout.splitlines()]
    assert "forecast" in json.loads(a.stdout.splitlines()[0])


def test_bench_reports_figures_next_to_plain_onnxruntime(models):
    out = run_cli("bench", models / "lstm_step.onnx", "--steps", "300", "--streams", "1,8",
                  "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    lat = doc["latency"]
    assert {"stream.step", "plain session.run", "plain iobinding"} <= set(lat)
    assert lat["stream.step"]["p50_us"] > 0 and lat["stream.step"]["p99_us"] >= \
        lat["stream.step"]["p50_us"]
    assert set(doc["pool_us_per_stream_step"]) == {"1", "8"}
    assert doc["peak_rss_mb"]["stream"] > 0 and doc["import_runtime_s"] > 0
    text = run_cli("bench", models / "lstm_step.onnx", "--steps", "200", "--streams", "2")
    assert "stream overhead vs fastest plain call" in text.stdout


def test_bench_bad_streams_option(models):
    out = run_cli("bench", models / "lstm_step.onnx", "--streams", "a,b")
    assert out.returncode == 2 and "--streams takes comma-separated counts" in out.stderr
