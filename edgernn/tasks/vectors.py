"""Pretrained word vectors for a text classifier's embedding: ``--embeddings vectors.txt``.

The text format word2vec and GloVe publish: one token and its numbers per line, separated by
spaces, with (word2vec) or without (GloVe) a first line ``COUNT DIM``. Each token of the
classifier's vocabulary takes its vector (its lower-cased form when the exact one is absent);
the others, and ``<unk>``, start from random vectors of the found ones' spread, and ``<pad>``
from zeros. Training then goes on from there (the vectors are not frozen). The file is read
once, line by line, keeping only the vocabulary's vectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgernn.errors import DataError

HELP = ("an embeddings file holds one token per line followed by its numbers, separated by "
        "spaces (word2vec or GloVe text format; word2vec's first line 'COUNT DIM' is allowed)")


@dataclass
class Vectors:
    matrix: np.ndarray            # (vocabulary, dim) float32: the embedding's first weights
    found: int                    # tokens of the vocabulary with a vector in the file
    path: Path

    def describe(self, tokens: int) -> str:
        return (f"embeddings from {self.path.name}: {self.matrix.shape[1]} values, vectors "
                f"for {self.found:,} of {tokens:,} tokens ({100 * self.found / tokens:.1f} %)")


def read_vectors(path, vocabulary, seed: int = 0) -> Vectors:
    """The embedding matrix for ``vocabulary`` (a :class:`~edgernn.vocab.Vocabulary`)."""
    path = Path(path)
    wanted = {t: i for i, t in enumerate(vocabulary.tokens)}
    lower = {}
    for t, i in wanted.items():
        lower.setdefault(t.lower(), []).append(i)
    rows, exact, dim = {}, set(), None
    try:
        fh = open(path, encoding="utf-8", errors="strict")
    except OSError as e:
        raise DataError(f"cannot read the embeddings file {path}: {e.strerror}") from None
    with fh:
        try:
            for n, line in enumerate(fh, start=1):
                parts = line.rstrip("\r\n").rstrip(" ").split(" ")
                if n == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                    continue                                  # word2vec's header
                if len(parts) < 2 or not parts[0]:
                    if line.strip():
                        raise DataError(f"{path}: line {n} is not a token and its numbers; "
                                        f"{HELP}")
                    continue
                if dim is None:
                    dim = len(parts) - 1
                elif len(parts) - 1 != dim:
                    raise DataError(f"{path}: line {n} has {len(parts) - 1} numbers, the lines "
                                    f"before it {dim}; {HELP}")
                token = parts[0]
                targets = [wanted[token]] if token in wanted else [
                    i for i in lower.get(token.lower(), []) if i not in exact]
                if not targets:
                    continue
                try:
                    vec = np.array(parts[1:], np.float32)
                except ValueError:
                    raise DataError(f"{path}: line {n} ({token!r}) holds something that is not "
                                    f"a number; {HELP}") from None
                if not np.isfinite(vec).all():
                    raise DataError(f"{path}: line {n} ({token!r}) holds NaN or inf")
                for i in targets:
                    rows[i] = vec
                if token in wanted:
                    exact.add(wanted[token])
        except UnicodeDecodeError:
            raise DataError(f"{path} is not UTF-8 text; {HELP}") from None
    if dim is None:
        raise DataError(f"{path} holds no vectors; {HELP}")
    specials = set(vocabulary.specials.values())
    found = {i: v for i, v in rows.items() if i not in specials}
    if not found:
        raise DataError(f"{path}: none of the {len(wanted):,} tokens of the training texts has a "
                        f"vector there; is it a file for this language and tokenisation?")
    known = np.stack(list(found.values()))
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, float(known.std()) or 1.0, (len(wanted), dim)).astype(np.float32)
    for i, v in found.items():
        matrix[i] = v
    pad = vocabulary.specials.get("pad")
    if pad is not None:
        matrix[pad] = 0.0
    return Vectors(matrix, len(found), path)
