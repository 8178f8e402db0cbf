"""Calibration feeds for static quantization: (frame, state) pairs from across the data.

A step graph's inputs are a frame *and* the state the stream has reached, so the activations to
calibrate are those a device sees at every point of a stream, late ones included. The feeds are
drawn uniformly from every real step of every training sequence (a long series is covered from
end to end), and the states are those the fp32 model reaches when it streams the sequences
from their start.
"""

from __future__ import annotations

import numpy as np

from edgernn.tasks.base import Split


def positions(split: Split, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` (sequence, step) pairs drawn without replacement from the real steps."""
    n, t = split.x.shape[:2]
    real = split.mask()
    flat = np.flatnonzero(real) if real is not None else np.arange(n * t)
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(flat, size=min(count, flat.size), replace=False))
    return chosen // t, chosen % t


class Feeds:
    """What ONNX Runtime's static quantizer reads: one feed dict per calibration point."""

    def __init__(self, model, x: np.ndarray, split: Split, count: int, seed: int = 0):
        seqs, steps = positions(split, count, seed)
        wanted = np.unique(seqs)                         # stream only the sequences drawn from
        row = {s: i for i, s in enumerate(wanted)}
        last = int(steps.max()) + 1
        by_step: dict[int, list[int]] = {}
        for s, t in zip(seqs, steps):
            by_step.setdefault(int(t), []).append(row[int(s)])
        frames = x[wanted]
        states = model.initial_state(len(wanted))
        self.feeds = []
        for t in range(last):
            xt = np.ascontiguousarray(frames[:, t])
            if t in by_step:
                rows = by_step[t]
                self.feeds.append({model.input.name: xt[rows],
                                   **{s.input: np.take(states[s.name], rows, axis=s.batch_axis)
                                      for s in model.states}})
            _, states = model.run(xt, states)
        self.points = int(len(seqs))
        self.sequences = int(len(wanted))
        self._it = iter(self.feeds)

    def get_next(self):
        return next(self._it, None)

    def rewind(self):
        self._it = iter(self.feeds)
