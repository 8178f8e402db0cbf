"""Shared fixtures: tiny seeded models and the CLI entry point, made here, never downloaded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One thread per worker (and per CLI subprocess it starts): with pytest -n auto every core
    # already has a worker, and oversubscribed intra-op threads make small ops crawl.
    os.environ.setdefault("OMP_NUM_THREADS", "1")


# Modules whose module-scoped fixture trains or exports models for many seconds: under
# pytest -n each goes to one worker whole (pytest_xdist_make_scheduler), so its fixture is made
# once, not once on every worker that draws one of its tests. (Not web/test_microphone.py: its
# page listens in real time, and started early beside the heaviest tests its capture dropped
# samples, twice in two runs.)
SHARED_SETUP = ("test_audio_pipeline.py", "test_vad.py", "test_failures.py",
                "exporters/test_seq2seq.py", "runtime/test_cli_run.py", "runtime/test_durable.py",
                "web/test_text.py", "web/test_shapes.py",
                "serving/test_shapes.py", "serving/test_server.py", "devices/test_apps.py")


def pytest_collection_modifyitems(items):
    """Modules with a long test (marked slow or arm64), then those of SHARED_SETUP, run first,
    each module's tests kept together (module fixtures are set up once). With pytest -n, a
    long test that starts last is the run's tail, while short tests fill in beside long ones
    started first."""
    long = {str(it.path) for it in items
            if it.get_closest_marker("slow") or it.get_closest_marker("arm64")}
    items.sort(key=lambda it: (str(it.path) not in long, _module(it.nodeid) not in SHARED_SETUP))


def _module(nodeid: str) -> str:
    return nodeid.split("::", 1)[0].removeprefix("tests/")


@pytest.hookimpl(optionalhook=True)         # pytest without xdist: not called
def pytest_xdist_make_scheduler(config, log):
    """pytest -n's default (load) scheduling, except that each module of SHARED_SETUP is one
    unit of work. (xdist's own loadgroup marks do not take with pytest 9's node ids.)"""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedSetup(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _module(nodeid) if _module(nodeid) in SHARED_SETUP else nodeid

    return SharedSetup(config, log)


def run_cli(*args, env=None, input=None, timeout=300) -> subprocess.CompletedProcess:
    """Run ``edgernn ARGS`` through its real entry point, in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "edgernn", *map(str, args)], capture_output=True,
                          text=True, env=full_env, input=input, timeout=timeout)


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> Path:
    """The runtime test models (tests/runtime/models.py), shared by the runtime, browser
    and durable tests: pre-built (device install, EDGERNN_TEST_MODELS) or built here."""
    ready = os.environ.get("EDGERNN_TEST_MODELS")
    if ready:
        return Path(ready)
    pytest.importorskip("torch", reason="building test models needs torch; set "
                                        "EDGERNN_TEST_MODELS to a folder made by "
                                        "'python -m tests.runtime.models DIR'")
    from filelock import FileLock               # torch's dependency

    from tests.runtime.models import build_models

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return build_models(tmp_path_factory.mktemp("models"))
    # one folder for all of this run's pytest -n workers (their base temps' parent)
    shared = tmp_path_factory.getbasetemp().parent / "runtime-models"
    with FileLock(str(shared) + ".lock"):
        if not (shared / ".built").is_file():
            build_models(shared)
            (shared / ".built").touch()
    return shared


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(scope="session")
def forecast_checkpoint(tmp_path_factory) -> Path:
    """A small forecaster trained for two epochs: enough to be a real checkpoint."""
    pytest.importorskip("torch")
    from edgernn.checkpoint import save_checkpoint
    from edgernn.tasks import get_task
    from edgernn.training import fit

    task = get_task("forecast")
    result = fit(task, task.generate(seed=0, size=0.2),
                 task.model.replace(hidden_size=16),
                 task.training.replace(epochs=2), verbose=False)
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "forecast.pt", result.checkpoint())
