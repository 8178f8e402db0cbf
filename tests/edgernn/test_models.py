import itertools

import pytest

torch = pytest.importorskip("torch")

from edgernn.config import ModelConfig  # noqa: E402
from edgernn.errors import ConfigError  # noqa: E402
from edgernn.models import build  # noqa: E402

CELLS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")]
B, T, F, H, O = 3, 7, 5, 6, 4


@pytest.mark.parametrize("cell, act, layers, bidi",
                         [(c, a, n, b) for (c, a), n, b in
                          itertools.product(CELLS, (1, 2, 3), (False, True))])
def test_every_cell_builds_and_runs_with_and_without_state(cell, act, layers, bidi):
    cfg = ModelConfig(cell=cell, nonlinearity=act, input_size=F, hidden_size=H,
                      num_layers=layers, output_size=O, head="classify_step",
                      bidirectional=bidi, dropout=0.1 if layers > 1 else 0.0)
    model = build(cfg, seed=0).eval()
    x = torch.randn(B, T, F)
    y, state = model(x)
    assert y.shape == (B, T, O)
    tensors = model.family.unpack_state(state)
    assert len(tensors) == len(model.family.states)
    for s in tensors:
        assert s.shape == (layers * cfg.directions, B, H)
    # Feeding the returned state back continues the sequence exactly like one long call.
    y2, _ = model(x, state)
    whole, _ = model(torch.cat([x, x], dim=1))
    if not bidi:
        torch.testing.assert_close(y2, whole[:, T:], rtol=0, atol=1e-6)
    # An explicit zero state equals no state.
    y0, _ = model(x, model.initial_state(B))
    torch.testing.assert_close(y0, y, rtol=0, atol=0)


@pytest.mark.parametrize("bidi", [False, True])
def test_classify_last_reads_the_right_steps(bidi):
    cfg = ModelConfig(cell="gru", input_size=F, hidden_size=H, num_layers=2, output_size=O,
                      head="classify_last", bidirectional=bidi)
    model = build(cfg, seed=1).eval()
    x = torch.randn(B, T, F)
    y, _ = model(x)
    assert y.shape == (B, O)
    out, _ = model.features(x)
    expect = torch.cat([out[:, -1, :H], out[:, 0, H:]], -1) if bidi else out[:, -1]
    torch.testing.assert_close(y, model.head(expect))
    if not bidi:  # streamed per-step output at the last step is the sequence label
        torch.testing.assert_close(model.forward_steps(x)[0][:, -1], y)


def test_lm_head_embeds_token_ids():
    cfg = ModelConfig(cell="lstm", input_size=30, hidden_size=H, num_layers=1, output_size=30,
                      head="lm", embedding_dim=8)
    y, (h, c) = build(cfg, seed=0)(torch.randint(0, 30, (B, T)))
    assert y.shape == (B, T, 30) and h.shape == c.shape == (1, B, H)


def test_same_seed_same_weights():
    cfg = ModelConfig(input_size=F, hidden_size=H, output_size=O)
    a, b = build(cfg, seed=3), build(cfg, seed=3)
    for (n, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(p, q), n


@pytest.mark.parametrize("changes, message", [
    ({"cell": "transformer"}, "unknown cell 'transformer'; expected one of rnn, lstm, gru"),
    ({"hidden_size": 0}, "hidden_size must be a positive integer, got 0"),
    ({"head": "lm", "embedding_dim": 4, "bidirectional": True}, "cannot see the future"),
    ({"head": "lm"}, "needs embedding_dim >= 1"),
    ({"nonlinearity": "relu"}, "applies to 'rnn' cells only"),
    ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
    ({"head": "attention"}, "head 'attention' is unknown"),
])
def test_bad_config_is_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        ModelConfig(**changes)


def test_config_from_dict_rejects_unknown_fields():
    with pytest.raises(ConfigError, match="unknown model config field.*colour"):
        ModelConfig.from_dict({"colour": "red"})
    assert ModelConfig.from_dict(ModelConfig().to_dict()) == ModelConfig()


def test_macs_count_matches_the_weights():
    cfg = ModelConfig(cell="lstm", input_size=40, hidden_size=128, num_layers=2, output_size=10)
    model = build(cfg)
    weight_macs = sum(p.numel() for n, p in model.named_parameters() if "weight" in n)
    assert cfg.macs_per_step() == weight_macs
