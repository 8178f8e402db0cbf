"""edgernn's int8 kernels (runtime/cells8) against the plain-ONNX functions the files carry.

Each ``ai.edgernn`` operator is run three ways on the same inputs: ONNX Runtime with the kernel
library registered, ONNX Runtime without it (the model-local function: what the browser and
Triton run), and the ONNX reference evaluator (an independent reading of the function).

Tolerances: one step from the same inputs, 1e-5 -- the integer sums are identical and exact;
the kernel's exp-based sigmoid/tanh and its float input product round differently from ONNX
Runtime's by a few 1e-7. Pooled against alone: exact (every row is computed alone, in the same
order). Over fed-back steps the two may differ by whole 8-bit steps where a state value sits on
a rounding boundary, so streams are held to the int8 error scale instead (INT8_VS_FP32).
"""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto as T
from onnx import helper, numpy_helper

from edgernn.cells import FAMILIES
from edgernn.exporters.graph import Writer
from edgernn.exporters.quant import cells8
from edgernn.runtime import kernels
from tests.tolerances import INT8_VS_FP32

ONE_STEP = 1e-5


def test_the_kernel_library_is_built_and_registered():
    assert kernels.library(), "edgernn.runtime._cells8 was not built: pip install needs a C++ " \
                              "compiler (the Makefile installs g++)"
    options = ort.SessionOptions()
    assert kernels.register(options)


