"""The JavaScript runtime in headless Chromium against a plain ONNX Runtime call, on the
foreign files of :mod:`tests.runtime.shapes` given the contract the Python runtime infers for
them: float32 outputs of rank 1-4 stream; what the web runtime does not keep (float16/float64
tensors, no batch axis) is refused at load with a message naming it, never run wrong.

Tolerance: 1e-6 over 7 steps of a 5-unit cell (WebAssembly and native kernels sum in
different orders, ~1e-7 per step)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tests.runtime.shapes import FEATURES, SHAPES, build, plain_ort

STEPS = 7
RUN = """async ([url, xs]) => {
  const m = await import("./edgernn.js");
  let model;
  try { model = await m.load(url); } catch (e) { return { error: e.name + ": " + e.message }; }
  const s = model.stream();
  const ys = [];
  for (const x of xs) ys.push(Array.from(await s.step(x)));
  return { ys };
}"""
REFUSED = {"rank1_f16": "float16", "rank3_f16": "float16", "rank1_f64": "float64",
           "rank2_f64": "float64", "nobatch_f32": "no batch axis"}


@pytest.fixture(scope="module")
def shape_files(site, tmp_path_factory):
    """Each shape file with the contract edgernn.runtime infers for it, in the page's folder."""
    import onnx

    from edgernn.exporters.artifact import embed_contract
    from edgernn.runtime import load

    built = tmp_path_factory.mktemp("web-shapes")
    build(built)
    for key in SHAPES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            contract = load(built / f"shape_{key}.onnx").contract
        proto = onnx.load(built / f"shape_{key}.onnx")
        embed_contract(proto, contract)
        onnx.save(proto, site[0] / f"shape_{key}.onnx")
    return built


@pytest.mark.parametrize("key", SHAPES)
def test_web_streams_equal_plain_onnxruntime_or_refuse(harness, shape_files, key):
    dtype, tail, _ = SHAPES[key]
    xs = np.random.default_rng(5).normal(size=(STEPS, FEATURES)).astype(np.float32)
    got = harness.evaluate(RUN, [f"./shape_{key}.onnx", xs.tolist()])
    if key in REFUSED:
        assert got.get("error", "").startswith("ModelError") and REFUSED[key] in got["error"], got
        return
    assert "error" not in got, got
    want, _ = plain_ort(shape_files / f"shape_{key}.onnx", xs)
    ys = np.array(got["ys"])
    assert ys.shape == (STEPS, max(1, int(np.prod(tail)))), ys.shape   # flat, as JS returns
    np.testing.assert_allclose(ys, want.reshape(STEPS, -1), rtol=0, atol=1e-6)
