"""Turning logits into characters: temperature and top-k sampling (numpy only)."""

from __future__ import annotations

import numpy as np

from edgernn.errors import ConfigError


def sample_logits(logits: np.ndarray, *, temperature: float = 1.0, top_k: int | None = None,
                  rng: np.random.Generator | None = None) -> int:
    """Draw one index from ``logits`` (V,). ``temperature`` 0 means greedy (argmax)."""
    if temperature < 0:
        raise ConfigError(f"temperature must be >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ConfigError(f"top_k must be >= 1, got {top_k}")
    logits = np.asarray(logits, dtype=np.float64).reshape(-1)
    if temperature == 0:
        return int(np.argmax(logits))
    scaled = logits / temperature
    if top_k is not None and top_k < scaled.size:
        cutoff = np.partition(scaled, -top_k)[-top_k]
        scaled = np.where(scaled >= cutoff, scaled, -np.inf)
    p = np.exp(scaled - scaled.max())
    p /= p.sum()
    rng = rng or np.random.default_rng()
    return int(rng.choice(p.size, p=p))


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)
