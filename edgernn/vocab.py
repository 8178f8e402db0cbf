"""Text to token ids and back, the same way on every side: a :class:`Vocabulary` travels in the
contract, so training, the Python runtime and the web runtime tokenise identically.

Tokens are characters (``split="chars"``), space-separated words (``split="words"``), or words
and punctuation marks apart (``split="wordpunct"``: runs of letters, digits and ``_``, and each
other non-space character on its own). Special
tokens (padding, start, end, unknown) are ordinary entries of the token list whose ids the
vocabulary names. Pure Python: the device side reads it too.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from edgernn.errors import ContractError, DataError

SPLITS = ("chars", "words", "wordpunct")
_WORDPUNCT = re.compile(r"\w+|[^\w\s]")
SPECIALS = ("pad", "bos", "eos", "unk")
DEFAULT_SPECIALS = {"pad": "<pad>", "bos": "<s>", "eos": "</s>", "unk": "<unk>"}


@dataclass(frozen=True)
class Vocabulary:
    tokens: list[str]                                   # id -> token
    split: str = "chars"                                # chars or words
    specials: dict = field(default_factory=dict)        # pad/bos/eos/unk -> id
    lower: bool = False                                 # lower-case text before splitting
    append_eos: bool = False                            # encode() ends with the eos id
    max_length: int | None = None                       # encode() keeps this many tokens

    def __post_init__(self):
        if self.split not in SPLITS:
            raise ContractError(f"vocabulary split {self.split!r} is unknown; expected chars "
                                f"or words")
        if len(set(self.tokens)) != len(self.tokens):
            raise ContractError("a vocabulary lists each token once")
        for name, i in self.specials.items():
            if name not in SPECIALS or not isinstance(i, int) or not 0 <= i < len(self.tokens):
                raise ContractError(f"vocabulary special {name}={i!r} is not a token id of "
                                    f"this vocabulary (0..{len(self.tokens) - 1})")
        if self.append_eos and "eos" not in self.specials:
            raise ContractError("append_eos needs an eos token")
        if self.max_length is not None and (not isinstance(self.max_length, int)
                                            or self.max_length < 1):
            raise ContractError("vocabulary max_length must be a positive int or null")

    @classmethod
    def build(cls, texts, split: str = "chars", lower: bool = False, max_size: int | None = None,
              specials=("pad", "bos", "eos", "unk"), append_eos: bool = False,
              max_length: int | None = None) -> "Vocabulary":
        """The vocabulary of ``texts``: specials first, then tokens by falling frequency (ties
        in first-seen order), at most ``max_size`` in all."""
        counts = Counter()
        for text in texts:
            counts.update(_split(text.lower() if lower else text, split))
        head = [DEFAULT_SPECIALS[s] for s in specials]
        rest = [t for t, _ in counts.most_common() if t not in head]
        if max_size is not None:
            rest = rest[:max(0, max_size - len(head))]
        return cls(head + rest, split, {s: i for i, s in enumerate(specials)}, lower,
                   append_eos, max_length)

    def __len__(self) -> int:
        return len(self.tokens)

    def id(self, name: str) -> int | None:
        return self.specials.get(name)

    def tokenize(self, text: str) -> list[str]:
        if not isinstance(text, str):
            raise DataError(f"text must be a string, got {type(text).__name__}")
        return _split(text.lower() if self.lower else text, self.split)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (its first ``max_length`` tokens); a token not in the
        vocabulary is the unknown id (an error when the vocabulary has none)."""
        index = self._index
        unk = self.specials.get("unk")
        ids = []
        for t in self.tokenize(text)[:self.max_length]:
            i = index.get(t, unk)
            if i is None:
                raise DataError(f"{t!r} is not in this model's vocabulary (and it has no "
                                f"unknown token)")
            ids.append(i)
        if self.append_eos:
            ids.append(self.specials["eos"])
        return ids

    def decode(self, ids) -> str:
        """Text of ``ids``, up to the end token, special tokens left out."""
        skip = set(self.specials.values())
        eos = self.specials.get("eos")
        out = []
        for i in ids:
            i = int(i)
            if i == eos:
                break
            if i not in skip and 0 <= i < len(self.tokens):
                out.append(self.tokens[i])
        return ("" if self.split == "chars" else " ").join(out)       # wordpunct: spaced

    @property
    def _index(self) -> dict:
        cached = self.__dict__.get("_index_cache")
        if cached is None:
            cached = {t: i for i, t in enumerate(self.tokens)}
            object.__setattr__(self, "_index_cache", cached)
        return cached

    def to_dict(self) -> dict:
        return {"tokens": list(self.tokens), "split": self.split, "specials": dict(self.specials),
                "lower": self.lower, "append_eos": self.append_eos,
                "max_length": self.max_length}

    @classmethod
    def from_dict(cls, d, where: str = "vocabulary") -> "Vocabulary":
        if not isinstance(d, dict) or not isinstance(d.get("tokens"), list) or not all(
                isinstance(t, str) for t in d["tokens"]):
            raise ContractError(f"contract field {where} needs a list of string tokens")
        specials = d.get("specials", {})
        if not isinstance(specials, dict):
            raise ContractError(f"contract field {where}.specials must be an object")
        return cls(list(d["tokens"]), d.get("split", "chars"), dict(specials),
                   bool(d.get("lower", False)), bool(d.get("append_eos", False)),
                   d.get("max_length"))


