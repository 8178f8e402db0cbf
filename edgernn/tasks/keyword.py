"""Synthetic keyword spotting: remember which short pattern appeared early in a clip.

Each clip is ``frames`` frames of ``features`` noisy log-mel-like features. One of ``classes``
keyword patterns (``keyword_len`` frames each) is buried at a random position in the first half;
the label is read at the last frame, so the network must carry what it heard across 20+ steps.
"""

from __future__ import annotations

import numpy as np

from edgernn.config import ModelConfig, TrainConfig
from edgernn.tasks.base import Split, Task, TaskData, check_array, check_lengths, read_npz

HELP = ("A keyword .npz holds x_train (N, T, F) float frames, y_train (N,) int labels, x_val, "
        "y_val, optionally x_test, y_test and labels (C,) strings.")


class KeywordTask(Task):
    name = "keyword"
    summary = "keyword spotting on synthetic 40-feature frames; the keyword must be remembered"
    metric = "accuracy"
    higher_is_better = True
    threshold = 0.90
    metric_tolerance = 0.01       # one point of accuracy
    reset_every = 24              # a spotter resets per clip (per utterance); = frames
    frames, features, classes, keyword_len = 24, 40, 10, 5
    model = ModelConfig(cell="lstm", input_size=40, hidden_size=128, num_layers=2,
                        output_size=10, head="classify_last")
    training = TrainConfig(epochs=12, batch_size=64, lr=3e-3, patience=5, time_budget=45)
    data_help = HELP

    def templates(self) -> np.ndarray:
        """The keyword patterns, (C, K, F): fixed, so every generated split shares them."""
        rng = np.random.default_rng(20261124)
        raw = rng.normal(0.0, 1.0, (self.classes, self.keyword_len, self.features))
        smooth = (raw + np.roll(raw, 1, axis=2) + np.roll(raw, -1, axis=2)) / 3.0  # formant-like
        return (smooth / smooth.std() * 1.2).astype(np.float32)

    def _clips(self, rng, n: int) -> Split:
        t, f, k = self.frames, self.features, self.keyword_len
        tilt = np.linspace(1.0, -1.0, f, dtype=np.float32)           # spectral tilt of the noise
        level = rng.normal(0.0, 0.5, (n, 1, 1)).astype(np.float32)   # per-clip loudness
        x = rng.normal(0.0, 1.0, (n, t, f)).astype(np.float32) + tilt + level
        y = rng.integers(0, self.classes, n)
        pos = rng.integers(0, t // 2 - k, n)
        patterns = self.templates()
        for i in range(n):
            x[i, pos[i]:pos[i] + k] += patterns[y[i]]
        return Split(x=x, y=y.astype(np.int64))

    def generate(self, seed: int = 0, size: float = 1.0) -> TaskData:
        rng = np.random.default_rng(seed)
        n = max(30, int(6000 * size))
        return TaskData(train=self._clips(rng, n), val=self._clips(rng, max(10, n // 8)),
                        test=self._clips(rng, max(10, n // 8)),
                        labels=[f"kw{i}" for i in range(self.classes)])

    def stream(self, steps: int, seed: int = 0) -> np.ndarray:
        clips = self._clips(np.random.default_rng(seed), -(-steps // self.frames)).x
        return clips.reshape(-1, self.features)[:steps]                 # clips back to back

    def load(self, path) -> TaskData:
        arrays = read_npz(path, ("x_train", "y_train", "x_val", "y_val"), HELP)
        splits = {}
        for part in ("train", "val", "test"):
            if f"x_{part}" not in arrays:
                continue
            x = check_array(arrays[f"x_{part}"], f"x_{part}", 3, "f", path, HELP)
            y = check_array(arrays[f"y_{part}"], f"y_{part}", 1, "iu", path, HELP)
            check_lengths(path, part, x, y)
            splits[part] = Split(x.astype(np.float32), y.astype(np.int64))
        splits.setdefault("test", splits["val"])
        labels = [str(v) for v in arrays["labels"]] if "labels" in arrays else None
        return TaskData(**splits, labels=labels, source=str(path))

    def fit_config(self, config: ModelConfig, data: TaskData) -> ModelConfig:
        classes = int(max(data.train.y.max(), data.val.y.max())) + 1
        if data.labels:
            classes = max(classes, len(data.labels))
        return config.replace(input_size=data.train.x.shape[-1], output_size=classes)

    def loss(self, outputs, y):
        import torch.nn.functional as F

        logits = outputs[:, -1] if outputs.dim() == 3 else outputs    # (B, C)
        return F.cross_entropy(logits, y)

    def score(self, outputs, split, post=None) -> float:
        logits = outputs[:, -1] if outputs.ndim == 3 else outputs
        return float((logits.argmax(-1) == split.y).mean())

    def baseline(self, split) -> dict[str, float]:
        counts = np.bincount(split.y)
        return {"majority_accuracy": float(counts.max() / counts.sum())}

