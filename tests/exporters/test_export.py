"""The export matrix: every cell, depth, graph kind, op form and exporter against PyTorch.

Tolerance: 1e-5 max abs on outputs and states. Models here have random weights and small
hidden sizes, so outputs are unit-scale; float32 kernels of PyTorch and ONNX Runtime differ by a
few 1e-7 per step, which stays far below 1e-5 over 11 steps, while any real export bug (wrong
gate order, a lost state, a time axis pinned to the example length) shows up at 1e-2 or more.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from edgernn.config import ModelConfig  # noqa: E402
from edgernn.errors import ExportError  # noqa: E402
from edgernn.exporters import export  # noqa: E402
from edgernn.exporters.checks.parity import drive, random_splits  # noqa: E402
from edgernn.exporters.from_torch.source import resolve  # noqa: E402
from edgernn.models import build  # noqa: E402
from edgernn.runtime import kernels, load  # noqa: E402
from tests.tolerances import TORCH_VS_ONNX  # noqa: E402

ATOL = TORCH_VS_ONNX
CELLS = {"rnn-tanh": ("rnn", "tanh"), "rnn-relu": ("rnn", "relu"), "lstm": ("lstm", "tanh"),
         "gru": ("gru", "tanh")}
FORMS = [("step", "fused", False), ("step", "decomposed", False), ("step", "compact", False),
         ("step", "lean", False), ("chunk", "fused", False), ("sequence", "fused", True)]
EXPORTERS = ["torchscript", "dynamo"]
# torch 2.13's dynamo exporter unrolls the vanilla RNN to the example length in chunk and
# sequence graphs; export's parity check catches it and the file comes from torchscript.
DYNAMO_REFUSES = {("rnn", "chunk"), ("rnn", "sequence")}


def tiny(cell, act, layers, bidi, head="classify_step"):
    cfg = ModelConfig(cell=cell, nonlinearity=act, input_size=5, hidden_size=6,
                      num_layers=layers, output_size=3, head=head, bidirectional=bidi)
    return build(cfg, seed=layers)


def assert_matches(model, module, batch, chunks=None, steps=11):
    src = resolve(module)
    x = src.random_input(batch, steps, np.random.default_rng(batch))
    want_y, want_states = src.reference(x)
    got_y, got_states = drive(model, x, chunks)
    assert got_y.shape == want_y.shape and got_y.dtype == np.float32
    np.testing.assert_allclose(got_y, want_y, rtol=0, atol=ATOL)
    if any(spec.layout == ["directions", "batch", "hidden"] for spec in model.states):
        want_states = _per_layer(model.states, want_states)      # lean: h0, c0, h1, ...
    for spec, want in zip(model.states, want_states):
        got = got_states[spec.name]
        if spec.layout == ["batch", "layers_x_hidden"]:      # compact: (B, L, H) merged
            want = want.reshape(want.shape[0], -1)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=ATOL)


def _per_layer(specs, want_states):
    """torch's (B, layers, H) states as the lean form keeps them: one (1, B, H) per layer, named
    by kind and layer (h0, c0, h1, c1, ...)."""
    kinds = list(dict.fromkeys(spec.name.rstrip("0123456789") for spec in specs))
    return [want_states[kinds.index(spec.name.rstrip("0123456789"))]
            [:, int(spec.name[len(spec.name.rstrip("0123456789")):]), :][None] for spec in specs]


# The compact and lean forms are written by edgernn itself: no torch exporter is involved.
# dynamo (not the default, and ~5x slower to export) runs one layer of every cell, a stack of
# two for the LSTM (how dynamo carries a stack's states does not depend on the cell), and the
# graphs it refuses at one layer; torchscript runs every depth.
MATRIX = [(cell, layers, form, exporter) for cell in sorted(CELLS) for layers in (1, 2, 3)
          for form in FORMS for exporter in EXPORTERS
          if exporter == "torchscript" or (form[1] not in ("compact", "lean") and layers <= (
              1 if (CELLS[cell][0], form[0]) in DYNAMO_REFUSES or cell != "lstm" else 2))]


@pytest.mark.parametrize("cell, layers, form, exporter", MATRIX,
                         ids=[f"{c}-{n}-{f[0]}-{f[1]}-{e}" for c, n, f, e in MATRIX])
def test_matrix(cell, layers, form, exporter):
    graph, ops, bidi = form
    name, act = CELLS[cell]
    module = tiny(name, act, layers, bidi)
    result = export(module, None, graph=graph, ops=ops, exporter=exporter)
    if exporter == "dynamo" and (name, graph) in DYNAMO_REFUSES:
        assert result.exporter == "torchscript"
        assert result.notes and result.notes[0].startswith("exported with torchscript: dynamo:")
        assert result.contract.provenance.exporter == "torchscript/fused"
    assert result.max_abs_error <= ATOL
    ops_used = set(result.op_types)
    fused_op = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}[name]
    if ops == "decomposed":
        assert fused_op not in ops_used and "MatMul" in ops_used
    elif ops == "compact":
        assert fused_op not in ops_used and "Gemm" in ops_used and "Transpose" not in ops_used
    elif ops == "lean":          # tanh layers: Step nodes (edgernn's kernel, else ONNX's op)
        assert ops_used & {fused_op, fused_op + "Step"} == {
            fused_op + "Step" if act == "tanh" else fused_op}
        with kernels.turned_off():                     # the function: ONNX's own operator
            assert_matches(load(result.model_bytes), module, 4)
    elif exporter == "torchscript":
        assert fused_op in ops_used
    model = load(result.model_bytes)
    assert model.kernels == (kernels.enabled() and ops == "lean" and act == "tanh")
    assert model.contract.graph == graph
    for batch in (1, 4):
        assert_matches(model, module, batch)
    if graph == "chunk":  # any split into chunks equals the whole sequence
        rng = np.random.default_rng(7)
        for _ in range(3):
            assert_matches(model, module, 4, random_splits(11, rng, 5))


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_export_is_deterministic(exporter, tmp_path):
    module = tiny("lstm", "tanh", 2, False)
    a = export(module, tmp_path / "a.onnx", exporter=exporter)
    b = export(module, tmp_path / "b.onnx", exporter=exporter)
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()
    assert a.bytes == b.bytes


def test_file_passes_the_checker_and_carries_the_contract(tmp_path, forecast_checkpoint):
    path = tmp_path / "f.onnx"
    export(forecast_checkpoint, path, ops="fused")
    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    model = load(path)
    c = model.contract
    assert c.task == "forecast" and c.head == "regress" and c.preprocessing is not None
    assert c.postprocessing == c.preprocessing
    assert [s.name for s in c.states] == ["h"]
    assert c.states[0].shape == ["batch", 1, 16] and c.states[0].layout[0] == "batch"
    assert c.inputs[0].shape == ["batch", 3] and c.outputs[0].shape == ["batch", 3]
    assert c.provenance.opset == 17 and c.provenance.torch_version.startswith("2.")
    assert len(c.provenance.weights_sha256) == 64
    assert c.parity and c.parity[0].measured <= c.parity[0].tolerance


@pytest.mark.parametrize("opset", [14, 18])
def test_opset_is_selectable(opset):
    result = export(tiny("gru", "tanh", 1, False), None, opset=opset, ops="fused")
    assert result.opset == opset == result.contract.provenance.opset


class UserModel(torch.nn.Module):
    """A user's own model: conv front-end, GRU, layer norm, two heads folded into one output."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(4, 8)
        self.rnn = torch.nn.GRU(8, 12, num_layers=2, batch_first=True)
        self.norm = torch.nn.LayerNorm(12)
        self.out = torch.nn.Linear(12, 2)

    def forward(self, x, state=None):
        y, state = self.rnn(torch.tanh(self.proj(x)), state)
        return self.out(self.norm(y)), state


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("graph, ops", [("step", "fused"), ("step", "decomposed"),
                                        ("chunk", "fused")])
