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


def pytest_collection_modifyitems(items):
    """Modules with a long test (marked slow or arm64) run first, each module's tests kept
    together (module fixtures are set up once). With pytest -n, a long test that starts last
    is the run's tail, while short tests fill in beside long ones started first."""
    long = {str(it.path) for it in items
            if it.get_closest_marker("slow") or it.get_closest_marker("arm64")}
    items.sort(key=lambda it: str(it.path) not in long)


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
    from tests.runtime.models import build_models

    return build_models(tmp_path_factory.mktemp("models"))


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
