"""Pooled == lone, for every artifact edgernn writes: a stream stepped beside loud and silent
neighbours gets what it gets alone (1e-6: fp32 batched and single-row kernels may round
differently by ~1e-7; int8 products are exact integers, so int8 files agree to that too)."""

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch")

from edgernn.checkpoint import Checkpoint, save_checkpoint  # noqa: E402
from edgernn.config import ModelConfig  # noqa: E402
from edgernn.contract import Normalization  # noqa: E402
from edgernn.exporters import export  # noqa: E402
from edgernn.exporters.quant.quantize import Gate, quantize  # noqa: E402
from edgernn.models import build  # noqa: E402
from edgernn.runtime import load  # noqa: E402
from tests.tolerances import BATCHED_EXACT  # noqa: E402

GATE = Gate(horizon=300, check_metric=False)


@pytest.fixture(scope="module", params=["lstm", "gru", "rnn"])
def artifacts(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(request.param)
    cfg = ModelConfig(cell=request.param, input_size=5, hidden_size=24, num_layers=2,
                      output_size=3, head="classify_step")
    ckpt = save_checkpoint(d / "m.pt", Checkpoint(
        config=cfg, state_dict=build(cfg, seed=3).state_dict(),
        preprocessing=Normalization([0.5] * 5, [2.0] * 5)))
    out = {ops: export(ckpt, d / f"{ops}.onnx", ops=ops).path
           for ops in ("compact", "lean", "fused", "decomposed")}
    out["chunk"] = export(ckpt, d / "chunk.onnx", graph="chunk").path
    calib = d / "calib.npz"
    np.savez(calib, x=np.random.default_rng(0).normal(0.5, 2.0, (6, 30, 5)).astype(np.float32))
    for mode in ("dynamic", "static", "fp16"):
        for inputs in ("fp32", "int8"):
            if mode == "fp16" and inputs == "int8":
                continue
            path = d / f"{mode}-{inputs}.onnx"
            quantize(out["lean"], path, mode=mode, inputs=inputs, recurrent="int8",
                     calibration=calib if mode == "static" else None, gate=GATE, force=True,
                     measure_latency=False)
            out[f"{mode} {inputs}"] = path
    return out


def test_every_artifact_pools_row_for_row(artifacts):
    rng = np.random.default_rng(7)
    frames = rng.normal(0.5, 2.0, (20, 5)).astype(np.float32)
    for name, path in artifacts.items():
        model = load(path)
        lone = model.stream()
        pool = model.pool()
        target, loud, silent = pool.open(), pool.open(), pool.open()
        worst = 0.0
        for t, frame in enumerate(frames):
            out = pool.step({loud: frame * 50 + 10, target: frame,
                             silent: np.zeros(5, np.float32)})
            worst = max(worst, float(np.abs(out[target] - lone.step(frame)).max()))
        assert worst <= BATCHED_EXACT, (name, worst)


def test_a_pool_steps_rows_alone_when_a_file_mixes_them(artifacts, tmp_path):
    """ONNX Runtime's own dynamic quantizer scales activations per batch: pooled, one stream's
    output would depend on its neighbours. A file edgernn did not write is probed, and the
    pool steps each stream alone."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    plain = onnx.load(artifacts["decomposed"])
    del plain.metadata_props[:]
    onnx.save(plain, tmp_path / "plain.onnx")
    quantize_dynamic(str(tmp_path / "plain.onnx"), str(tmp_path / "ort_int8.onnx"),
                     weight_type=QuantType.QInt8)
    model = load(tmp_path / "ort_int8.onnx", states={"h": "h_out"} if len(
        load(artifacts["decomposed"]).states) == 1 else {"h": "h_out", "c": "c_out"})
    from edgernn.runtime.pool import RowsInteractWarning

    with pytest.warns(RowsInteractWarning, match="batch rows interact.*call of its own"):
        pool = model.pool()
    assert pool.lone_calls                      # each stream in its own call: as if alone
    a, b = pool.open(), pool.open()
    lone = model.stream()
    for t in range(20):
        frame = np.full(5, 0.1 * t, np.float32)
        out = pool.step({a: frame, b: frame * 40})
        np.testing.assert_array_equal(out[a], lone.step(frame))


def test_int8_products_are_exact_integers_on_this_cpu():
    """The products edgernn's int8 writes (u8 activations and u8 weights, both around 128)
    give numpy's exact integer sums at the extremes, where u8 x s8 on AVX2 without VNNI
    would saturate a pair of products (255 * 127 * 2 > 2^15)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    a = np.where(rng.random((4, 256)) < 0.5, 1, 255).astype(np.uint8)         # |a - 128| = 127
    b = np.where(rng.random((256, 64)) < 0.5, 1, 255).astype(np.uint8)
    a[0], b[:, 0] = 255, 255                                      # every pair at the top
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b", "za", "zb"], ["y"])], "exact",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [4, 256])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [4, 64])],
        [numpy_helper.from_array(b, "b"), numpy_helper.from_array(np.array(128, np.uint8), "za"),
         numpy_helper.from_array(np.array(128, np.uint8), "zb")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = session.run(None, {"a": a})[0]
    want = (a.astype(np.int64) - 128) @ (b.astype(np.int64) - 128)
    np.testing.assert_array_equal(got, want)
    assert want[0, 0] == 127 * 127 * 256
