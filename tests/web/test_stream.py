"""The JavaScript runtime (devices/web) in headless Chromium against edgernn.runtime in Python,
on the same files and frames.

Tolerances: fp32 within 1e-5 over 500 fed-back steps (WebAssembly and native kernels sum in
different orders, ~1e-7 per step, and the state carries it). int8 files are held to the same
1e-5: their integer products are exact on both, only the fp32 around them differs. Snapshots
are compared byte for byte: the format is the same on both sides."""

from __future__ import annotations

import numpy as np
import pytest

from edgernn.errors import SnapshotError
from edgernn.runtime import kernels, load
from tests.web.conftest import frames
from tests.tolerances import INT8_VS_FP32, WEB_VS_NATIVE

# Runs in the page: load a model, step frames, return outputs (and optionally a snapshot).
STEP = """async ([url, xs, snap]) => {
  const m = await import("./edgernn.js");
  const model = await m.load(url);
  const s = model.stream();
  const ys = [];
  for (const x of xs) ys.push(Array.from(await s.step(x)));
  return { ys, snap: snap ? Array.from(await s.snapshot()) : null, steps: s.steps };
}"""


def js_steps(page, name, xs, snapshot=False):
    return page.evaluate(STEP, [f"./{name}.onnx", np.asarray(xs).tolist(), snapshot])


@pytest.mark.parametrize("name", ["compact", "lean", "fused", "chunk", "int8", "int8_lean",
                                  "outside"])
def test_500_steps_equal_the_python_runtime(harness, web_models, name, monkeypatch):
    # The lean files have one ai.edgernn node per layer (fp32: Step nodes; int8: cell nodes):
    # the browser runs the plain-ONNX functions the file carries, so Python is held to the same
    # functions (its kernels off). Its kernels against them: fp32 within the same bound (one
    # float product against another), int8 within int8 error (tests/exporters/test_cells8.py)
    functions = name in ("lean", "outside", "int8_lean")
    monkeypatch.setenv(kernels.ENV, "0" if functions else "1")
    model = load(web_models[name])
    assert not model.kernels
    width = model.input.shape[-1]
    xs = frames(3, 500, width)
    got = np.array(js_steps(harness, name, xs)["ys"])
    want = model.stream().feed(xs)
    assert got.shape == want.shape
    assert float(np.abs(got - want).max()) <= WEB_VS_NATIVE
    if functions:
        monkeypatch.setenv(kernels.ENV, "1")
        fast = load(web_models[name])
        assert fast.kernels
        assert float(np.abs(got - fast.stream().feed(xs)).max()) <= (
            INT8_VS_FP32 if name == "int8_lean" else WEB_VS_NATIVE)


def test_a_chunk_graph_takes_many_steps_a_call_as_in_python(harness, web_models):
    """feed() on a chunk graph is one call whatever its length (7, 1, 30 steps here), with the
    state carried between calls; a bad frame anywhere refuses the whole call."""
    xs = frames(6, 38, 6)
    got = harness.evaluate("""async (xs) => {
      const m = await import("./edgernn.js");
      const s = (await m.load("./chunk.onnx")).stream();
      const out = [...await s.feed(xs.slice(0, 7)), ...await s.feed(xs.slice(7, 8)),
                   ...await s.feed(xs.slice(8))].map((y) => Array.from(y));
      const before = Array.from(s.state[0].data);
      let err = "";
      try { await s.feed([xs[0], [1, 2]]); } catch (e) { err = e.name; }
      return { out, err, same: before.every((v, i) => v === s.state[0].data[i]), steps: s.steps };
    }""", xs.tolist())
    model = load(web_models["chunk"])
    assert model.graph == "chunk"
    np.testing.assert_allclose(np.array(got["out"]), model.stream().feed(xs), atol=WEB_VS_NATIVE)
    assert got["err"] == "DataError" and got["same"] and got["steps"] == 38


def test_outputs_read_as_in_python(harness, web_models):
    """Labels, probabilities and denormalised values (the contract's postprocessing)."""
    model = load(web_models["compact"])
    xs = frames(4, 30, 6)
    read = harness.evaluate("""async ([xs]) => {
      const m = await import("./edgernn.js");
      const s = (await m.load("./compact.onnx")).stream();
      const o = (await m.load("./outside.onnx")).stream();
      const out = [];
      for (const x of xs) {
        const y = await s.step(x);
        const z = await o.step(x.slice(0, 3));
        out.push([s.label(y), s.probabilities(y), Array.from(o.denormalize(z))]);
      }
      return out;
    }""", [xs.tolist()])
    s = model.stream()
    o = load(web_models["outside"]).stream()
    for x, (label, probs, denorm) in zip(xs, read):
        y = s.step(x)
        assert label == s.label(y)
        np.testing.assert_allclose(probs, s.probabilities(y), atol=WEB_VS_NATIVE)
        np.testing.assert_allclose(denorm, o.denormalize(o.step(x[:3])), atol=WEB_VS_NATIVE)


def test_character_model_logits_and_greedy_text(harness, web_models):
    model = load(web_models["lm"])
    text = "abc def, gah.\nbad cafe " * 20
    ids = model.stream().encode(text)[:500]
    got = np.array(js_steps(harness, "lm", ids.tolist())["ys"])
    np.testing.assert_allclose(got, model.stream().feed(ids), atol=WEB_VS_NATIVE)
    js = harness.evaluate("""async () => {
      const m = await import("./edgernn.js");
      const s = (await m.load("./lm.onnx")).stream();
      let y = (await s.feed(s.encode("bad ca"))).pop(), out = "";
      for (let k = 0; k < 20; k++) { const c = s.sample(y, { temperature: 0 }); out += c; y = await s.step(s.encode(c)[0]); }
      let err = ""; try { s.encode("xyz"); } catch (e) { err = e.name + ": " + e.message; }
      return [out, err];
    }""")
    s = model.stream()
    y = s.feed(s.encode("bad ca"))[-1]
    out = ""
    for _ in range(20):
        c = s.sample(y, temperature=0)
        out += c
        y = s.step(s.encode(c)[0])
    assert js[0] == out
    assert js[1].startswith("DataError") and "xyz" in js[1]


