"""Encoder-decoder models in the runtime: greedy and beam search, against PyTorch's greedy
decoding (recorded when the models were built) and against a plain reference beam search that
runs each hypothesis alone through a plain ONNX Runtime session.

Tolerance: total log-probabilities within 1e-4 (float32 kernels of PyTorch and ONNX Runtime
differ by ~1e-6 a step; over 14 steps that stays far below); tokens must be equal.
"""

import json
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest

from edgernn.errors import ConfigError, DataError, ModelError, StreamingError
from edgernn.runtime import load
from tests.runtime.models import SEQ2SEQ, SEQ2SEQ_SOURCES

SCORE_ATOL = 1e-4


@pytest.fixture(scope="module")
def reference(models):
    return json.loads((models / "seq2seq_reference.json").read_text())


@pytest.mark.parametrize("name", SEQ2SEQ)
def test_greedy_equals_pytorch_token_for_token(models, reference, name):
    pair = load(models / f"{name}.onnx")
    again = load(models / f"{name}.decoder.onnx")            # either file loads the pair
    assert type(again) is type(pair) and again.spec.attention == pair.spec.attention
    for want in reference[name]:
        got = pair.translate(want["source"])
        assert got.tokens == want["tokens"], want["source"]
        assert abs(got.log_prob - want["log_prob"]) <= SCORE_ATOL
        beam1 = pair.translate(want["source"], beam=1)
        assert beam1.tokens == got.tokens and beam1.log_prob == got.log_prob


def test_a_trained_pair_writes_iso_dates(models):
    pair = load(models / "s2s_luong.onnx")
    assert pair.translate("3 March 2021").text == "2021-03-03"
    out = pair.translate("3 March 2021", beam=4, n_best=3)
    assert len(out.hypotheses) == 3 and out.hypotheses[0] is out
    assert [h.score for h in out.hypotheses] == sorted((h.score for h in out.hypotheses),
                                                      reverse=True)
    assert all(h.score == pytest.approx(h.log_prob / (len(h.tokens) + h.finished))
               for h in out.hypotheses)


@pytest.mark.parametrize("name", SEQ2SEQ)
@pytest.mark.parametrize("beam", [1, 3])
def test_a_batch_decodes_as_each_input_alone(models, name, beam):
    """Inputs of different lengths decoded together (beams of all of them rows of one decoder
    call, reordered by parent each step) equal each decoded alone."""
    pair = load(models / f"{name}.onnx")
    together = pair.translate_batch(SEQ2SEQ_SOURCES, beam=beam)
    for text, got in zip(SEQ2SEQ_SOURCES, together):
        alone = pair.translate(text, beam=beam)
        assert got.tokens == alone.tokens
        assert abs(got.log_prob - alone.log_prob) <= SCORE_ATOL


def _reference_beam(models, name, text, k, max_len):
    """Beam search the plain way: every hypothesis its own session call with its own state
    arrays, no batching and no row reordering. The same rules as the runtime: from the 2k
    best extensions, end-token ones among the first k finish and the best k others go on; the
    k best finished (log-probability per token, end included) are kept; stop once k have
    finished and no live one would score above the worst of them by ending next (greedy: at
    the first end). An output the model ended ranks before one cut at max_len."""
    pair = load(models / f"{name}.onnx")
    enc = ort.InferenceSession(str(models / f"{name}.onnx"))
    dec = ort.InferenceSession(str(models / f"{name}.decoder.onnx"))
    ids = pair.source.encode(text)
    outs = dict(zip([o.name for o in enc.get_outputs()],
                    enc.run(None, {"src": np.array([ids], np.int64)})))
    states = {s: outs[s] for s in pair.state_names}
    inputs = {i.name for i in dec.get_inputs()}
    extra = {k_: v for k_, v in (("memory", outs.get("memory")), ("keys", outs.get("keys")),
                                 ("mask", np.ones((1, len(ids)), np.float32)))
             if k_ in inputs}
    live = [([], 0.0, states)]
    finished = []
    for _ in range(max_len):
        cands = []
        for tokens, total, st in live:
            prev = np.array([tokens[-1] if tokens else pair.bos], np.int64)
            res = dec.run(None, {"prev": prev, **st, **extra})
            named = dict(zip([o.name for o in dec.get_outputs()], res))
            logp = named["logp"][0].astype(np.float64)
            nxt = {s: named[f"{s}_out"] for s in pair.state_names}
            for t in range(len(logp)):
                cands.append((total + logp[t], tokens, t, nxt))
        cands.sort(key=lambda c: -c[0])              # stable: ties keep beam-then-token order
        new = []
        for rank, (total, tokens, t, nxt) in enumerate(cands[:2 * k]):
            if t == pair.eos:
                if rank < k:
                    finished.append((tokens, total, True))
            else:
                new.append((tokens + [t], total, nxt))
            if len(new) == k:
                break
        finished = sorted(finished, key=lambda h: -h[1] / (len(h[0]) + 1))[:k]
        if not new or len(finished) >= k and (k == 1 or all(
                total / (len(tokens) + 1) <= finished[-1][1] / (len(finished[-1][0]) + 1)
                for tokens, total, _ in new)):
            break
        live = new
    else:
        finished += [(tokens, total, False) for tokens, total, _ in live]
    return sorted(finished, key=lambda h: (not h[2], -(h[1] / max(1, len(h[0]) + h[2]))))