def test_user_module(graph, ops, exporter):
    torch.manual_seed(0)
    module = UserModel().eval()
    result = export(module, None, example_input=torch.randn(2, 5, 4), graph=graph, ops=ops,
                    exporter=exporter)
    model = load(result.model_bytes)
    assert [s.name for s in model.states] == ["h"] and model.states[0].shape == ["batch", 2, 12]
    src = resolve(module, torch.randn(2, 5, 4))
    x = src.random_input(4, 9, np.random.default_rng(0))
    want_y, want_states = src.reference(x)
    got_y, got_states = drive(model, x)
    np.testing.assert_allclose(got_y, want_y, rtol=0, atol=ATOL)
    np.testing.assert_allclose(got_states["h"], want_states[0], rtol=0, atol=ATOL)


@pytest.mark.parametrize("cls", [torch.nn.GRU, torch.nn.LSTM])
def test_bare_torch_module(cls):
    torch.manual_seed(0)
    module = cls(3, 5, num_layers=2)          # time-major, as torch's default
    result = export(module, None, graph="chunk")
    model = load(result.model_bytes)
    x = np.random.default_rng(0).standard_normal((2, 6, 3)).astype(np.float32)
    got_y, got_states = drive(model, x)
    with torch.no_grad():
        want_y, want_state = module(torch.from_numpy(x).transpose(0, 1))
    np.testing.assert_allclose(got_y, want_y.transpose(0, 1).numpy(), rtol=0, atol=ATOL)
    want_h = want_state[0] if isinstance(want_state, tuple) else want_state
    np.testing.assert_allclose(got_states["h"], want_h.transpose(0, 1).numpy(), rtol=0,
                               atol=ATOL)