def tokens_of(text: str, split: str) -> list[str]:
    """``text`` split into tokens the way a vocabulary of that ``split`` splits it (before
    lower-casing, which does not change the count)."""
    return _split(text, split)


def _split(text: str, split: str) -> list[str]:
    if split == "chars":
        return list(text)
    return text.split() if split == "words" else _WORDPUNCT.findall(text)


ROLES = ("encoder", "decoder")
ATTENTIONS = ("luong", "bahdanau", "none")


@dataclass(frozen=True)
class Seq2SeqSpec:
    """The sequence-to-sequence part of a contract. An encoder-decoder model is two ONNX files,
    each carrying the whole spec and naming the other (``partner``: its file name, next to this
    one; the two carry the same ``provenance.weights_sha256``, which the runtime checks): the
    encoder (``role="encoder"``, a sequence graph: source ids -> memory, keys
    and the decoder's first state) and the step decoder (``role="decoder"``: previous token,
    state, memory, keys, mask -> log-probabilities, next state, attention). ``load()`` of
    either file gives the pair."""

    role: str
    partner: str
    source: Vocabulary
    target: Vocabulary
    max_len: int
    attention: str = "luong"

    def __post_init__(self):
        if self.role not in ROLES:
            raise ContractError(f"seq2seq role {self.role!r} is unknown; expected encoder or "
                                f"decoder")
        if self.attention not in ATTENTIONS:
            raise ContractError(f"seq2seq attention {self.attention!r} is unknown")
        if not isinstance(self.max_len, int) or self.max_len < 1:
            raise ContractError("seq2seq max_len must be a positive int")
        for side in ("bos", "eos"):
            if side not in self.target.specials:
                raise ContractError(f"the target vocabulary needs a {side} token")

    @classmethod
    def from_dict(cls, d: dict, where: str = "seq2seq") -> "Seq2SeqSpec":
        if not isinstance(d, dict):
            raise ContractError(f"contract field {where} must be an object")
        try:
            return cls(role=d["role"], partner=str(d["partner"]),
                       source=Vocabulary.from_dict(d["source"], f"{where}.source"),
                       target=Vocabulary.from_dict(d["target"], f"{where}.target"),
                       max_len=d["max_len"], attention=d.get("attention", "luong"))
        except KeyError as exc:
            raise ContractError(f"contract field {where}.{exc.args[0]} is missing; re-export "
                                f"the model") from None
