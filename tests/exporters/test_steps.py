"""The fp32 Step operators (LSTMStep, GRUStep, RNNStep): what the lean export writes for each
tanh-bounded layer. edgernn's kernel computes the step where the runtime registers it; the file's
function is ONNX's own LSTM/GRU/RNN operator, which runs everywhere else.

Tolerance: one step from the same inputs, 1e-5 (ONE_STEP) against the function (ONNX Runtime's
own recurrent kernel) and the ONNX reference evaluator: both are float32 products of the same
weights, summed in another order, and the kernel's exp-based gates differ from ONNX Runtime's by
a few 1e-7. A row alone against the same row in a batch: exact (each row is computed alone).
"""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto as T
from onnx import helper

from edgernn.cells import FAMILIES
from edgernn.exporters.graph import Writer
from edgernn.exporters.quant import cells8
from edgernn.runtime import kernels

ONE_STEP = 1e-5


def _step_model(fam, hidden: int, inputs: int, rng, scale: float = 0.3):
    """One Step node on (1, B, .) tensors with seeded weights."""
    g = Writer()
    gates = fam.gates * hidden
    state = ("h", "c")[:len(fam.states)]
    outs = [f"{s}_new" for s in state]
    cells8.step(g, fam, "x", state, rng.normal(0, scale, (gates, inputs)).astype(np.float32),
                rng.normal(0, scale, (gates, hidden)).astype(np.float32),
                rng.normal(0, 0.2, gates).astype(np.float32),
                rng.normal(0, 0.2, gates).astype(np.float32), outs)
    dims = {"x": [1, "b", inputs], "h": [1, "b", hidden], "c": [1, "b", hidden]}
    graph = helper.make_graph(
        g.nodes, "g", [helper.make_tensor_value_info(n, T.FLOAT, dims[n]) for n in ("x", *state)],
        [helper.make_tensor_value_info(o, T.FLOAT, [1, "b", hidden]) for o in outs], g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    cells8.functions(model, 17)
    model.ir_version = 8
    return model, state


def _session(model, with_kernels: bool):
    options = ort.SessionOptions()
    if with_kernels:
        assert kernels.register(options)
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("hidden,inputs,batch", [(20, 7, 5), (128, 40, 3), (33, 40, 70)])
def test_one_step_equals_onnx_own_operator_and_the_reference(cell, hidden, inputs, batch):
    """Batches of 3 (row pairs), 5 and 70 (blocks of six rows over packed weights, past the
    kernel's 64-row block; 33 hidden units leave a part-filled panel)."""
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(hidden + inputs)
    model, state = _step_model(FAMILIES[cell], hidden, inputs, rng)
    onnx.checker.check_model(model, full_check=True)
    body = next(f for f in model.functions if f.name.endswith("Step"))
    assert FAMILIES[cell].onnx_op in {n.op_type for n in body.node}     # ONNX's own operator
    fast, plain = _session(model, True), _session(model, False)
    feed = {"x": rng.normal(0, 1.5, (1, batch, inputs)).astype(np.float32)}
    for s in state:
        feed[s] = np.tanh(rng.normal(0, 1, (1, batch, hidden))).astype(np.float32)
    got = fast.run(None, feed)
    for want in (plain.run(None, feed), ReferenceEvaluator(model).run(None, feed)):
        for g, w in zip(got, want):
            assert g.shape == w.shape == (1, batch, hidden) and g.dtype == np.float32
            assert float(np.abs(g - w).max()) <= ONE_STEP, float(np.abs(g - w).max())
    for row in range(batch):                       # a row alone is the same row in the batch
        alone = fast.run(None, {k: v[:, row:row + 1] for k, v in feed.items()})
        for g, a in zip(got, alone):
            assert np.array_equal(g[:, row:row + 1], a)


@pytest.mark.parametrize("size, says", [(7, "has hidden_size 7, but R is for 6 hidden units"),
                                        (None, "has no hidden_size attribute")])
def test_a_node_whose_hidden_size_is_not_its_weights_is_refused_at_load(size, says):
    """The attribute is what the function's operator reads: a file where it is missing or
    disagrees with R would run one way with the kernels and fail without them, so the kernels
    refuse it when the session is created, naming the node."""
    model, _ = _step_model(FAMILIES["lstm"], 6, 3, np.random.default_rng(0))
    node = model.graph.node[0]
    del node.attribute[:]
    if size is not None:
        node.attribute.append(helper.make_attribute("hidden_size", size))
    with pytest.raises(Exception, match=f"ai.edgernn LSTMStep node '{node.name}': {says}"):
        _session(model, True)
    with pytest.raises(Exception):                 # and ONNX's own operator refuses it too
        plain = _session(model, False)
        plain.run(None, {"x": np.zeros((1, 1, 3), np.float32),
                         "h": np.zeros((1, 1, 6), np.float32),
                         "c": np.zeros((1, 1, 6), np.float32)})


def test_x_must_be_one_time_step():
    """(B, I) frames, which a cell node takes, are refused by a Step node at load: ONNX's
    operator, its function, takes (time, B, I)."""
    model, _ = _step_model(FAMILIES["gru"], 8, 4, np.random.default_rng(1))
    model.graph.input[0].type.tensor_type.shape.dim.pop(0)
    with pytest.raises(Exception, match=r"GRUStep node .*: x \(b, 4\) must be \(1, batch, "
                                        r"inputs\): one time step of one direction"):
        _session(model, True)


def test_the_lean_export_keeps_onnx_operator_for_a_layer_the_kernels_refuse(tmp_path):
    """A relu RNN (the kernels' RNN is tanh) and a layer with a weight beyond the kernels'
    bound (1e6, runtime/cells8/checks.h) are written as ONNX's own operator, which runs them."""
    torch = pytest.importorskip("torch")
    from edgernn.config import ModelConfig
    from edgernn.exporters import export
    from edgernn.models import build
    from edgernn.runtime import load

    def ops(net):
        return [n.op_type for n in onnx.load_from_string(
            export(net, None, ops="lean").model_bytes).graph.node]

    relu = build(ModelConfig(cell="rnn", nonlinearity="relu", input_size=3, hidden_size=5,
                             output_size=2, head="classify_step"), seed=0)
    assert "RNN" in ops(relu) and "RNNStep" not in ops(relu)
    net = build(ModelConfig(cell="lstm", input_size=3, hidden_size=5, num_layers=2,
                            output_size=2, head="classify_step"), seed=0)
    assert ops(net).count("LSTMStep") == 2 and "LSTM" not in ops(net)   # a node a layer
    with torch.no_grad():
        next(p for n, p in net.named_parameters() if n.endswith("weight_hh_l1"))[0, 0] = 2e6
    used = ops(net)
    assert used.count("LSTMStep") == 1 and "LSTM" in used       # layer 0 Step, layer 1 ONNX's
    assert load(export(net, tmp_path / "big.onnx", ops="lean").path).kernels


def test_quantize_refuses_an_edited_step_file_with_the_kernels_words(tmp_path):
    """A Step node whose W was cut (an edited file): quantize writes nothing and says what the
    kernels say at load (the node, the tensor, both shapes), not a Python error from lowering."""
    pytest.importorskip("torch")
    from onnx import numpy_helper

    from edgernn.config import ModelConfig
    from edgernn.errors import EdgeRNNError
    from edgernn.exporters import export
    from edgernn.exporters.forms.lower import lower
    from edgernn.exporters.quant.quantize import Gate, quantize
    from edgernn.models import build

    net = build(ModelConfig(cell="gru", input_size=3, hidden_size=5, output_size=2,
                            head="classify_step"), seed=0)
    model = onnx.load(export(net, tmp_path / "m.onnx", ops="lean").path)
    node = next(n for n in model.graph.node if n.op_type == "GRUStep")
    w = next(t for t in model.graph.initializer if t.name == node.input[2])
    w.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(numpy_helper.to_array(w)[:, :7]),
                                       w.name))
    assert lower(model)[1] == [f"GRUStep node {node.name} kept (weights whose shapes do not "
                               f"fit together)"]
    onnx.save(model, tmp_path / "edited.onnx")
    with pytest.raises(EdgeRNNError, match=r"GRUStep node .*W \(3, 7\)"):
        quantize(tmp_path / "edited.onnx", tmp_path / "q.onnx",
                 gate=Gate(horizon=20, check_metric=False), measure_latency=False)
    assert not (tmp_path / "q.onnx").exists()
