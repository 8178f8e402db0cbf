"""Sequence to sequence: pairs of texts, their vocabularies, the built-in dates data set, and
the metrics (exact match, token error rate).

A data file has one ``source<TAB>target`` pair a line (UTF-8). Tokens are characters by
default, space-separated words with ``tokens="words"``. The built-in set needs no package: dates
written many ways (``3rd of March 2021``, ``03/03/21``, ``Wed, Mar 3 2021``...) to ISO 8601.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgernn.contract import DataRef
from edgernn.errors import DataError
from edgernn.csvio import records
from edgernn.limits import MAX_TOKENS
from edgernn.tasks.base import file_sha256, read_text
from edgernn.vocab import Vocabulary, tokens_of

HELP = ("A seq2seq data file is UTF-8 text with one 'source<TAB>target' pair a line, e.g. "
        "'3 March 2021\t2021-03-03'.")


@dataclass
class Pairs:
    sources: list[str]
    targets: list[str]

    def __len__(self) -> int:
        return len(self.sources)


@dataclass
class Seq2SeqData:
    train: Pairs
    val: Pairs
    test: Pairs
    source_vocab: Vocabulary
    target_vocab: Vocabulary
    ref: DataRef


def read_pairs(path: str | Path, tokens: str = "chars", target_tokens: str | None = None
               ) -> Pairs:
    """The pairs of a TSV file; one clear error for a line that is not a pair, or for a side
    longer than MAX_TOKENS tokens (split as ``tokens``/``target_tokens`` split them)."""
    path = Path(path)
    text = read_text(path, HELP)
    sources, targets = [], []
    for n, line in enumerate(records(text), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise DataError(f"{path}: line {n} ({line[:60]!r}) is not one source<TAB>target "
                            f"pair. {HELP}")
        for side, text, split in (("source", parts[0], tokens),
                                  ("target", parts[1], target_tokens or tokens)):
            if len(text) > MAX_TOKENS and len(tokens_of(text, split)) > MAX_TOKENS:
                raise DataError(f"{path}: line {n}'s {side} has {len(tokens_of(text, split)):,} "
                                f"tokens; edgernn trains on at most {MAX_TOKENS:,} a side. Split "
                                f"long texts into shorter pairs, or leave them out")
        sources.append(parts[0].strip())
        targets.append(parts[1].strip())
    if len(sources) < 10:
        raise DataError(f"{path} holds {len(sources)} pairs; a seq2seq model needs at least 10 "
                        f"(train, validation and test splits). {HELP}")
    return Pairs(sources, targets)


# ---------------------------------------------------------------- the built-in data set

_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


_FORMATS = [
    lambda d: f"{d.day} {_MONTHS[d.month - 1]} {d.year}",
    lambda d: f"{_MONTHS[d.month - 1]} {d.day}, {d.year}",
    lambda d: f"{_MONTHS[d.month - 1][:3]} {d.day} {d.year}",
    lambda d: f"{d.day} {_MONTHS[d.month - 1][:3]} {d.year}",
    lambda d: f"{_ordinal(d.day)} of {_MONTHS[d.month - 1]} {d.year}",
    lambda d: f"{_DAYS[d.weekday()]}, {_MONTHS[d.month - 1]} {d.day}, {d.year}",
    lambda d: f"{_DAYS[d.weekday()][:3]}, {_MONTHS[d.month - 1][:3]} {d.day} {d.year}",
    lambda d: f"{d.month:02d}/{d.day:02d}/{d.year}",
    lambda d: f"{d.month}/{d.day}/{d.year % 100:02d}",
    lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",
    lambda d: f"{d.year}{d.month:02d}{d.day:02d}",
    lambda d: f"{_MONTHS[d.month - 1].upper()} {d.day} {d.year}",
]


def dates(n: int, seed: int = 0) -> Pairs:
    """``n`` dates between 1950 and 2049, each written in one of 12 ways, to ISO 8601."""
    rng = np.random.default_rng(seed)
    start, span = _dt.date(1950, 1, 1).toordinal(), 365 * 100 + 24
    sources, targets = [], []
    for _ in range(n):
        d = _dt.date.fromordinal(start + int(rng.integers(span)))
        sources.append(_FORMATS[int(rng.integers(len(_FORMATS)))](d))
        targets.append(d.isoformat())
    return Pairs(sources, targets)


# ---------------------------------------------------------------- splits and vocabularies

def split_pairs(pairs: Pairs, seed: int, val: float = 0.1, test: float = 0.1):
    """Train, validation and test parts, by a seeded shuffle of whole pairs."""
    order = np.random.default_rng(seed).permutation(len(pairs))
    n_test, n_val = max(1, int(len(pairs) * test)), max(1, int(len(pairs) * val))
    pick = lambda idx: Pairs([pairs.sources[i] for i in idx],  # noqa: E731
                             [pairs.targets[i] for i in idx])
    return (pick(order[n_test + n_val:]), pick(order[n_test:n_test + n_val]),
            pick(order[:n_test]))


def load(data: str | Path | None = None, *, tokens: str = "chars", seed: int = 0,
         size: float = 1.0, max_vocab: int | None = None,
         target_tokens: str | None = None) -> Seq2SeqData:
    """The user's pairs file, or the built-in dates (3,000 pairs at ``size`` 1), split
    and with vocabularies built on the training part. ``tokens`` splits both sides, unless
    ``target_tokens`` splits the targets otherwise (grapheme-to-phoneme: characters in,
    space-separated phonemes out)."""
    if data is not None:
        pairs = read_pairs(data, tokens, target_tokens)
        name = Path(data).name
    else:
        pairs = dates(max(50, int(3_000 * size)), seed)
        name = "dates"
    train, val, test = split_pairs(pairs, seed)
    source = Vocabulary.build(train.sources, tokens, max_size=max_vocab,
                              specials=("pad", "eos", "unk"), append_eos=True)
    target = Vocabulary.build(train.targets, target_tokens or tokens, max_size=max_vocab)
    parts = {"train": len(train), "val": len(val), "test": len(test)}
    steps = sum(len(source.tokenize(s)) for s in pairs.sources)
    if data is not None:
        ref = DataRef("file", name, path=str(Path(data).resolve()), sha256=file_sha256(data),
                      seed=seed, sequences=len(pairs), steps=steps, splits=parts)
    else:
        ref = DataRef("builtin", name, seed=seed, size=float(size), sequences=len(pairs),
                      steps=steps, splits=parts)
    return Seq2SeqData(train, val, test, source, target, ref)


# ---------------------------------------------------------------- metrics

def edit_distance(a, b) -> int:
    """Levenshtein distance between two token sequences."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        cur = [i] + [0] * len(b)
        for j, y in enumerate(b, start=1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y))
        prev = cur
    return prev[-1]


def scores(hypotheses: list[str], references: list[str], vocab: Vocabulary) -> dict:
    """Exact match (share of outputs equal to the reference, with its standard error) and
    token error rate (edit distance over reference tokens, summed over the set)."""
    if len(hypotheses) != len(references) or not references:
        raise DataError("scores() needs one hypothesis per reference, and at least one")
    exact = np.array([h == r for h, r in zip(hypotheses, references)], np.float64)
    errors = sum(edit_distance(vocab.tokenize(h), vocab.tokenize(r))
                 for h, r in zip(hypotheses, references))
    length = sum(len(vocab.tokenize(r)) for r in references)
    n = len(exact)
    return {"exact_match": float(exact.mean()),
            "exact_match_se": float(exact.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0,
            "token_error_rate": errors / max(1, length), "sequences": n}
