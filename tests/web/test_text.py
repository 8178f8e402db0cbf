"""Text classifiers in headless Chromium against edgernn.runtime in Python: the same token ids
for the same strings (words and punctuation apart, characters; non-ASCII, emoji, odd spaces),
the same labels and probabilities (within 1e-5: WebAssembly and native float32 kernels)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edgernn.runtime import load
from tests.edgernn.test_text import reviews
from tests.tolerances import WEB_VS_NATIVE

STRINGS = ["the film was brilliant, and moving!", "Awful... boring; a MESS (really).",
           "naïve café — 3.5 stars ½", "这部电影很好 精彩", "emoji 😀 fun\tgreat\u00a0story",
           "x" * 500]

CLASSIFY = """async ([url, texts]) => {
  const m = await import("./edgernn.js");
  const model = await m.load(url);
  const out = [];
  for (const t of texts) {
    const s = model.whole ? model : model.stream();      // a whole-text model has no stream
    out.push({ ids: s.encode(t), result: await model.classify(t) });
  }
  return out;
}"""


@pytest.fixture(scope="module")
def text_models(site, tmp_path_factory):
    from tests.conftest import run_cli

    d = tmp_path_factory.mktemp("web-text")
    made = {}
    for name, tokens, chinese, extra in (("words", "wordpunct", False, []),
                                         ("chars", "chars", True, []),
                                         ("whole", "wordpunct", False, ["--bidirectional"])):
        data = reviews(d / f"{name}.csv", n=300, chinese=chinese)
        for args in (["train", "--task", "classify", "--data", data, "--text-column", "review",
                      "--label-column", "verdict", "--tokens", tokens, "--hidden", "16",
                      "--epochs", "3", *extra, "-o", d / f"{name}.pt"],
                     ["export", d / f"{name}.pt", "-o", d / f"text_{name}.onnx"]):
            done = run_cli(*args)
            assert done.returncode == 0, done.stderr
        shutil.copyfile(d / f"text_{name}.onnx", site[0] / f"text_{name}.onnx")
        made[name] = d / f"text_{name}.onnx"
    return made


@pytest.mark.parametrize("name", ["words", "chars", "whole"])
def test_the_browser_tokenises_and_labels_as_python(harness, text_models, name):
    model = load(text_models[name])
    got = harness.evaluate(CLASSIFY, [f"./text_{name}.onnx", STRINGS])
    for text, js in zip(STRINGS, got):
        assert js["ids"] == model.contract.tokenizer.encode(text), text
        want = model.classify(text)
        assert js["result"]["label"] == want.label
        np.testing.assert_allclose([js["result"]["probabilities"][k] for k in model.labels],
                                   [want.probabilities[k] for k in model.labels],
                                   rtol=0, atol=WEB_VS_NATIVE)


def test_the_page_of_a_text_classifier_labels_what_is_typed(browser, text_models, tmp_path):
    from tests.conftest import run_cli
    from tests.web.conftest import served_page

    done = run_cli("web", text_models["words"], "-o", tmp_path / "page")
    assert done.returncode == 0, done.stderr
    with served_page(browser, tmp_path / "page", "?rate=0") as page:
        text = "the acting was awful and boring"
        page.fill("#text-in", text)
        page.wait_for_function(f"window.edgernnPage.typed && window.edgernnPage.typed.text "
                               f"=== {text!r}", timeout=30_000)
        typed = page.evaluate("window.edgernnPage.typed")
        want = load(text_models["words"]).classify(text)
        assert typed["label"] == want.label and want.label in page.inner_text("#text-label")
        assert page.evaluate("window.edgernnPage.steps") > 0      # the stream runs beside it


def test_the_page_of_a_whole_text_classifier_has_examples_and_a_text_box(browser, text_models,
                                                                          tmp_path):
    from tests.conftest import run_cli
    from tests.web.conftest import served_page

    done = run_cli("web", text_models["whole"], "-o", tmp_path / "page", "--json")
    assert done.returncode == 0, done.stderr
    assert '"view": "text"' in done.stdout
    with served_page(browser, tmp_path / "page", "") as page:
        assert page.locator("#examples button").count() == 12
        page.locator("#examples button").first.click()
        page.wait_for_function("window.edgernnPage.typed", timeout=30_000)
        typed = page.evaluate("window.edgernnPage.typed")
        want = load(text_models["whole"]).classify(typed["text"])
        assert typed["label"] == want.label and want.label in page.inner_text("#text-label")
        assert "both ways" in page.inner_text("#about")
