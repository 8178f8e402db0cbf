"""A real headless Chromium (the system's, driven by Playwright; no browser download) on pages
served from 127.0.0.1, and the models the browser tests stream.

``make test`` installs Chromium (apt) and onnxruntime-web (npm ci) and sets
EDGERNN_REQUIRE_WEB=1, so a missing piece fails there instead of skipping."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from edgernn.devices.web_page import find_ort, serve_folder  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "build" / "test-artifacts"
CHROMIUM = os.environ.get("EDGERNN_CHROMIUM", "/usr/bin/chromium")


def _missing() -> str:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package (pip install -e '.[dev]')"
    if not Path(CHROMIUM).exists():
        return f"Chromium at {CHROMIUM} (apt-get install chromium)"
    if find_ort() is None:
        return "onnxruntime-web (cd devices/web && npm ci)"
    return ""


@pytest.fixture(scope="session")
def browser():
    missing = _missing()
    if missing:
        if os.environ.get("EDGERNN_REQUIRE_WEB"):
            pytest.fail(f"the browser tests need {missing}; make test installs it")
        pytest.skip(f"the browser tests need {missing}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-background-networking", "--disable-component-update",
            "--disable-default-apps", "--no-first-run"])
        yield b
        b.close()


@pytest.fixture(scope="session")
def web_models(tmp_path_factory) -> dict[str, Path]:
    """Step graphs of three forms, a chunk graph, two int8 files, a character model, and an
    older-style file that normalises outside the graph (the runtime applies the contract's
    statistics)."""
    import onnx

    from edgernn.checkpoint import Checkpoint, save_checkpoint
    from edgernn.config import ModelConfig
    from edgernn.contract import Normalization
    from edgernn.exporters import export
    from edgernn.exporters.artifact import contract_in, embed_contract
    from edgernn.exporters.quant.quantize import Gate, quantize
    from edgernn.models import build

    d = tmp_path_factory.mktemp("web-models")
    cfg = ModelConfig(cell="lstm", input_size=6, hidden_size=24, num_layers=2, output_size=4,
                      head="classify_step")
    ckpt = save_checkpoint(d / "kws.pt", Checkpoint(
        config=cfg, state_dict=build(cfg, seed=1).state_dict(), task="",
        preprocessing=Normalization([0.5] * 6, [2.0] * 6), labels=["yes", "no", "up", "down"]))
    out = {ops: export(ckpt, d / f"{ops}.onnx", ops=ops).path for ops in ("compact", "lean",
                                                                         "fused")}
    out["chunk"] = export(ckpt, d / "chunk.onnx", graph="chunk").path   # any steps a call
    out["int8"] = d / "int8.onnx"
    quantize(out["compact"], out["int8"], recurrent="int8", force=True, measure_latency=False,
             gate=Gate(horizon=200, check_metric=False))
    out["int8_lean"] = d / "int8_lean.onnx"          # one ai.edgernn node per layer
    quantize(out["lean"], out["int8_lean"], recurrent="int8", force=True, measure_latency=False,
             gate=Gate(horizon=200, check_metric=False))
    gru = ModelConfig(cell="gru", input_size=3, hidden_size=16, num_layers=1, output_size=3,
                      head="regress")
    out["outside"] = export(build(gru, seed=2), d / "outside.onnx").path
    proto = onnx.load(out["outside"])
    norm = Normalization([1.0, -2.0, 0.5], [2.0, 0.5, 4.0])
    embed_contract(proto, contract_in(proto).with_changes(preprocessing=norm,
                                                          postprocessing=norm))
    onnx.save(proto, out["outside"])
    lm = ModelConfig(cell="gru", input_size=12, hidden_size=16, num_layers=2, output_size=12,
                     head="lm", embedding_dim=6)
    out["lm"] = export(Checkpoint(config=lm, state_dict=build(lm, seed=3).state_dict(),
                                  vocabulary="abcdefgh .,\n"), d / "lm.onnx").path
    return out


@pytest.fixture(scope="session")
def site(tmp_path_factory, web_models):
    """A page folder written by `edgernn web` (the real CLI), the other models beside it, and
    a bare harness page with the same import map; served on 127.0.0.1."""
    from tests.conftest import run_cli

    folder = tmp_path_factory.mktemp("site")
    done = run_cli("web", web_models["compact"], "-o", folder, "--steps", "300")
    assert done.returncode == 0, done.stderr
    for name, path in web_models.items():
        shutil.copyfile(path, folder / f"{name}.onnx")
    importmap = re.search(r'<script type="importmap">.*?</script>',
                          (folder / "index.html").read_text()).group(0)
    (folder / "harness.html").write_text(f"<!doctype html><html><head>"
                                         f'<link rel="icon" href="data:,">{importmap}'
                                         f"</head><body></body></html>")
    server = serve_folder(folder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def harness(browser, site):
    """A fresh tab on the harness page; JS errors fail the test."""
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{site[1]}/harness.html")
    yield page
    page.close()
    assert not errors, errors


def frames(seed: int, steps: int, width: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.5, 2.0, (steps, width)).astype(np.float32)


@contextlib.contextmanager
def served_page(browser, folder: Path, query: str = ""):
    """The page in ``folder`` served on 127.0.0.1 and open in a fresh tab, ready (its module
    has loaded the model); JS errors fail the test."""
    from edgernn.devices.web_page import serve_folder

    server = serve_folder(folder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html{query}")
        page.wait_for_function("window.edgernnPage && window.edgernnPage.ready", timeout=60_000)
        yield page
    finally:
        page.close()
        server.shutdown()
        server.server_close()
    assert not errors, errors
