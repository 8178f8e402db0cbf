"""Every cell family through every form, driven by the family registry (edgernn/cells.py): a
family added there is covered here without a new branch anywhere.

Forms: the torch module, the decomposed torch step, the fused ONNX operator (lean graph), the
decomposed ONNX layer (compact graph), a fused node lowered to the decomposed layer, and int8.
Tolerance: 1e-5 against PyTorch for the float forms (float32 kernels differ by ~1e-7 a step on
unit-scale outputs; a wrong gate order or attribute is off by 1e-2 or more); int8 is judged by
the quantization gate, as a user's file is.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from edgernn.cells import BY_ONNX_OP, FAMILIES  # noqa: E402
from edgernn.config import ModelConfig  # noqa: E402
from edgernn.exporters import export  # noqa: E402
from edgernn.exporters.forms.lower import lower  # noqa: E402
from edgernn.exporters.quant import cells8  # noqa: E402
from edgernn.exporters.quant.quantize import Gate, quantize  # noqa: E402
from edgernn.models import build  # noqa: E402
from edgernn.runtime import load  # noqa: E402
from tests.tolerances import TORCH_VS_ONNX  # noqa: E402

ATOL = TORCH_VS_ONNX
VARIANTS = [(name, act) for name, fam in FAMILIES.items()
            for act in (("tanh", "relu") if fam.nonlinear else ("tanh",))]
IDS = [f"{n}-{a}" for n, a in VARIANTS]


def net(name, act, layers=2):
    cfg = ModelConfig(cell=name, nonlinearity=act, input_size=5, hidden_size=8,
                      num_layers=layers, output_size=3, head="classify_step")
    return build(cfg, seed=1)


def frames(steps=9):
    return np.random.default_rng(2).normal(size=(steps, 5)).astype(np.float32)


def torch_outputs(module, xs):
    with torch.no_grad():
        y, _ = module(torch.from_numpy(xs)[None])
    return y[0].numpy()


@pytest.mark.parametrize("name, act", VARIANTS, ids=IDS)
def test_the_decomposed_torch_step_is_the_torch_module(name, act):
    fam, module = FAMILIES[name], net(name, act, layers=1)
    x = torch.from_numpy(frames(1))
    state = fam.unpack_state(module.initial_state(1))
    state = tuple(s[0] for s in state)                                   # (B, H)
    p = dict(module.rnn.named_parameters())
    with torch.no_grad():
        h, _ = fam.step(x, state, p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"],
                        p["bias_hh_l0"], act)
        _, want = module.rnn(x[None])
    want = fam.unpack_state(want)[0][0]
    np.testing.assert_allclose(h.numpy(), want.numpy(), rtol=0, atol=ATOL)


@pytest.mark.parametrize("name", FAMILIES)
def test_onnx_gate_order_round_trips_and_matches_the_operator(name):
    fam = FAMILIES[name]
    w = np.arange(fam.gates * 2 * 3, dtype=np.float32).reshape(fam.gates * 2, 3)
    np.testing.assert_array_equal(fam.from_onnx_gates(fam.to_onnx_gates(w)), w)
    assert BY_ONNX_OP[fam.onnx_op] is fam
    assert fam.nonlinearity_of(list(fam.onnx_activations)) == "tanh"


@pytest.mark.parametrize("name, act", VARIANTS, ids=IDS)
def test_every_form_of_every_family_computes_the_torch_module(name, act, tmp_path):
    fam, module = FAMILIES[name], net(name, act)
    xs = frames()
    want = torch_outputs(module, xs)
    fused = export(module, tmp_path / "lean.onnx", ops="lean")    # fused operator, or Step node
    compact = export(module, tmp_path / "compact.onnx", ops="compact")      # decomposed layer
    ops = {f: {n.op_type for n in onnx.load(r.path).graph.node}
           for f, r in (("lean", fused), ("compact", compact))}
    lean_op = fam.onnx_op + "Step" if act == "tanh" else fam.onnx_op   # (its function: the op)
    assert lean_op in ops["lean"] and fam.onnx_op not in ops["compact"]
    for result in (fused, compact):
        np.testing.assert_allclose(load(result.path).stream().feed(xs), want, rtol=0, atol=ATOL)
    lowered, notes = lower(onnx.load(fused.path))                            # fused -> layer
    assert not notes and not {fam.onnx_op, lean_op} & {n.op_type for n in lowered.graph.node}
    onnx.save(lowered, tmp_path / "lowered.onnx")
    np.testing.assert_allclose(load(tmp_path / "lowered.onnx").stream().feed(xs), want,
                               rtol=0, atol=ATOL)
    for source in (fused.path, compact.path):                                # int8, gated
        out = tmp_path / f"{source.stem}.int8.onnx"
        report = quantize(source, out, gate=Gate(horizon=200), measure_latency=False)
        assert report.passed and report.coverage.weight_tensors_int8 > 0
        kinds = {n.op_type for n in onnx.load(out).graph.node}
        # the lean file's tanh-bounded cells become one int8 node each (quant/cells8.py)
        assert "MatMulInteger" in kinds or (source == fused.path and act == "tanh" and
                                            kinds & cells8.NAMES), kinds
        y = load(out).stream().feed(xs)
        assert y.shape == want.shape and np.isfinite(y).all()
