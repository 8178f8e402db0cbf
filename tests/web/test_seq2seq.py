"""Encoder-decoder pairs in headless Chromium (devices/web/seq2seq.js) against edgernn.runtime
in Python, on the same files and texts: the same tokens (tokenisation byte for byte, non-ASCII
text included), greedy and beam search; and the page `edgernn web` writes for a pair, a text
box that decodes as you type.

Tolerance: scores within 1e-5 (WebAssembly and native float32 kernels sum in different orders,
~1e-7 a step); tokens must be equal."""

from __future__ import annotations

import shutil

import pytest

from edgernn.runtime import load
from tests.runtime.models import SEQ2SEQ, SEQ2SEQ_SOURCES
from tests.tolerances import WEB_VS_NATIVE

TEXTS = SEQ2SEQ_SOURCES + ["€ 3 März 2021 😀", "  12/25/1999\t", "JULY 4 1976"]

DECODE = """async ([url, texts, beam]) => {
  const m = await import("./edgernn.js");
  const pair = await m.load(url);
  const one = [];
  for (const t of texts) one.push(await pair.translate(t, { beam, nBest: beam }));
  const batch = await pair.translateBatch(texts, { beam });
  const pack = (o) => ({ text: o.text, tokens: o.tokens, logProb: o.logProb,
                         hypotheses: o.hypotheses.map((h) => h.tokens) });
  return { one: one.map(pack), batch: batch.map(pack),
           ids: texts.map((t) => pair.source.encode(t)) };
}"""


@pytest.fixture(scope="module")
def pairs(site, models):
    """The pairs the runtime tests use (the session's models), beside the page's files."""
    d = models
    for name in SEQ2SEQ:
        for f in (f"{name}.onnx", f"{name}.decoder.onnx"):
            shutil.copyfile(d / f, site[0] / f)
    return d


@pytest.mark.parametrize("name", SEQ2SEQ)
@pytest.mark.parametrize("beam", [1, 3])
def test_the_browser_decodes_as_python(harness, pairs, name, beam):
    pair = load(pairs / f"{name}.onnx")
    got = harness.evaluate(DECODE, [f"./{name}.onnx", TEXTS, beam])
    assert got["ids"] == [pair.source.encode(t) for t in TEXTS]     # tokenisation, byte for byte
    for text, one, batch in zip(TEXTS, got["one"], got["batch"]):
        want = pair.translate(text, beam=beam, n_best=beam)
        assert one["tokens"] == want.tokens and batch["tokens"] == want.tokens, text
        assert one["text"] == want.text
        assert abs(one["logProb"] - want.log_prob) <= WEB_VS_NATIVE * len(want.tokens + [0])
        assert one["hypotheses"] == [h.tokens for h in want.hypotheses]


def test_the_page_decodes_what_is_typed(browser, pairs, tmp_path):
    from tests.conftest import run_cli
    from tests.web.conftest import served_page

    done = run_cli("web", pairs / "s2s_luong.onnx", "-o", tmp_path / "page")
    assert done.returncode == 0, done.stderr
    assert "seq2seq page decoding what you type" in done.stdout
    assert (tmp_path / "page" / "s2s_luong.decoder.onnx").is_file()
    with served_page(browser, tmp_path / "page") as page:
        page.fill("#source", "3 March 2021")
        page.wait_for_function("window.edgernnPage.translated && "
                               "window.edgernnPage.translated.input === '3 March 2021'",
                               timeout=30_000)
        shown = page.evaluate("window.edgernnPage.translated")
        want = load(pairs / "s2s_luong.onnx").translate("3 March 2021", beam=4, n_best=4)
        assert shown["output"] == want.text == page.inner_text("#output")
        assert shown["hypotheses"] == [h.text for h in want.hypotheses]
        assert page.evaluate("window.edgernnPage.error") is None
