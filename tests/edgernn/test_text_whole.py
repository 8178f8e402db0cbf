"""Whole-text classifiers: bidirectional models over texts of different lengths (issue 19).

A padded batch must not reach the backward direction, so training runs packed sequences and
every later stage (validate, the int8 gate, the runtimes) runs each text at its own length. The
tests pin that each path equals running one text alone, and that the padded run would not.
"""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgernn.config import ModelConfig  # noqa: E402
from edgernn.errors import StreamingError  # noqa: E402
from edgernn.exporters.checks.parity import batched  # noqa: E402
from edgernn.models import build  # noqa: E402
from edgernn.runtime import load  # noqa: E402
from tests.conftest import run_cli  # noqa: E402
from tests.edgernn.test_text import reviews  # noqa: E402

# One text alone and the same text in a padded batch differ only by float32 summation order in
# the batched kernels: ~1e-7 on logits of order 1.
ALONE = 1e-5


@pytest.mark.parametrize("cell, tokens", [("lstm", True), ("gru", True), ("rnn", True),
                                          ("gru", False)])
def test_packed_forward_is_each_text_alone(cell, tokens):
    """Token ids (texts) or frames (a keyword .npz with lengths): the same rule."""
    config = ModelConfig(cell=cell, input_size=30, hidden_size=8, num_layers=2, output_size=3,
                         head="classify_last", bidirectional=True,
                         embedding_dim=5 if tokens else 0)
    model = build(config, seed=0).eval()
    rng = np.random.default_rng(0)
    lengths = np.array([7, 2, 5, 7, 1])
    x = np.zeros((5, 7) if tokens else (5, 7, 30), np.int64 if tokens else np.float32)
    for i, n in enumerate(lengths):                                # padding 0 past each end
        x[i, :n] = rng.integers(1, 30, n) if tokens else rng.standard_normal((n, 30))
    with torch.no_grad():
        packed = model(torch.from_numpy(x), lengths=torch.from_numpy(lengths))[0].numpy()
        padded = model(torch.from_numpy(x))[0].numpy()
        alone = np.concatenate([model(torch.from_numpy(x[i:i + 1, :n]))[0].numpy()
                                for i, n in enumerate(lengths)])
    np.testing.assert_allclose(packed, alone, rtol=0, atol=ALONE)
    short = lengths < 7
    assert np.abs(padded[short] - alone[short]).max() > 1e-3     # padding would have leaked
    np.testing.assert_allclose(padded[~short], alone[~short], rtol=0, atol=ALONE)


def test_batched_by_length_runs_each_row_at_its_length_in_order():
    x = np.arange(24, dtype=np.float32).reshape(4, 6)
    lengths = np.array([6, 2, 4, 2])
    seen = []

    def whole(v):                                    # one answer per row, and a state
        seen.append(v.shape)
        return v.sum(1, keepdims=True), [v[:, :1] * 10]

    y, (state,) = batched(whole, x, lengths=lengths)
    np.testing.assert_array_equal(y[:, 0], [x[i, :n].sum() for i, n in enumerate(lengths)])
    np.testing.assert_array_equal(state[:, 0], x[:, 0] * 10)
    assert sorted(seen) == [(1, 4), (1, 6), (2, 2)]
    per_step, _ = batched(lambda v: (v[..., None] * 2, []), x, lengths=lengths)
    assert per_step.shape == (4, 6, 1)
    for i, n in enumerate(lengths):                  # a real step as computed, zeros after
        np.testing.assert_array_equal(per_step[i, :n, 0], x[i, :n] * 2)
        assert not per_step[i, n:].any()


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_bidirectional_text_classifier_through_every_stage(tmp_path, cell):
    data = reviews(tmp_path / "r.csv", n=400)
    out = run_cli("train", "--task", "classify", "--data", data, "--text-column", "review",
                  "--label-column", "verdict", "--bidirectional", "--cell", cell,
                  "--hidden", "16", "--epochs", "6", "-o", tmp_path / "m.pt", "--json")
    assert out.returncode == 0, out.stderr
    trained = json.loads(out.stdout)["test"]
    assert trained >= 0.9
    done = run_cli("export", tmp_path / "m.pt", "-o", tmp_path / "m.onnx")   # sequence graph
    assert done.returncode == 0, done.stderr
    model = load(tmp_path / "m.onnx")
    assert model.graph == "sequence" and not model.contract.streamable
    with pytest.raises(StreamingError):
        model.stream()

    # validate runs the test split text by text: same metric as training measured in torch
    checked = run_cli("validate", tmp_path / "m.pt", tmp_path / "m.onnx", "--json")
    assert checked.returncode == 0, checked.stderr
    metric = json.loads(checked.stdout)["artifacts"][0]["metric"]
    assert metric["items"] == 40 and metric["value"] == pytest.approx(trained, abs=1e-9)
    assert metric["changed"] == 0

    # the runtime's label for a text is the checkpoint's for that text alone
    from edgernn.checkpoint import load_checkpoint

    net = load_checkpoint(tmp_path / "m.pt").build_model().eval()
    tok = model.contract.tokenizer
    for text in ["the film was brilliant and moving", "awful", "a dull , weak mess really"]:
        with torch.no_grad():
            want = torch.softmax(net(torch.tensor([tok.encode(text)]))[0][0], -1).numpy()
        got = model.classify(text)
        np.testing.assert_allclose([got.probabilities[k] for k in model.labels], want,
                                   rtol=0, atol=ALONE)

    # int8: the embedding table and the head; the fused layers stay fp32 and say so
    q = run_cli("quantize", tmp_path / "m.onnx", "--checkpoint", tmp_path / "m.pt", "--json")
    assert q.returncode == 0, q.stderr
    report = json.loads(q.stdout)
    assert report["passed"] and report["metric"]["items"] == 40
    assert "one scale a row" in report["coverage"]["options"]["embeddings"]
    assert any("fused recurrent layer(s) stay fp32" in n for n in report["notes"])
    assert report["coverage"]["weight_tensors"] == 2                 # the layer counted fp32
    ran = run_cli("run", tmp_path / "m.int8.onnx", "-", "--json",
                  input="the film was superb\nboring and dull\n")
    assert ran.returncode == 0, ran.stderr
    assert [json.loads(line)["label"] for line in ran.stdout.splitlines()] == ["fresh", "rotten"]


def test_bidirectional_needs_whole_sequences(tmp_path):
    data = reviews(tmp_path / "r.csv", n=30)
    out = run_cli("train", "--task", "classify", "--data", data, "--text-column", "review",
                  "--label-column", "verdict", "--bidirectional", "--bptt", "4")
    assert out.returncode in (1, 2) and "reads each sequence whole; drop --bptt" in out.stderr
    assert "Traceback" not in out.stderr
