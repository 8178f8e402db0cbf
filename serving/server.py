"""Start a real ``tritonserver`` on a model repository, wait until the model is ready, stop it.

The binary is ``tritonserver`` on PATH (a Triton install or container), else the CPU build that
the ``nvidia-pytriton`` package ships (``pip install --no-deps nvidia-pytriton``: edgernn uses
only its server binary, its Python backend and the backend stub for this Python). Addresses
are 127.0.0.1 unless told otherwise; ports are free ones unless given.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from edgernn.errors import ConfigError, EdgeRNNError
from edgernn.files import scratch_folder
from edgernn.serving.repository import copy_backend

INSTALL = ("install Triton Inference Server (tritonserver on PATH), or its CPU build with the "
           "Python backend: pip install --no-deps nvidia-pytriton (edgernn uses only its "
           "server binary); the client needs pip install 'edgernn[serve]'")


class ServerError(EdgeRNNError):
    """tritonserver is missing, did not start, or did not load the model."""


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_server() -> tuple[Path, Path | None]:
    """The tritonserver binary, and a backend folder to give it (None: its own).
    ``EDGERNN_TRITONSERVER`` names a binary explicitly."""
    named = os.environ.get("EDGERNN_TRITONSERVER")
    if named:
        if not (Path(named).is_file() and os.access(named, os.X_OK)):
            raise ServerError(f"EDGERNN_TRITONSERVER={named} is not an executable file; point "
                              f"it at a tritonserver binary or unset it")
        return Path(named), None
    on_path = shutil.which("tritonserver")
    if on_path:
        return Path(on_path), None
    spec = importlib.util.find_spec("pytriton")
    if spec is not None and spec.submodule_search_locations:
        base = Path(list(spec.submodule_search_locations)[0]) / "tritonserver"
        binary = base / "bin" / "tritonserver"
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        stub = base / "python_backend_stubs" / version / "triton_python_backend_stub"
        if binary.exists() and stub.exists():
            return binary, base
    raise ServerError(f"tritonserver was not found: {INSTALL}")


@dataclass
class Server:
    """A running tritonserver (a context manager: stopped on exit)."""

    repository: Path
    host: str = "127.0.0.1"
    grpc_port: int = 0
    http_port: int = 0
    metrics_port: int = 0
    log: object = None                      # where the server's output goes (default stderr)
    exit_seconds: int = 5                   # on stop, how long live sequences may finish
    process: subprocess.Popen | None = None
    _scratch: tempfile.TemporaryDirectory | None = field(default=None, repr=False)

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"{self.host}:{self.http_port}"

    def start(self, timeout: float = 120.0) -> "Server":
        binary, bundled = find_server()
        self.grpc_port = self.grpc_port or free_port()
        self.http_port = self.http_port or free_port()
        self.metrics_port = self.metrics_port or free_port()
        args = [str(binary), "--model-repository", str(self.repository),
                "--grpc-address", self.host, "--grpc-port", str(self.grpc_port),
                "--http-address", self.host, "--http-port", str(self.http_port),
                "--metrics-address", self.host, "--metrics-port", str(self.metrics_port),
                "--exit-on-error", "false", "--strict-readiness", "true",
                "--exit-timeout-secs", str(self.exit_seconds)]
        if bundled is not None:
            self._scratch = scratch_folder("triton")
            version = f"{sys.version_info.major}.{sys.version_info.minor}"
            backends = copy_backend(bundled / "backends" / "python",
                                    bundled / "python_backend_stubs" / version /
                                    "triton_python_backend_stub", Path(self._scratch.name))
            args += ["--backend-directory", str(backends)]
        env = dict(os.environ)
        # the Python backend's stub imports numpy and edgernn from the Python found on PATH
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        if bundled is not None:
            # the copied stub looks for the libraries the wheel bundles relative to its old
            # place; point it at them
            libs = bundled.parent.parent / "nvidia_pytriton.libs"
            env["LD_LIBRARY_PATH"] = os.pathsep.join(
                p for p in (str(libs), env.get("LD_LIBRARY_PATH", "")) if p)
        # its own process group: the server and the backend stubs it starts stop together; and
        # it dies with this process, even one killed with SIGKILL (Linux's parent-death signal)
        self.process = subprocess.Popen(args, stdout=self.log or sys.stderr,
                                        stderr=subprocess.STDOUT, env=env,
                                        start_new_session=True,
                                        preexec_fn=_die_with_parent())
        try:
            self._wait(timeout)
            self._wait_models(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait(self, timeout: float) -> None:
        import urllib.error
        import urllib.request

        deadline = time.monotonic() + timeout
        # live, not ready: with strict readiness a model that failed keeps /ready at 400 for
        # good; _wait_models then reads each model's own state and Triton's reason
        url = f"http://{self.http_url}/v2/health/live"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"tritonserver exited with code {self.process.returncode} "
                                  f"before it was ready; its log above says why")
            try:
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise ServerError(f"tritonserver did not answer after {timeout:.0f} s; its log above "
                          f"says why")

    def models(self) -> list[dict]:
        """The repository index: each model's name, version, state and reason."""
        import json
        import urllib.request

        request = urllib.request.Request(f"http://{self.http_url}/v2/repository/index",
                                         data=b"{}", method="POST")
        with urllib.request.urlopen(request, timeout=5) as r:
            return json.loads(r.read() or b"[]")

    def _wait_models(self, timeout: float) -> None:
        """The server answers before (or without) its models: every model in the repository
        must be READY, each by its own state, or this fails with Triton's reasons."""
        deadline = time.monotonic() + timeout
        while True:
            index = self.models()
            loading = [m for m in index if m.get("state") == "LOADING"]
            if not loading or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if not index:
            raise ServerError(f"{self.repository} holds no model Triton could find (each model "
                              f"is a folder NAME/ with config.pbtxt and a version folder 1/); "
                              f"write one with: edgernn triton MODEL.onnx -o {self.repository}")
        bad = [m for m in index if m.get("state") != "READY"]
        if bad:
            # a model whose config.pbtxt does not parse is listed with no state at all
            raise ServerError("tritonserver did not load " + "; ".join(
                f"model {m.get('name')!r}: " + (
                    f"{m['state']}" + (f" ({_one_line(m['reason'])})" if m.get("reason")
                                       else "")
                    if m.get("state") else "never loaded (its config.pbtxt does not parse or "
                                           "names no backend: see the log above)")
                for m in bad) + ". Fix the model's folder (edgernn triton writes a complete "
                "one)")

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then what is left of its process group (its backend stubs) is waited for
        briefly and killed; live sequences get ``exit_seconds`` to finish."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reap()
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None

    def kill(self) -> None:
        """Stop the server abruptly (for tests of what clients see)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._reap()

    def _reap(self, grace: float = 3.0) -> None:
        """The stubs notice their server is gone and exit; those that do not are killed."""
        if self.process is None:
            return
        group = self.process.pid
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(group, 0)
            except (ProcessLookupError, PermissionError):
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)

    def __enter__(self) -> "Server":
        return self if self.process is not None else self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _one_line(reason: str, limit: int = 400) -> str:
    """Triton's reason for a model, on one line: the Python backend appends a trace after an
    "At:" line, which is dropped (the server's log above has it)."""
    text = str(reason).split("\nAt:")[0]
    text = " ".join(ln.strip() for ln in text.splitlines() if ln.strip())
    return text if len(text) <= limit else text[:limit] + "..."


def _die_with_parent():
    """For Popen's preexec_fn: the child gets SIGTERM when this process dies (PR_SET_PDEATHSIG),
    and exits at once if it already has. Linux ties the signal to the thread that forks, so it
    is armed from the main thread only (a server started from a worker thread that ends would
    die with it); a no-op where prctl is not available."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    parent = os.getpid()

    def arm() -> None:
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGTERM, 0, 0, 0)            # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):
            return
        if os.getppid() != parent:                           # it died before prctl took hold
            os._exit(1)
    return arm


def check_ports(*ports: int | None) -> None:
    for port in ports:
        if port is not None and not 0 < port < 65536:
            raise ConfigError(f"port {port} is not a TCP port (1-65535)")
