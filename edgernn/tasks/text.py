"""Text classification data: texts and labels from a .csv, .tsv or .jsonl file, tokenised by
characters or words into token ids with a vocabulary built on the training split.

The vocabulary (with its rules: split, lower-casing, unknown token, maximum length) goes into
the checkpoint and the contract, so the runtimes tokenise exactly as training did.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgernn.contract import DataRef
from edgernn.csvio import read_records
from edgernn.errors import DataError
from edgernn.tasks.base import Split, TaskData, file_sha256
from edgernn.vocab import Vocabulary

DEFAULT_MAX_LENGTH = 200


def split_indices(n: int, seed: int) -> dict[str, np.ndarray]:
    """Record indices of the train, validation and test splits (80/10/10, seeded): what a
    baseline on the raw texts uses to score the same split."""
    order = np.random.default_rng(seed).permutation(n)
    k = max(1, n // 10)
    return {"test": order[:k], "val": order[k:2 * k], "train": order[2 * k:]}


def load_text(path, *, text_column: str = "text", label_column: str = "label",
              tokens: str = "wordpunct", lower: bool = True, max_vocab: int | None = 8_000,
              max_length: int | None = DEFAULT_MAX_LENGTH, seed: int = 0,
              tokenizer: Vocabulary | None = None, labels: list[str] | None = None) -> TaskData:
    """Train, validation and test splits (80/10/10, seeded) of token ids (N, T) with lengths;
    ``tokenizer`` and ``labels`` given (a later stage) keep the model's own."""
    texts, names = read_records(path, text_column, label_column)
    if len(texts) < 10:
        raise DataError(f"{path} holds {len(texts)} records; a text classifier needs at least 10")
    parts = split_indices(len(texts), seed)
    if tokenizer is None:
        tokenizer = Vocabulary.build([texts[i] for i in parts["train"]], tokens, lower=lower,
                                     max_size=max_vocab, specials=("pad", "unk"),
                                     max_length=max_length)
    labels = labels or sorted(set(names))
    index = {name: i for i, name in enumerate(labels)}
    unknown = sorted(set(names) - set(index))
    if unknown:
        raise DataError(f"{path}: label(s) {', '.join(map(repr, unknown[:5]))} are not among the "
                        f"model's labels {labels}")
    if len(labels) < 2:
        raise DataError(f"{path}: every record has the label {labels[0]!r}; a classifier needs "
                        f"at least two")
    splits = {}
    for part, idx in parts.items():
        ids = [tokenizer.encode(texts[i]) or [tokenizer.specials["unk"]] for i in idx]
        length = max(map(len, ids))
        x = np.full((len(ids), length), tokenizer.specials["pad"], np.int64)
        for j, seq in enumerate(ids):
            x[j, :len(seq)] = seq
        splits[part] = Split(x, np.array([index[names[i]] for i in idx], np.int64),
                             np.array([len(s) for s in ids], np.int64))
    data = TaskData(**splits, labels=labels, tokenizer=tokenizer)
    data.ref = DataRef("file", Path(path).name, path=str(Path(path).resolve()),
                       sha256=file_sha256(path), seed=seed, sequences=len(texts),
                       steps=int(sum(s.lengths.sum() for s in splits.values())),
                       splits={k: len(v) for k, v in splits.items()},
                       feature_names=[text_column, label_column], variable_length=True)
    return data


def held_out_texts(ref: DataRef | None, data_path=None) -> list[str]:
    """The test split's texts as written (not token ids) of the file a classifier was trained
    on, or of ``data_path`` (same columns): examples a page or an app can show."""
    path = data_path or (ref.path if ref is not None and ref.kind == "file" else None)
    if path is None or not Path(path).is_file() or (
            data_path is None and file_sha256(path) != ref.sha256):
        where = f" ({path})" if path else ""
        raise DataError(f"the texts this model was trained on{where} are not there or have "
                        f"changed; pass --data with the texts file")
    columns = (ref.feature_names or ["text", "label"])[:2] if ref is not None else ["text",
                                                                                    "label"]
    texts, _ = read_records(path, *columns)
    return [texts[i] for i in split_indices(len(texts), (ref.seed if ref else 0) or 0)["test"]]
