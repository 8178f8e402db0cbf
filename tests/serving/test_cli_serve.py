"""`edgernn triton` and `edgernn serve` through the real entry point: a repository that parses,
a real server that answers and stops on SIGTERM, one message when there is no server."""

from __future__ import annotations

import json
import os
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
                                   atol=1e-6)                        # batched vs one-row kernels
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
