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
            self._scratch = tempfile.TemporaryDirectory(prefix="edgernn-triton-")
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
        # its own process group: the server and the backend stubs it starts stop together
        self.process = subprocess.Popen(args, stdout=self.log or sys.stderr,
                                        stderr=subprocess.STDOUT, env=env,
                                        start_new_session=True)
        self._wait(timeout)
        return self

    def _wait(self, timeout: float) -> None:
        import urllib.error
        import urllib.request

        deadline = time.monotonic() + timeout
        url = f"http://{self.http_url}/v2/health/ready"
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
        self.stop()
        raise ServerError(f"tritonserver was not ready after {timeout:.0f} s (a model that "
                          f"failed to load: see its log above)")

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


def check_ports(*ports: int | None) -> None:
    for port in ports:
        if port is not None and not 0 < port < 65536:
            raise ConfigError(f"port {port} is not a TCP port (1-65535)")