@pytest.mark.parametrize("name", SEQ2SEQ)
def test_beam_search_equals_a_plain_per_hypothesis_search(models, name):
    pair = load(models / f"{name}.onnx")
    for text in SEQ2SEQ_SOURCES[:3]:
        want = _reference_beam(models, name, text, 3, pair.max_len)
        got = pair.translate(text, beam=3, n_best=3).hypotheses
        assert [h.tokens for h in got] == [w[0] for w in want[:len(got)]], text
        for h, w in zip(got, want):
            assert abs(h.log_prob - w[1]) <= SCORE_ATOL


def test_decoding_options_and_inputs_are_checked(models):
    pair = load(models / "s2s_luong.onnx")
    with pytest.raises(ConfigError, match="beam must be a positive int"):
        pair.translate("3 May 2000", beam=0)
    with pytest.raises(ConfigError, match="n_best must be between 1 and the beam"):
        pair.translate("3 May 2000", beam=2, n_best=3)
    with pytest.raises(DataError, match="has no tokens"):
        pair.translate("")
    with pytest.raises(DataError, match="source token ids run from 0"):
        pair.translate([0, 10_000])
    assert pair.translate("3 May 2000", max_len=3).finished is False
    assert pair.translate("€ 3 May 2000").text              # unknown characters: <unk>
    with pytest.raises(StreamingError, match="encoder-decoder.*translate"):
        pair.stream()
    assert pair.translate_batch([]) == []


def test_the_pair_is_found_and_checked(models, tmp_path):
    import shutil

    with pytest.raises(ModelError, match="load it from its path"):
        load((models / "s2s_luong.onnx").read_bytes())
    shutil.copyfile(models / "s2s_luong.onnx", tmp_path / "s2s_luong.onnx")
    with pytest.raises(ModelError, match="s2s_luong.decoder.onnx is not beside it"):
        load(tmp_path / "s2s_luong.onnx")
    shutil.copyfile(models / "s2s_none.decoder.onnx", tmp_path / "s2s_luong.decoder.onnx")
    with pytest.raises(ModelError, match="is not the partner of"):
        load(tmp_path / "s2s_luong.onnx")


def test_edgernn_run_decodes_a_file_line_by_line(models, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("3 March 2021\n\nJune 26, 1953\n", encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "edgernn", "run", str(models / "s2s_luong.onnx"),
                          str(source), "--beam", "2"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(v) for v in out.stdout.splitlines()]
    pair = load(models / "s2s_luong.onnx")
    assert [d["line"] for d in lines] == [1, 3]
    for d in lines:
        want = pair.translate(d["input"], beam=2)
        assert d["output"] == want.text and d["score"] == round(want.score, 6)
    bad = subprocess.run([sys.executable, "-m", "edgernn", "run", str(models / "s2s_luong.onnx"),
                          str(source), "--state-file", str(tmp_path / "s.state")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--state-file" in bad.stderr and "Traceback" not in bad.stderr


def test_decoding_limits_are_checked_before_any_work(models):
    """Issue 27: beam=10**6 ran 243 s and took 6.7 GB before a raw MemoryError; a 1.2 MB input
    took 98 s. The documented limits (edgernn/limits.py) answer at once."""
    import time

    from edgernn.limits import MAX_BEAM, MAX_TOKENS

    pair = load(models / "s2s_luong.onnx")
    start = time.monotonic()
    with pytest.raises(ConfigError, match=f"beam 1000000 is above edgernn's limit of "
                                          f"{MAX_BEAM}"):
        pair.translate("3 May 2000", beam=10**6)
    with pytest.raises(ConfigError, match=f"above edgernn's limit of {MAX_TOKENS} output"):
        pair.translate("3 May 2000", max_len=10**6)
    with pytest.raises(DataError, match=rf"1,200,00\d tokens; edgernn decodes at most "
                                        rf"{MAX_TOKENS:,}"):
        pair.translate("3" * 1_200_000)
    with pytest.raises(DataError, match="edgernn decodes at most"):
        pair.translate([1] * (MAX_TOKENS + 1))
    assert time.monotonic() - start < 30          # refused, not attempted (generous for slow VMs)
    assert pair.translate("3 May 2000", beam=MAX_BEAM).text   # the limit itself is allowed


def test_a_batch_larger_than_the_budget_decodes_in_groups_as_alone(models, monkeypatch):
    from edgernn.runtime import seq2seq

    pair = load(models / "s2s_luong.onnx")
    whole = pair.translate_batch(SEQ2SEQ_SOURCES, beam=3)
    monkeypatch.setattr(seq2seq, "DECODE_BUDGET", 3 * 12)   # about one input a group
    assert len(list(seq2seq._groups([[1] * 10] * 5, 3))) == 5
    grouped = pair.translate_batch(SEQ2SEQ_SOURCES, beam=3)
    assert [g.tokens for g in grouped] == [w.tokens for w in whole]
    assert max(abs(g.log_prob - w.log_prob) for g, w in zip(grouped, whole)) <= SCORE_ATOL
