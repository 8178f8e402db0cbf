"""`edgernn triton` and `edgernn serve` through the real entry point: a repository that parses,
a real server that answers and stops on SIGTERM, one message when there is no server."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from edgernn.runtime import load
from edgernn.runtime.remote import connect
from edgernn.serving.server import free_port
from tests.serving.conftest import frames
from tests.tolerances import BATCHED_EXACT


def test_triton_writes_a_repository(cli, serve_models, tmp_path):
    out = cli("triton", serve_models["gru"], "-o", tmp_path / "repo", "--backend", "onnxruntime",
              "--kind", "gpu", "--instances", "2", "--strategy", "direct", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["files"] == ["edgernn/1/model.onnx", "edgernn/config.pbtxt"]
    config = model_config_pb2.ModelConfig()
    text_format.Parse((tmp_path / "repo" / "edgernn" / "config.pbtxt").read_text(), config)
    assert config.instance_group[0].count == 2 and config.sequence_batching.HasField("direct")


def _processes_holding(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if text in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(proc.name))
            except OSError:
                pass
    return found


def test_serve_answers_and_stops_cleanly_on_sigterm(serve_models):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "edgernn", "serve", str(serve_models["lstm"]),
                             "--grpc-port", str(port), "--name", "kws"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any("metrics" in ln for ln in lines):
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
        assert any(f"grpc    127.0.0.1:{port}" in ln for ln in lines), (lines, proc.poll())
        repository = lines[0].split()[1]
        stream = connect(f"127.0.0.1:{port}").stream()               # one model: no name
        assert stream.remote.name == "kws"
        x = frames(9, 20)
        np.testing.assert_allclose(stream.feed(x), load(serve_models["lstm"]).stream().feed(x),
                                   atol=BATCHED_EXACT)
        stream.close()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert "Traceback" not in err and err.strip().endswith("stopped")
    assert "Started GRPCInferenceService" in err                    # the server's log, forwarded
    assert not Path(repository).exists()                            # its temporary repository
    assert _processes_holding(repository) == []                     # and no server left behind


def test_no_server_binary_is_one_message_naming_the_extra(cli, serve_models, tmp_path):
    fake = tmp_path / "site" / "pytriton"                           # a pytriton without a server
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path / "site")}
    out = cli("serve", serve_models["gru"], env=env)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert "tritonserver was not found" in out.stderr and "edgernn[serve]" in out.stderr
    assert "nvidia-pytriton" in out.stderr
    out = cli("serve", serve_models["gru"], env={"EDGERNN_TRITONSERVER": str(tmp_path)})
    assert out.returncode == 1 and "is not an executable file" in out.stderr


def _repositories(tmp_path: Path, lstm: Path) -> dict[str, tuple[Path, str]]:
    """Repositories in which no model can be ready, and what serve must say of each."""
    from edgernn.serving import Options, write_repository

    empty = tmp_path / "empty"
    empty.mkdir()
    garbled = tmp_path / "garbled"
    (garbled / "kws" / "1").mkdir(parents=True)
    (garbled / "kws" / "config.pbtxt").write_text("this is { not a model config\n")
    broken = tmp_path / "broken"                  # parses, but its model cannot be loaded
    write_repository(lstm, broken, Options(name="kws"))
    (broken / "kws" / "1" / "model.onnx").write_bytes(b"not an onnx file")
    return {"empty": (empty, "holds no model Triton could find"),
            "garbled": (garbled, "model 'kws': never loaded (its config.pbtxt does not parse"),
            "broken": (broken, "model 'kws': UNAVAILABLE (Internal: ModelError: ONNX Runtime "
                                "cannot load")}


def test_serve_exits_with_the_reason_when_no_model_is_ready(cli, serve_models, tmp_path):
    """It used to print 'serving ...' while nothing could answer; each model's own state is
    read from the server's repository index."""
    for kind, (repo, message) in _repositories(tmp_path, serve_models["lstm"]).items():
        out = cli("serve", repo, "--grpc-port", free_port(), timeout=120)
        err = out.stderr.strip().splitlines()
        assert out.returncode == 1, (kind, out.stderr[-2000:])
        assert "Traceback" not in out.stderr and "serving" not in out.stdout, kind
        assert err[-1].startswith("Error: ") and message in err[-1], (kind, err[-1])
        assert _processes_holding(str(repo)) == [], kind            # the server was stopped


def _wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def test_a_killed_serve_takes_its_server_along_and_the_next_start_cleans_up(serve_models):
    """kill -9 cannot run any handler: the server dies by its parent-death signal, and the
    folders the dead process left behind are removed by the next start."""
    from edgernn.files import scratch_folder

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "edgernn", "serve", str(serve_models["gru"]),
                             "--grpc-port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        lines = []
        while not any("metrics" in ln for ln in lines):
            line = proc.stdout.readline()
            assert line, (lines, proc.poll())
            lines.append(line)
        repository = lines[0].split()[1]
        assert _processes_holding(repository)                       # tritonserver is up
        proc.kill()
        proc.wait(timeout=30)
        assert _wait_for(lambda: _processes_holding(repository) == [], 60), \
            "tritonserver outlived the edgernn serve that started it"
        assert Path(repository).exists()                            # left behind by kill -9
        for kind in ("repo", "triton"):
            scratch_folder(kind).cleanup()                          # what the next start does
        assert not Path(repository).exists()
        leftovers = [p for p in Path(repository).parent.glob(f"edgernn-*-{proc.pid}-*")]
        assert leftovers == []
    finally:
        if proc.poll() is None:
            proc.kill()