def _op_model(op: str, fam, hidden: int, inputs: int, lead: list, rng):
    """One ai.edgernn node with seeded weights; x (B, I), states ``lead + [H]``."""
    wr = Writer()
    gates = fam.gates if fam else 0
    if op == "Dense8":
        w = rng.normal(0, 0.3, (inputs, hidden)).astype(np.float32)
        cells8.dense(wr, "x", w, rng.normal(0, 0.1, hidden).astype(np.float32), "y")
        ins, outs = ["x"], ["y"]
    else:
        state = ("h", "c")[:len(fam.states)]
        h_new, new = cells8.write(wr, fam, "x", state,
                                  rng.normal(0, 0.3, (gates * hidden, inputs)).astype(np.float32),
                                  rng.normal(0, 0.3, (gates * hidden, hidden)).astype(np.float32),
                                  rng.normal(0, 0.2, gates * hidden).astype(np.float32),
                                  rng.normal(0, 0.2, gates * hidden).astype(np.float32))
        node = wr.nodes[-1]
        if op.endswith("Q"):
            consts = {t.name: numpy_helper.to_array(t) for t in wr.inits}
            node, _ = cells8.quantized_input(node, consts, wr)
            wr.nodes[-1] = node
        ins, outs = ["x", *state], list(new)
    dims = {"x": ["b", inputs], "h": lead + [hidden], "c": lead + [hidden]}
    graph = helper.make_graph(
        wr.nodes, "g", [helper.make_tensor_value_info(i, T.FLOAT, dims[i]) for i in ins],
        [helper.make_tensor_value_info(o, T.FLOAT, ["b", hidden] if op == "Dense8" else
                                       lead + [hidden]) for o in outs], wr.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    cells8.functions(model, 17)
    model.ir_version = 8
    return model, ins


def _sessions(model):
    data = model.SerializeToString()
    plain = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    options = ort.SessionOptions()
    kernels.register(options)
    return plain, ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def _feed(ins, batch, inputs, hidden, lead, rng, bounded_x):
    x = rng.normal(0, 1.5, (batch, inputs)).astype(np.float32)
    feed = {"x": np.tanh(x) if bounded_x else x}
    shape = [batch if d == "b" else d for d in lead] + [hidden]
    if "h" in ins:
        feed["h"] = np.tanh(rng.normal(0, 1, shape)).astype(np.float32)
    if "c" in ins:
        feed["c"] = rng.normal(0, 2, shape).astype(np.float32)
    return feed


CASES = [(op, fam) for fam in ("lstm", "gru", "rnn")
         for op in (cells8.CELLS[FAMILIES[fam].onnx_op],
                    cells8.CELLS[FAMILIES[fam].onnx_op] + "Q")] + [("Dense8", None)]


@pytest.mark.parametrize("op,fam", CASES)
@pytest.mark.parametrize("hidden,inputs,lead", [(20, 7, ["b"]), (37, 64, [1, "b"]),
                                                (128, 128, ["b"])])
def test_one_step_kernel_equals_function_and_reference(op, fam, hidden, inputs, lead):
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(hidden + inputs)
    family = FAMILIES[fam] if fam else None
    model, ins = _op_model(op, family, hidden, inputs, lead, rng)
    onnx.checker.check_model(model, full_check=True)
    plain, fast = _sessions(model)
    reference = ReferenceEvaluator(model)
    feed = _feed(ins, 5, inputs, hidden, lead, rng, bounded_x=op.endswith("Q") or
                 op == "Dense8")
    got = fast.run(None, feed)
    for want in (plain.run(None, feed), reference.run(None, feed)):
        for g, w in zip(got, want):
            assert g.shape == w.shape and g.dtype == np.float32
            assert float(np.abs(g - w).max()) <= ONE_STEP, (op, float(np.abs(g - w).max()))
    # every row alone gives exactly what it gives in the batch
    for row in range(5):
        alone = {k: (v[row:row + 1] if k == "x" or lead == ["b"] else v[:, row:row + 1])
                 for k, v in feed.items()}
        for g, a in zip(got, fast.run(None, alone)):
            part = g[row:row + 1] if lead == ["b"] or g.ndim == 2 else g[:, row:row + 1]
            assert np.array_equal(part, a), op


def test_bad_inputs_get_the_operator_named():
    rng = np.random.default_rng(0)
    model, ins = _op_model("LSTMCell8", FAMILIES["lstm"], 16, 4, ["b"], rng)
    for value in model.graph.input[1:]:                  # states of any width reach the node
        value.type.tensor_type.shape.dim[1].dim_param = "width"
    _, fast = _sessions(model)
    feed = _feed(ins, 2, 4, 16, ["b"], rng, False)
    feed["h"] = feed["h"][:, :8]                          # half a state: 2 rows of 8, not 16
    feed["c"] = feed["c"][:, :8]
    with pytest.raises(Exception, match="LSTMCell8"):
        fast.run(None, feed)


def test_a_quantized_lean_file_runs_one_node_per_layer(tmp_path, monkeypatch):
    """A lean LSTM quantized: two cell nodes and a Dense8 head; streamed with the kernels and
    with its functions, it stays within int8 error of its fp32 file either way."""
    torch = pytest.importorskip("torch")  # noqa: F841
    from edgernn.checkpoint import Checkpoint, save_checkpoint
    from edgernn.config import ModelConfig
    from edgernn.exporters import export
    from edgernn.exporters.quant.quantize import Gate, quantize
    from edgernn.models import build
    from edgernn.runtime import load

    for cell in ("lstm", "gru"):
        cfg = ModelConfig(cell=cell, input_size=6, hidden_size=32, num_layers=2, output_size=4,
                          head="classify_step")
        ckpt = save_checkpoint(tmp_path / f"{cell}.pt", Checkpoint(
            config=cfg, state_dict=build(cfg, seed=1).state_dict()))
        fp32 = export(ckpt, tmp_path / f"{cell}.onnx", ops="lean").path
        q = tmp_path / f"{cell}.int8.onnx"
        report = quantize(fp32, q, gate=Gate(horizon=200, check_metric=False),
                          measure_latency=False)
        proto = onnx.load(q)
        kinds = sorted(n.op_type for n in proto.graph.node)
        name = cells8.CELLS[FAMILIES[cell].onnx_op]
        assert kinds == sorted(["Dense8", name, name + "Q"]), kinds
        assert {f.name for f in proto.functions} == set(kinds)
        assert "kernels" in report.coverage.options
        fast = load(q)
        monkeypatch.setenv(kernels.ENV, "0")
        plain = load(q)
        monkeypatch.delenv(kernels.ENV)
        assert fast.kernels and not plain.kernels and not load(fp32).kernels
        frames = np.random.default_rng(2).normal(0, 1, (100, 6)).astype(np.float32)
        streams = [m.stream() for m in (fast, plain, load(fp32))]
        out = np.array([[s.step(f) for s in streams] for f in frames])
        assert float(np.abs(out[:, 0] - out[:, 2]).max()) <= INT8_VS_FP32
        assert float(np.abs(out[:, 1] - out[:, 2]).max()) <= INT8_VS_FP32
        assert float(np.abs(out[:, 0] - out[:, 1]).max()) <= INT8_VS_FP32
