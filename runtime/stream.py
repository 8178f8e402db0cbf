"""A stream: one sequence's state, advanced a step or a chunk at a time.

The state changes only when a call succeeds: a bad frame (wrong shape or dtype, NaN) raises and
leaves the stream exactly where it was.
"""

from __future__ import annotations

import numpy as np

from edgernn.errors import DataError, NonFiniteError


class Stream:
    def __init__(self, model, normalize: bool = True):
        self.model = model
        shape = model.input.shape
        has_time = model.graph == "chunk"
        self.frame_shape = tuple(shape[2 if has_time else 1:])        # per-step frame, e.g. (F,)
        pre = model.contract.preprocessing if normalize else None
        self._mean = None if pre is None else np.asarray(pre.mean, np.float32)
        self._inv_std = None if pre is None else (1.0 / np.asarray(pre.std, np.float32))
        self.reset()

    # ---------------------------------------------------------------- state

    def reset(self) -> None:
        """Back to the initial state, as a fresh stream."""
        self._state = self.model.initial_state(1)
        self.steps = 0

    @property
    def state(self) -> dict[str, np.ndarray]:
        """A copy of the current state, batch axis included (batch of one)."""
        return {k: v.copy() for k, v in self._state.items()}

    # ---------------------------------------------------------------- stepping

    def step(self, frame) -> np.ndarray:
        """Consume one time step; return that step's output."""
        x = self._prepare(frame, steps=None)                          # (1, *frame)
        if self.model.graph == "chunk":
            y, new = self.model.run(x[:, None], self._state)
            y = y[:, 0]
        else:
            y, new = self.model.run(x, self._state)
        self._state = new
        self.steps += 1
        return y[0]

    def feed(self, frames) -> np.ndarray:
        """Consume many time steps in one call; return one output per step, (T, *out)."""
        x = self._prepare(frames, steps=True)                         # (1, T, *frame)
        if x.shape[1] == 0:
            raise DataError("feed() got no frames; pass an array of shape (T, "
                            f"{', '.join(map(str, self.frame_shape))}) with T >= 1")
        if self.model.graph == "chunk":
            y, new = self.model.run(x, self._state)
            self._state = new
            self.steps += x.shape[1]
            return y[0]
        state, outs = self._state, []
        for t in range(x.shape[1]):
            y, state = self.model.run(x[:, t], state)
            outs.append(y[0])
        self._state = state
        self.steps += x.shape[1]
        return np.stack(outs)

    # ---------------------------------------------------------------- input checks

    def _prepare(self, frames, steps) -> np.ndarray:
        a = np.asarray(frames)
        want = ("T",) + self.frame_shape if steps else self.frame_shape
        got_shape = a.shape[1:] if steps else a.shape
        if a.ndim != len(want) or got_shape != self.frame_shape:
            what = "feed() takes frames" if steps else "step() takes one frame"
            raise DataError(f"{what} of shape ({', '.join(map(str, want))}) for this model; got "
                            f"an array of shape {a.shape}")
        dtype = self.model.input_dtype
        if np.issubdtype(dtype, np.integer):
            if a.dtype.kind not in "iu":
                raise DataError(f"this model takes integer token ids, got {a.dtype} values")
        elif a.dtype.kind not in "fiub":
            raise DataError(f"this model takes numeric frames, got dtype {a.dtype}")
        else:
            if not np.isfinite(a).all():
                bad = int(np.size(a) - np.isfinite(a).sum())
                raise NonFiniteError(f"the frame holds {bad} NaN or infinite value(s); the "
                                     f"stream's state was left unchanged. Clean or drop the frame")
            if self._mean is not None:
                a = (a - self._mean) * self._inv_std
        return np.ascontiguousarray(a, dtype=dtype)[None]