def test_snapshots_cross_between_browser_and_python_byte_for_byte(harness, web_models):
    model = load(web_models["compact"])
    xs = frames(5, 150, 6)
    # browser -> Python: the browser's snapshot restores in Python and re-serialises to the
    # same bytes; Python then carries on as the browser does
    js = js_steps(harness, "compact", xs[:100], snapshot=True)
    blob = bytes(js["snap"])
    py = model.stream()
    py.restore(blob)
    assert py.steps == 100 and py.snapshot() == blob
    rest = harness.evaluate("""async ([blob, xs]) => {
      const m = await import("./edgernn.js");
      const s = (await m.load("./compact.onnx")).stream();
      await s.restore(new Uint8Array(blob));
      const again = Array.from(await s.snapshot());
      const ys = [];
      for (const x of xs) ys.push(Array.from(await s.step(x)));
      return { again, ys };
    }""", [list(blob), xs[100:].tolist()])
    assert bytes(rest["again"]) == blob                       # browser round trip: exact
    np.testing.assert_allclose(np.array(rest["ys"]), py.feed(xs[100:]), atol=WEB_VS_NATIVE)
    # Python -> browser: Python's snapshot restores in the page, which writes the same bytes
    ref = model.stream()
    ref.feed(xs[:120])
    theirs = ref.snapshot()
    back = harness.evaluate("""async ([blob]) => {
      const m = await import("./edgernn.js");
      const s = (await m.load("./compact.onnx")).stream();
      await s.restore(new Uint8Array(blob));
      return [s.steps, Array.from(await s.snapshot())];
    }""", [list(theirs)])
    assert back[0] == 120 and bytes(back[1]) == theirs


def test_bad_frames_and_snapshots_leave_the_state_unchanged(harness, web_models):
    model = load(web_models["compact"])
    xs = frames(6, 12, 6)
    other = load(web_models["int8"]).stream().snapshot()        # another model's state
    result = harness.evaluate("""async ([xs, other]) => {
      const m = await import("./edgernn.js");
      const s = (await m.load("./compact.onnx")).stream();
      for (const x of xs.slice(0, 5)) await s.step(x);
      const before = Array.from(await s.snapshot());
      const errors = [];
      const attempt = async (fn) => { try { await fn(); errors.push("no error"); } catch (e) { errors.push(e.name + ": " + e.message); } };
      await attempt(() => s.step(xs[5].slice(0, 4)));                        // too short
      await attempt(() => s.step([...xs[5].slice(0, 5), NaN]));               // NaN
      await attempt(() => s.step("abcdef"));                                   // not numbers
      await attempt(() => s.feed([xs[5], [...xs[6].slice(0, 5), Infinity], xs[7]]));   // all or nothing
      await attempt(() => s.restore(new Uint8Array(other)));                   // another model
      const corrupt = before.slice(); corrupt[40] ^= 1;
      await attempt(() => s.restore(new Uint8Array(corrupt)));
      await attempt(() => s.restore(new Uint8Array(before.slice(0, 30))));
      const after = Array.from(await s.snapshot());
      const ys = [];
      for (const x of xs.slice(5)) ys.push(Array.from(await s.step(x)));
      return { before, after, errors, ys };
    }""", [xs.tolist(), list(other)])
    e = result["errors"]
    assert e[0].startswith("DataError") and "6 values" in e[0] and "got 4 values" in e[0]
    assert e[1].startswith("NonFiniteError") and "state was left unchanged" in e[1]
    assert e[2].startswith("DataError")
    assert e[3].startswith("NonFiniteError")
    assert e[4].startswith("SnapshotError") and "another model" in e[4]
    assert e[5].startswith("SnapshotError") and "checksum" in e[5]
    assert e[6].startswith("SnapshotError") and "truncated" in e[6]
    assert result["after"] == result["before"]
    s = model.stream()
    s.feed(xs[:5])
    np.testing.assert_allclose(np.array(result["ys"]), s.feed(xs[5:]), atol=WEB_VS_NATIVE)
    # and Python agrees (it can also tell the same weights in another precision apart)
    with pytest.raises(SnapshotError, match="another model|file of these weights"):
        model.stream().restore(other)


def test_a_file_without_a_contract_is_refused_clearly(harness, site, web_models):
    import onnx

    proto = onnx.load(web_models["compact"])
    del proto.metadata_props[:]                                 # someone else's export
    onnx.save(proto, site[0] / "bare.onnx")
    message = harness.evaluate("""async () => {
      const m = await import("./edgernn.js");
      try { await m.load("./bare.onnx"); return "loaded"; } catch (e) { return e.name + ": " + e.message; }
    }""")
    assert message.startswith("ModelError") and "no edgernn contract" in message


def test_the_portable_sha256_matches_hashlib(harness):
    """The fallback for pages without Web Crypto (opened over a LAN address)."""
    import hashlib

    sizes = [0, 1, 55, 56, 63, 64, 65, 1000, 70_000]
    got = harness.evaluate("""async ([sizes]) => {
      const h = await import("./sha256.js");
      return sizes.map((n) => h.hex(h.sha256Portable(new Uint8Array(n).map((_, i) => (i * 31 + 7) & 255))));
    }""", [sizes])
    want = [hashlib.sha256(bytes((i * 31 + 7) & 255 for i in range(n))).hexdigest()
            for n in sizes]
    assert got == want
