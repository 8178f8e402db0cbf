"""Text in, label out: a classifier trained on a user's file of texts, its tokenizer in the
contract, labels from strings in the runtime and the CLI (issue 19, the first part)."""

import csv
import json
import random

import numpy as np
import pytest

pytest.importorskip("torch")

from edgernn.csvio import read_records  # noqa: E402
from edgernn.errors import DataError  # noqa: E402
from edgernn.runtime import load  # noqa: E402
from tests.conftest import run_cli  # noqa: E402

POSITIVE = ["great", "wonderful", "loved", "superb", "fun", "brilliant", "moving"]
NEGATIVE = ["awful", "boring", "hated", "dull", "terrible", "weak", "mess"]
FILLER = ["the", "film", "was", "a", "plot", "acting", "and", "story", "really", "quite"]
CHINESE = {"fresh": ["很好", "精彩", "喜欢", "感人"], "rotten": ["很差", "无聊", "失望", "糟糕"]}


def reviews(path, n=500, seed=0, chinese=False):
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.choice(["fresh", "rotten"])
        if chinese:
            words = rng.choices(["电影", "故事", "演员", "这部", "真的"], k=rng.randint(2, 5))
            words += rng.choices(CHINESE[label], k=2)
        else:
            words = rng.choices(FILLER, k=rng.randint(4, 12))
            words += rng.choices(POSITIVE if label == "fresh" else NEGATIVE, k=2)
        rng.shuffle(words)
        rows.append({"review": ("" if chinese else " ").join(words), "verdict": label})
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                        encoding="utf-8")
    else:
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, ["review", "verdict"],
                               delimiter="\t" if path.suffix == ".tsv" else ",")
            w.writeheader()
            w.writerows(rows)
    return path


def test_records_from_csv_tsv_and_jsonl(tmp_path):
    (tmp_path / "a.csv").write_text('\ufefftext,label\n"good, really",1\nbad,0\n',
                                    encoding="utf-8")
    assert read_records(tmp_path / "a.csv", "text", "label") == (["good, really", "bad"],
                                                                  ["1", "0"])
    (tmp_path / "a.tsv").write_text("text\tlabel\nok\tyes\n", encoding="utf-8")
    assert read_records(tmp_path / "a.tsv", "text", "label") == (["ok"], ["yes"])
    (tmp_path / "a.jsonl").write_text('{"t": "ünï", "l": 2}\n\n', encoding="utf-8")
    assert read_records(tmp_path / "a.jsonl", "t", "l") == (["ünï"], ["2"])
    with pytest.raises(DataError, match="no column 'body'; its columns are text, label"):
        read_records(tmp_path / "a.csv", "body", "label")
    (tmp_path / "b.jsonl").write_text('{"t": 1, "l": 0}\nnot json\n', encoding="utf-8")
    with pytest.raises(DataError, match="line 2 is not JSON"):
        read_records(tmp_path / "b.jsonl", "t", "l")


@pytest.mark.parametrize("suffix, tokens, chinese", [(".csv", "words", False),
                                                     (".jsonl", "chars", True)])
def test_train_export_and_label_texts(tmp_path, suffix, tokens, chinese):
    data = reviews(tmp_path / f"r{suffix}", chinese=chinese)
    out = run_cli("train", "--task", "classify", "--data", data, "--text-column", "review",
                  "--label-column", "verdict", "--tokens", tokens, "--cell", "gru",
                  "--hidden", "32", "--epochs", "6", "-o", tmp_path / "m.pt", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["test"] >= 0.9
    assert run_cli("export", tmp_path / "m.pt", "-o", tmp_path / "m.onnx").returncode == 0
    model = load(tmp_path / "m.onnx")
    tok = model.contract.tokenizer
    assert tok.split == tokens and model.labels == ["fresh", "rotten"] and tok.max_length == 200
    sample = "这部电影很好 精彩" if chinese else "the film was brilliant and moving"
    got = model.classify(sample)
    assert got.label == "fresh" and set(got.probabilities) == {"fresh", "rotten"}
    stream = model.stream()                       # a label as the text arrives, piece by piece
    half = len(sample) // 2
    ys = np.concatenate([stream.feed_text(sample[:half]), stream.feed_text(sample[half:])]) \
        if tokens == "chars" else stream.feed_text(sample)
    assert stream.label(ys[-1]) == got.label
    ran = run_cli("run", tmp_path / "m.onnx", "-", "--json", input=sample + "\n")
    assert ran.returncode == 0, ran.stderr
    line = json.loads(ran.stdout)
    assert line["label"] == "fresh" and line["probabilities"]["fresh"] == pytest.approx(
        got.probabilities["fresh"], abs=1e-6)
    # the whole text in one call: a sequence graph of the same model gives the same answer
    assert run_cli("export", tmp_path / "m.pt", "--graph", "sequence", "-o",
                   tmp_path / "m.seq.onnx").returncode == 0
    whole = load(tmp_path / "m.seq.onnx").classify(sample)
    assert whole.label == got.label
    assert whole.probabilities["fresh"] == pytest.approx(got.probabilities["fresh"], abs=1e-5)
    # later stages read the texts as training did: the recorded file, tokenizer and columns
    assert run_cli("validate", tmp_path / "m.pt", tmp_path / "m.onnx").returncode == 0
    q = run_cli("quantize", tmp_path / "m.onnx", "--json")
    assert q.returncode == 0, q.stderr
    assert json.loads(q.stdout)["metric"]["items"] == 50
    int8 = load(tmp_path / "m.int8.onnx")             # the embedding table too, a scale a row
    assert "one scale a row" in int8.contract.quantization.options["embeddings"]
    ops = set(_ops(tmp_path / "m.int8.onnx"))             # the default lean file: kernel nodes
    assert "Gather" in ops and "Dense8" in ops and any(o.endswith(("Cell8", "Cell8Q"))
                                                       for o in ops), ops
    assert int8.classify(sample).label == "fresh"


def test_text_options_are_checked(tmp_path):
    out = run_cli("train", "--task", "forecast", "--max-length", "5")
    assert out.returncode == 2 and "--max-length is for --task classify on a text file" in \
        out.stderr
    data = reviews(tmp_path / "r.csv", n=30)
    out = run_cli("train", "--task", "classify", "--data", data, "--text-column", "body")
    assert out.returncode == 1 and "no column 'body'" in out.stderr


def _ops(path):
    import onnx

    proto = onnx.load(path)
    tables = {t.name for t in proto.graph.initializer if t.data_type == onnx.TensorProto.INT8}
    assert any(n.op_type == "Gather" and n.input[0] in tables for n in proto.graph.node)
    return [n.op_type for n in proto.graph.node]
