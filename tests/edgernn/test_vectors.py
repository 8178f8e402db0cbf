"""Pretrained word vectors for a text classifier (``--embeddings``): the text format word2vec
and GloVe publish, read for the training vocabulary, and training starting from them."""

import numpy as np
import pytest

pytest.importorskip("torch")

from edgernn.errors import ConfigError, DataError  # noqa: E402
from edgernn.pipeline import train  # noqa: E402
from edgernn.tasks.vectors import read_vectors  # noqa: E402
from edgernn.vocab import Vocabulary  # noqa: E402
from tests.conftest import run_cli  # noqa: E402
from tests.edgernn.test_text import FILLER, NEGATIVE, POSITIVE, reviews  # noqa: E402


def _vocab():
    return Vocabulary.build(["great film", "a dull film", "Paris"], "wordpunct", lower=False,
                            specials=("pad", "unk"))


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_each_token_takes_its_vector_or_its_lower_cased_one(tmp_path):
    path = _write(tmp_path / "v.txt", ["5 3", "film 1 2 3", "paris 4 5 6", "Great 7 8 9",
                                       "great 0.5 0.5 0.5", "unrelated 9 9 9", "<pad> 3 3 3"])
    vocab = _vocab()
    vectors = read_vectors(path, vocab)
    row = {t: vectors.matrix[i] for i, t in enumerate(vocab.tokens)}
    assert vectors.matrix.shape == (len(vocab), 3) and vectors.matrix.dtype == np.float32
    assert row["film"].tolist() == [1, 2, 3] and row["Paris"].tolist() == [4, 5, 6]
    assert row["great"].tolist() == [0.5, 0.5, 0.5]          # the exact token wins
    assert row["<pad>"].tolist() == [0, 0, 0]                # padding stays zero
    assert vectors.found == 3                                # film, Paris, great; not specials
    assert "vectors for 3 of" in vectors.describe(len(vocab))


@pytest.mark.parametrize("lines, message", [
    (["film 1 2 3", "dull 1 2"], "line 2 has 2 numbers, the lines before it 3"),
    (["film 1 x 3"], "line 1 ('film') holds something that is not a number"),
    (["film 1 nan 3"], "NaN or inf"),
    (["elsewhere 1 2 3"], "none of the"),
    ([], "holds no vectors"),
    (["film"], "line 1 is not a token and its numbers"),
])
def test_a_bad_file_gets_one_message_naming_the_line(tmp_path, lines, message):
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_vectors(_write(tmp_path / "v.txt", lines), _vocab())
    (tmp_path / "bin").write_bytes(b"film \xff\xfe 1\n")
    with pytest.raises(DataError, match="not UTF-8"):
        read_vectors(tmp_path / "bin", _vocab())


def test_training_starts_from_the_vectors(tmp_path):
    data = reviews(tmp_path / "r.csv", n=1200)
    rng = np.random.default_rng(0)
    words = FILLER + POSITIVE + NEGATIVE
    table = {w: rng.normal(size=8).round(4) for w in words}
    path = _write(tmp_path / "v.txt", [f"{w} {' '.join(map(str, v))}" for w, v in table.items()])
    result = train("classify", data, text_column="review", label_column="verdict",
                   embeddings=path, epochs=1, lr=1e-12, verbose=False)
    weight = result.model.embedding.weight.detach().numpy()
    tokens = result.data.tokenizer.tokens
    assert result.config.embedding_dim == 8
    for w in words:                      # a learning rate of 1e-12: still the file's vectors
        np.testing.assert_allclose(weight[tokens.index(w)], table[w], atol=1e-6)
    with pytest.raises(ConfigError, match="--embedding 16 differs from the 8 values"):
        train("classify", data, text_column="review", label_column="verdict",
              embeddings=path, embedding=16, epochs=1, verbose=False)


def test_the_cli_takes_embeddings_for_texts_only(tmp_path):
    data = reviews(tmp_path / "r.csv", n=1200)
    path = _write(tmp_path / "v.txt", [f"{w} 0.1 0.2 0.3 0.4" for w in FILLER + POSITIVE])
    out = run_cli("train", "--task", "classify", "--data", data, "--text-column", "review",
                  "--label-column", "verdict", "--embeddings", path, "--epochs", "1",
                  "-o", tmp_path / "m.pt")
    assert out.returncode == 0, out.stderr
    assert f"embeddings from v.txt: 4 values, vectors for {len(FILLER + POSITIVE)} of" in out.stderr
    out = run_cli("train", "--task", "forecast", "--embeddings", path, "-o", tmp_path / "f.pt")
    assert out.returncode != 0 and "--embeddings is for --task classify on a text file" in \
        out.stderr and "Traceback" not in out.stderr
    out = run_cli("train", "--task", "classify", "--data", data, "--embeddings",
                  tmp_path / "missing.txt", "-o", tmp_path / "m.pt")
    assert out.returncode != 0 and "missing.txt" in out.stderr and "Traceback" not in out.stderr
    before = path.read_bytes()                  # -o onto the vectors: refused, the file kept
    out = run_cli("train", "--task", "classify", "--data", data, "--text-column", "review",
                  "--label-column", "verdict", "--embeddings", path, "-o", path)
    assert out.returncode != 0 and "is the embeddings file this command reads" in out.stderr
    assert path.read_bytes() == before
