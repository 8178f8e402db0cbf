"""The CLI through its real entry point, in subprocesses."""

import json

import numpy as np

import pytest

from tests.conftest import run_cli


@pytest.mark.parametrize("command", ["train", "export", "validate", "info", "demo"])
def test_every_command_has_help_with_an_example(command):
    out = run_cli(command, "--help")
    assert out.returncode == 0
    assert "Examples:" in out.stdout and f"edgernn {command}" in out.stdout


def test_train_then_info(tmp_path):
    ckpt = tmp_path / "f.pt"
    out = run_cli("train", "--task", "forecast", "--hidden", "8", "--epochs", "1", "--size",
                  "0.1", "-o", ckpt, "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)                      # stdout holds the result only
    assert doc["task"] == "forecast" and doc["checkpoint"] == str(ckpt)
    assert "epoch   1/1" in out.stderr                # progress went to stderr
    info = run_cli("info", ckpt, "--json")
    assert info.returncode == 0, info.stderr
    meta = json.loads(info.stdout)
    assert meta["kind"] == "checkpoint" and meta["model"]["hidden_size"] == 8
    text = run_cli("info", ckpt)
    assert "MACs per step" in text.stdout and "forecast" in text.stdout


def test_info_on_a_missing_file(tmp_path):
    out = run_cli("info", tmp_path / "nope.pt")
    assert out.returncode == 1
    assert out.stderr.strip() == (f"Error: {tmp_path / 'nope.pt'} does not exist or is not a "
                                  f"file; pass a checkpoint (.pt) or an ONNX file (.onnx)")


def test_info_on_a_corrupt_checkpoint(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"PK\x03\x04 this is not a checkpoint")
    out = run_cli("info", bad)
    assert out.returncode == 1
    assert "is not a readable edgernn checkpoint" in out.stderr
    assert "Traceback" not in out.stderr


def test_info_on_a_corrupt_onnx_file(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    out = run_cli("info", bad)
    assert out.returncode == 1
    assert "ONNX Runtime cannot load" in out.stderr and "Traceback" not in out.stderr


def test_usage_errors_exit_2():
    out = run_cli("train", "--task", "speech")
    assert out.returncode == 2
    assert "Invalid value for '--task'" in out.stderr
    assert run_cli("frobnicate").returncode == 2


def test_bad_data_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "s.csv"
    bad.write_text("1,2\n3\n")
    out = run_cli("train", "--task", "forecast", "--data", bad, "-o", tmp_path / "m.pt")
    assert out.returncode == 1
    assert "rows must all have the same number of columns" in out.stderr
    assert not (tmp_path / "m.pt").exists()


def test_commands_needing_torch_name_the_extra(tmp_path):
    # A 'torch' that fails to import, as on a device install without the extra.
    fake = tmp_path / "fake" / "torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named torch')\n")
    out = run_cli("train", "--epochs", "1", env={"PYTHONPATH": str(fake.parent)})
    assert out.returncode == 1
    assert "needs torch, which is not installed here" in out.stderr
    assert "pip install 'edgernn[torch]'" in out.stderr


def test_export_then_info(tmp_path, forecast_checkpoint):
    out = run_cli("export", forecast_checkpoint, "-o", tmp_path / "m.onnx", "--graph", "chunk",
                  "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["graph"] == "chunk" and doc["max_abs_error"] < 1e-4
    info = json.loads(run_cli("info", tmp_path / "m.onnx", "--json").stdout)
    assert info["contract"]["graph"] == "chunk" and info["contract"]["task"] == "forecast"


def test_export_bidirectional_step_says_use_sequence(tmp_path):
    ckpt = tmp_path / "bi.pt"
    assert run_cli("train", "--task", "classify", "--bidirectional", "--hidden", "4",
                   "--layers", "1", "--epochs", "1", "--size", "0.02", "-o", ckpt).returncode == 0
    out = run_cli("export", ckpt, "-o", tmp_path / "bi.onnx", "--graph", "step")
    assert out.returncode == 1
    assert "is bidirectional" in out.stderr and "Use --graph sequence" in out.stderr
    assert not (tmp_path / "bi.onnx").exists()
    out = run_cli("export", ckpt, "-o", tmp_path / "bi.onnx", "--json")   # the default: sequence
    assert out.returncode == 0 and json.loads(out.stdout)["graph"] == "sequence"


def test_export_missing_checkpoint(tmp_path):
    out = run_cli("export", tmp_path / "none.pt")
    assert out.returncode == 1
    assert f"checkpoint {tmp_path / 'none.pt'} does not exist" in out.stderr


def test_demo_runs_the_pipeline(tmp_path):
    out = run_cli("demo", "--task", "forecast", "--hidden", "8", "--epochs", "1", "--size",
                  "0.1", "--horizon", "300", "--out", tmp_path)
    assert out.returncode == 0, out.stderr
    assert "parity against PyTorch" in out.stdout and "drift 300 steps" in out.stdout
    assert "[3/5] validate" in out.stderr and "fp32 against int8" in out.stdout and "pytorch eager" in out.stdout
    assert {p.name for p in tmp_path.iterdir()} >= {"model.pt", "model.onnx", "model.int8.onnx",
                                                    "drift.png"}


def test_run_takes_the_header_train_takes_and_checks_it(tmp_path):
    pytest.importorskip("torch")
    t = np.arange(300)
    rows = [f"{np.sin(i / 7):.4f},{np.cos(i / 5):.4f}" for i in t]
    (tmp_path / "s.csv").write_text("temp,vibration\n" + "\n".join(rows) + "\n")
    trained = run_cli("train", "--task", "forecast", "--data", tmp_path / "s.csv", "--hidden",
                      "4", "--epochs", "1", "-o", tmp_path / "m.pt")
    assert trained.returncode == 0
    # the warnings a user sees are edgernn's own: PyTorch's about a read-only array was printed
    # on every --data run (issue 27)
    assert "not writable" not in trained.stderr and "Warning" not in trained.stderr
    assert run_cli("export", tmp_path / "m.pt", "-o", tmp_path / "m.onnx").returncode == 0
    same = run_cli("run", tmp_path / "m.onnx", tmp_path / "s.csv")
    assert same.returncode == 0 and len(same.stdout.splitlines()) == 300
    (tmp_path / "swapped.csv").write_text("vibration,temp\n" + "\n".join(rows[:5]) + "\n")
    swapped = run_cli("run", tmp_path / "m.onnx", tmp_path / "swapped.csv")
    assert swapped.returncode == 1 and swapped.stdout == ""
    assert ("names the columns vibration, temp, but the model was trained on temp, vibration"
            in swapped.stderr)


def test_after_torch_the_command_exits_quickly_with_its_code_output_and_exit_functions(tmp_path):
    """edgernn.cli.entry skips Python's module teardown once torch is loaded (about a second),
    but not what a user sees: the exit code, every byte written to stdout and stderr (through
    a pipe, so buffered), and the atexit functions (temporary folders, locks, logging)."""
    import subprocess
    import sys

    mark = tmp_path / "atexit-ran"
    script = ("import atexit, sys, torch\n"
              "from edgernn.cli import entry\n"
              f"atexit.register(lambda: open({str(mark)!r}, 'w').write('ran'))\n"
              "sys.argv = ['edgernn', *sys.argv[1:]]\n"
              "entry()\n")
    ckpt = tmp_path / "f.pt"
    assert run_cli("train", "--task", "forecast", "--hidden", "8", "--epochs", "1", "--size",
                   "0.1", "-o", ckpt).returncode == 0
    for args, code in ((["export", ckpt, "-o", tmp_path / "f.onnx", "--json"], 0),
                       (["export", tmp_path / "missing.pt", "-o", tmp_path / "m.onnx"], 1),
                       (["export", ckpt, "--graph", "nonsense"], 2)):
        mark.unlink(missing_ok=True)
        done = subprocess.run([sys.executable, "-c", script, *map(str, args)],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == code, done.stderr
        assert mark.read_text() == "ran"
        if code == 0:
            assert json.loads(done.stdout)["max_abs_error"] < 1e-4      # the whole document
        else:
            assert "Error: " in done.stderr and "Traceback" not in done.stderr