def test_language_model_takes_token_ids():
    module = build(ModelConfig(cell="lstm", input_size=20, hidden_size=8, num_layers=2,
                               output_size=20, head="lm", embedding_dim=4), seed=0)
    result = export(module, None, graph="step")
    model = load(result.model_bytes)
    assert model.contract.inputs[0].dtype == "int64" and model.contract.inputs[0].shape == ["batch"]
    assert_matches(model, module, 2)


@pytest.mark.parametrize("graph", ["step", "chunk"])
def test_bidirectional_refuses_streaming_graphs(graph):
    with pytest.raises(ExportError, match=r"is bidirectional.*cannot run as a '" + graph +
                       r"' graph with state\. Use --graph sequence"):
        export(tiny("gru", "tanh", 1, True), None, graph=graph)


@pytest.mark.parametrize("ops", ["decomposed", "compact"])
def test_written_out_forms_are_for_step_graphs(ops):
    with pytest.raises(ExportError, match="applies to step graphs, not 'chunk'"):
        export(tiny("gru", "tanh", 1, False), None, graph="chunk", ops=ops)


def test_compact_is_for_edgernn_models():
    with pytest.raises(ExportError, match="--ops compact builds edgernn's own networks"):
        export(torch.nn.GRU(3, 4, batch_first=True), None, ops="compact")


def test_module_not_following_the_convention():
    with pytest.raises(ExportError, match=r"follow forward\(x, state=None\) -> \(y, state\)"):
        export(torch.nn.Linear(3, 2), None, example_input=torch.randn(1, 2, 3))
    with pytest.raises(ExportError, match="pass example_input"):
        export(torch.nn.Linear(3, 2), None)


def test_a_graph_that_fails_parity_is_never_written(tmp_path, monkeypatch):
    import importlib

    ex = importlib.import_module("edgernn.exporters.from_torch.export")   # the module, not the function

    path = tmp_path / "m.onnx"
    path.write_bytes(b"the previous file")
    real = ex._to_onnx

    def buggy(*args, **kwargs):  # an exporter bug: one weight comes out scaled
        proto = real(*args, **kwargs)
        init = max(proto.graph.initializer, key=lambda t: len(t.raw_data))
        arr = onnx.numpy_helper.to_array(init) * 1.5
        init.CopyFrom(onnx.numpy_helper.from_array(arr, init.name))
        return proto

    monkeypatch.setattr(ex, "_to_onnx", buggy)
    with pytest.raises(ExportError, match=r"(?i)does not compute what PyTorch computes \(y: max "
                                          r"abs .*nothing was written"):
        export(tiny("lstm", "tanh", 2, False), path, ops="fused")
    assert path.read_bytes() == b"the previous file"
    assert [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


def test_every_family_is_in_the_matrix():
    from edgernn.cells import FAMILIES

    assert {v[0] for v in CELLS.values()} == set(FAMILIES)
