"""A character language model on text the package generates: sensor logs and short sentences.

The text comes from a small seeded grammar, so it is the same on every machine, needs no
download, and has enough structure (words, numbers, punctuation) for a small model to learn.
The metric is bits per character on held-out text; uniform guessing costs log2(V) ≈ 5.3.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgernn.config import ModelConfig, TrainConfig
from edgernn.errors import DataError
from edgernn.tasks.base import Split, Task, TaskData, builtin_ref, file_ref, read_npz

ALPHABET = "\n .,:-%0123456789abcdefghijklmnopqrstuvwxyz"
HELP = ("Character LM data is a UTF-8 .txt file, or an .npz with a 'text' array holding one "
        "string; at least 2,000 characters.")

_WORDS = {
    "device": ["pump", "fan", "valve", "motor", "sensor", "gate", "heater", "door", "meter"],
    "place": ["hall", "roof", "yard", "lab", "barn", "kitchen", "cellar", "garage"],
    "state": ["running", "idle", "open", "closed", "warming up", "cooling down", "offline"],
    "adj": ["quiet", "small", "old", "busy", "cold", "bright", "steady", "noisy"],
    "noun": ["dog", "river", "train", "bird", "storm", "child", "market", "engine"],
    "verb": ["watches", "follows", "crosses", "hears", "wakes", "passes", "meets"],
}


def generate_text(n_chars: int, seed: int) -> str:
    rng = np.random.default_rng(seed)

    def pick(kind):
        words = _WORDS[kind]
        return words[rng.integers(len(words))]

    lines = []
    total = 0
    while total < n_chars:
        kind = rng.integers(4)
        hh, mm = rng.integers(24), rng.integers(60)
        if kind == 0:
            line = f"{hh:02d}:{mm:02d} {pick('device')} {rng.integers(1, 20)} in the {pick('place')} is {pick('state')}."
        elif kind == 1:
            line = f"{hh:02d}:{mm:02d} {pick('device')} {rng.integers(1, 20)} reads {rng.uniform(-5, 40):.1f} degrees."
        elif kind == 2:
            line = f"alert: {pick('device')} battery at {rng.integers(1, 100)}%, check the {pick('place')}."
        else:
            line = f"the {pick('adj')} {pick('noun')} {pick('verb')} the {pick('adj')} {pick('noun')}."
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines)[:n_chars]


def _streams(ids: np.ndarray, n_streams: int) -> Split:
    """Text ids into ``n_streams`` parallel streams: x = ids[t], y = ids[t+1]."""
    n_streams = max(1, min(n_streams, (len(ids) - 1) // 16))
    length = (len(ids) - 1) // n_streams
    x = ids[: n_streams * length].reshape(n_streams, length)
    y = ids[1: n_streams * length + 1].reshape(n_streams, length)
    return Split(x=x.astype(np.int64), y=y.astype(np.int64))


class CharLMTask(Task):
    name = "charlm"
    summary = "character language model on generated sensor logs and sentences (autocomplete)"
    metric = "bpc"
    higher_is_better = False
    threshold = 1.5
    metric_tolerance = 0.05       # bits per character
    model = ModelConfig(cell="gru", input_size=len(ALPHABET), hidden_size=128, num_layers=1,
                        output_size=len(ALPHABET), head="lm", embedding_dim=32)
    training = TrainConfig(epochs=10, batch_size=32, lr=5e-3, bptt=64, patience=4)
    data_help = HELP

    dataset = "logtext"

    def from_text(self, text: str, vocabulary: str) -> TaskData:
        index = {ch: i for i, ch in enumerate(vocabulary)}
        ids = np.fromiter((index[ch] for ch in text), dtype=np.int64, count=len(text))
        a, b = int(len(ids) * 0.9), int(len(ids) * 0.95)
        return TaskData(train=_streams(ids[:a], 32), val=_streams(ids[a:b], 4),
                        test=_streams(ids[b:], 4), vocabulary=vocabulary, stream=ids)

    def generate(self, seed: int = 0, size: float = 1.0) -> TaskData:
        data = self.from_text(generate_text(max(4000, int(200_000 * size)), seed), ALPHABET)
        data.ref = builtin_ref(self.dataset, seed, size, data, 0)
        return data

    def stream(self, steps: int, seed: int = 0) -> np.ndarray:
        index = {ch: i for i, ch in enumerate(ALPHABET)}
        return np.array([index[ch] for ch in generate_text(steps, seed)], dtype=np.int64)

    def load(self, path, vocabulary: str | None = None) -> TaskData:
        """A text file as training data; with ``vocabulary`` (a trained model's), the text is
        encoded with it and a character outside it is refused."""
        path = Path(path)
        if path.suffix == ".npz":
            text = read_npz(path, ("text",), HELP)["text"]
            if text.dtype.kind != "U" or text.size != 1:
                raise DataError(f"{path}: 'text' must hold one string, got dtype {text.dtype} "
                                f"and {text.size} item(s). {HELP}")
            text = str(text.reshape(-1)[0])
        else:
            try:
                text = path.read_text(encoding="utf-8-sig")
            except UnicodeDecodeError as exc:
                raise DataError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                                f"save it as UTF-8. {HELP}") from None
            except OSError as exc:
                raise DataError(f"cannot read {path}: {exc.strerror}. {HELP}") from None
        if len(text) < 2000:
            raise DataError(f"{path} holds {len(text)} characters; at least 2,000 are needed")
        if vocabulary is not None:
            unknown = sorted(set(text) - set(vocabulary))
            if unknown:
                raise DataError(f"{path} holds character(s) {''.join(unknown)[:20]!r} that the "
                                f"model's vocabulary does not have")
        data = self.from_text(text, vocabulary or "".join(sorted(set(text))))
        data.ref = file_ref(path, data, 0)
        return data

    load_with_vocabulary = load

    def fit_config(self, config: ModelConfig, data: TaskData) -> ModelConfig:
        v = len(data.vocabulary)
        return config.replace(input_size=v, output_size=v)

    def loss(self, outputs, y, mask=None):
        import torch.nn.functional as F

        return F.cross_entropy(outputs.reshape(-1, outputs.shape[-1]), y.reshape(-1))

    def item_scores(self, outputs, split, post=None) -> np.ndarray:
        z = outputs - outputs.max(-1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(-1, keepdims=True))        # (B, T, V)
        nll = -np.take_along_axis(logp, split.y[..., None], -1)[..., 0]
        return (nll / np.log(2.0)).reshape(-1)                      # bits, per character

    def baseline(self, split) -> dict[str, float]:
        counts = np.bincount(split.y.reshape(-1)).astype(np.float64)
        p = counts[counts > 0] / counts.sum()
        return {"unigram_bpc": float(-(p * np.log2(p)).sum())}
