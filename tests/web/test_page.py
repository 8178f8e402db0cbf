"""The page `edgernn web` writes, in headless Chromium: it streams its signal live for each
built-in task, shows per-step latency, draws its plot (a screenshot is kept in
build/test-artifacts/ and its plot pixels counted), and autocompletes as you type."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

from edgernn.devices.web_page import serve_folder
from edgernn.runtime import load
from tests.web.conftest import ARTIFACTS

# the colours page.js draws its lines in
LINE = {"classify": (34, 34, 34), "forecast": (255, 127, 14), "charlm": (31, 119, 180)}


@pytest.fixture(scope="module")
def task_models(tmp_path_factory):
    """Untrained models of each built-in task, as train would save them (contract with the
    task, its normalisation, labels or vocabulary)."""
    from edgernn.checkpoint import Checkpoint, save_checkpoint
    from edgernn.exporters import export
    from edgernn.models import build
    from edgernn.tasks import get_task

    d = tmp_path_factory.mktemp("task-models")
    out = {}
    for name in ("classify", "forecast", "charlm"):
        task = get_task(name)
        data = task.generate(size=0.05)
        cfg = task.fit_config(task.model.replace(hidden_size=24), data)
        pre, post = task.normalization(data)
        ckpt = save_checkpoint(d / f"{name}.pt", Checkpoint(
            config=cfg, state_dict=build(cfg, seed=0).state_dict(), task=name,
            preprocessing=pre, postprocessing=post, labels=data.labels,
            vocabulary=data.vocabulary))
        out[name] = export(ckpt, d / f"{name}.onnx").path
    return out


def open_page(browser, cli, model, folder, steps=300):
    done = cli("web", model, "-o", folder, "--json")
    assert done.returncode == 0, done.stderr
    server = serve_folder(folder)
    import threading

    threading.Thread(target=server.serve_forever, daemon=True).start()
    page = browser.new_page(viewport={"width": 1100, "height": 760})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html?rate=0")
    deadline = time.monotonic() + 60
    state = None
    while time.monotonic() < deadline:
        state = page.evaluate("window.edgernnPage && {steps: edgernnPage.steps, error: edgernnPage.error}")
        if state and (state["error"] or state["steps"] >= steps):
            break
        time.sleep(0.2)
    assert state and not state["error"] and state["steps"] >= steps, (state, errors)
    return page, server, errors


def plot_pixels(page, path, colour) -> int:
    """Screenshot the page to ``path``; count the plot's pixels in ``colour``."""
    page.screenshot(path=str(path))
    box = page.locator("#plot").bounding_box()
    img = np.asarray(Image.open(path).convert("RGB")).astype(int)
    crop = img[int(box["y"]):int(box["y"] + box["height"]), int(box["x"]):int(box["x"] + box["width"])]
    return int((np.abs(crop - np.array(colour)).sum(axis=2) < 60).sum())


@pytest.mark.parametrize("task", ["classify", "forecast", "charlm"])
def test_the_page_streams_and_plots_each_task(browser, cli, task_models, tmp_path, task):
    page, server, errors = open_page(browser, cli, task_models[task], tmp_path / "page")
    try:
        latency = page.inner_text("#latency")
        assert "per step p50" in latency and "µs" in latency
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / f"web-{task}.png"
        assert plot_pixels(page, shot, LINE[task]) > 300, f"no plot drawn: see {shot}"
        if task == "classify":
            labels = load(task_models[task]).labels
            assert page.evaluate("edgernnPage.label") in labels
    finally:
        page.close()
        server.shutdown()
        server.server_close()
    assert not errors, errors


def test_autocomplete_as_you_type(browser, cli, task_models, tmp_path):
    page, server, errors = open_page(browser, cli, task_models["charlm"], tmp_path / "page",
                                     steps=50)
    typed = "07:25 sensor 1"
    try:
        page.type("#typed", typed)
        page.wait_for_function(f"edgernnPage.completedFor === {typed!r}", timeout=30_000)
        completion = page.evaluate("edgernnPage.completion")
    finally:
        page.close()
        server.shutdown()
        server.server_close()
    assert not errors, errors
    s = load(task_models["charlm"]).stream()                     # the same greedy text here
    y = s.feed(s.encode(typed))[-1]
    want = ""
    for _ in range(40):
        c = s.sample(y, temperature=0)
        if c == "\n":
            break
        want += c
        y = s.step(s.encode(c)[0])
    assert completion == want


def test_files_are_written_with_the_lowest_ir_version_and_pages_lower_older_ones(
        task_models, tmp_path):
    """onnxruntime-web 1.30 reads IR 13 at most; earlier exports were IR 14."""
    import onnx

    from edgernn.devices.web_page import write_page

    path = task_models["forecast"]
    assert onnx.load(path).ir_version == 8                        # opset 17 needs IR 8
    old = onnx.load(path)
    old.ir_version = 14
    onnx.save(old, tmp_path / "old.onnx")
    write_page(tmp_path / "old.onnx", tmp_path / "page", steps=20)
    assert onnx.load(tmp_path / "page" / "model.onnx").ir_version == 8
    assert load(tmp_path / "page" / "model.onnx").fingerprint == load(path).fingerprint
