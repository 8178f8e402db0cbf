"""Many independent streams stepped together in one batched call.

Each stream's state is one row (on each state's batch axis) of the pool's state arrays. A call
``step({id: frame, ...})`` gathers the rows of the streams that have a frame, runs the model
once on that batch, and scatters the new state back: streams join (``open``) and leave
(``close``) at any time, and each one's results equal running it alone. A lock makes the pool
safe to use from several threads.

The common server tick, every open stream stepping with its rows in order, skips the gather and
the scatter: the model reads the rows where they are and writes the next state into a second
set of arrays (bound with IOBinding), and the two sets swap.
"""

from __future__ import annotations

import itertools
import threading
import warnings

import numpy as np

from edgernn.errors import DataError, StreamingError
from edgernn.runtime import snapshot as _snapshot
from edgernn.runtime.stream import FramePrep


def check_poolable(model) -> None:
    """Raise StreamingError unless ``model`` keeps streams as rows of an open batch axis
    (what a pool, and a server batching sequences, needs)."""
    for s in model.states:
        if "batch" not in s.layout:
            raise StreamingError(f"state {s.name} has no batch axis ({s.shape}); this model "
                                 f"runs one stream per call, so it cannot be pooled. Step "
                                 f"its streams one by one (model.stream())")
    for t in (model.input, model.output):
        if not model.batched or not t.shape or not isinstance(t.shape[0], str):
            raise StreamingError(f"{t.name} {t.shape} has no batch axis of open size; this "
                                 f"model runs one stream per call, so it cannot be pooled. "
                                 f"Step its streams one by one (model.stream())")


class Pool:
    def __init__(self, model, normalize: bool = True, capacity: int = 16):
        check_poolable(model)
        self.model = model
        self._prep = FramePrep(model, normalize)
        self._lock = threading.Lock()
        self._next_id = itertools.count()
        self._rows: dict[int, int] = {}
        self._steps = np.zeros(capacity, np.int64)                   # steps taken, per row
        self._free: list[int] = list(range(capacity - 1, -1, -1))   # pop() takes row 0 first
        self._state = model.initial_state(capacity)
        self._spare = model.initial_state(capacity)              # the next state, full ticks
        self._bound: dict = {}                                   # (k, parity) -> IOBinding
        self._parity = 0                                         # which set holds the state
        self._high = 0                                           # 1 + the highest open row
        self._chunk = model.graph == "chunk"
        self._axes = {s.name: s.batch_axis for s in model.states}
        # batch first in memory: nothing but axes of size one before it
        self._leading = {s.name: all(d == 1 for d in s.shape[:s.batch_axis])
                         for s in model.states}
        self._range = np.arange(capacity)
        # Rows that interact (per-batch activation scales) are stepped one call per stream.
        self.lone_calls = _needs_probe(model) and not _rows_independent(model, self._prep)
        tail = model.output.shape[model.y_lead:]
        self._out_shape = tuple(d if isinstance(d, int) else 0 for d in tail)
        self._out_fixed = all(isinstance(d, int) for d in tail)

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def ids(self) -> list[int]:
        return list(self._rows)

    def _axis(self, name: str) -> int:
        return self._axes[name]

    @property
    def _arange(self) -> np.ndarray:
        if len(self._range) < len(self._steps):
            self._range = np.arange(len(self._steps))
        return self._range

    def _grow(self) -> None:
        capacity = self._capacity()
        extra = self.model.initial_state(capacity)
        self._state = {n: np.concatenate([a, extra[n]], axis=self._axis(n))
                       for n, a in self._state.items()}
        self._spare = {n: a.copy() for n, a in self._state.items()}
        self._bound.clear()                              # the bound views were of the old arrays
        self._steps = np.concatenate([self._steps, np.zeros(capacity, np.int64)])
        self._free.extend(range(capacity * 2 - 1, capacity - 1, -1))

    def _capacity(self) -> int:
        s = self.model.states[0]
        return self._state[s.name].shape[s.batch_axis]

    def _row(self, stream_id: int) -> int:
        try:
            return self._rows[stream_id]
        except KeyError:
            raise DataError(f"no open stream with id {stream_id!r} in this pool; open() one "
                            f"first (open ids: {sorted(self._rows)[:10]})") from None

    def _write_rows(self, rows, values: dict[str, np.ndarray]) -> None:
        for n, a in self._state.items():
            index = [slice(None)] * a.ndim
            index[self._axis(n)] = rows
            a[tuple(index)] = values[n]

    # ---------------------------------------------------------------- membership

    def open(self) -> int:
        """A new stream with fresh state; returns its id."""
        with self._lock:
            if not self._free:
                self._grow()
            row = self._free.pop()
            self._write_rows([row], self.model.initial_state(1))
            stream_id = next(self._next_id)
            self._rows[stream_id] = row
            self._high = max(self._high, row + 1)
            self._steps[row] = 0
            return stream_id

    def close(self, stream_id: int) -> None:
        with self._lock:
            row = self._row(stream_id)
            self._free.append(row)
            del self._rows[stream_id]
            if row + 1 == self._high:
                self._high = max(self._rows.values(), default=-1) + 1

    def reset(self, stream_id: int) -> None:
        with self._lock:
            row = self._row(stream_id)
            self._write_rows([row], self.model.initial_state(1))
            self._steps[row] = 0

    # ---------------------------------------------------------------- stepping

    def step(self, frames: dict) -> dict:
        """One time step for each stream in ``frames`` ({id: frame}); returns {id: output}."""
        if not frames:
            return {}
        try:
            stacked = np.array(list(frames.values()))
        except ValueError:
            stacked = None
        if stacked is None or stacked.dtype == object:
            raise DataError(f"the frames have different shapes; each takes shape "
                            f"{self._prep.frame_shape}")
        return dict(zip(frames, self.step_many(list(frames), stacked)))

    def step_many(self, ids, frames) -> np.ndarray:
        """The array form of :meth:`step` for server loops: ``frames[j]`` is stream ``ids[j]``'s
        frame, (k, *frame); returns the outputs in the same order, (k, *out)."""
        if len(ids) == 0:
            return np.zeros((0, *self._out_shape), self.model.output_dtype)
        with self._lock:
            try:
                rows = np.fromiter(map(self._rows.__getitem__, ids), np.intp, len(ids))
            except KeyError as exc:
                self._row(exc.args[0])                               # raises a clear error
            except TypeError:
                raise DataError(f"stream ids are the ints open() returned, got {ids!r:.60}") \
                    from None
            x = self._prep(frames, many=True)                       # (k, *frame)
            k = len(rows)
            if len(x) != k:
                raise DataError(f"{k} stream ids but {len(x)} frames")
            if len(set(ids)) != k:
                raise DataError("a stream id appears twice in one call; one frame per stream "
                                "per step")
            if self.lone_calls:
                return self._one_by_one(x, rows)
            # Streams opened in order and stepped together occupy rows 0..k-1: use views.
            dense = rows[-1] == k - 1 and np.array_equal(rows, self._arange[:k])
            if dense and k >= self._high and self._swappable:
                y = self._tick(x[:, None] if self._chunk else x, k)
                self._steps[:k] += 1
                return y[:, 0] if self._chunk else y
            states = {n: self._gather(n, a, rows, k, dense) for n, a in self._state.items()}
            y, new = self.model.run(x[:, None] if self._chunk else x, states)
            for n, a in self._state.items():
                self._scatter(n, a, rows, k, dense, new[n])
            if dense:
                self._steps[:k] += 1
            else:
                self._steps[rows] += 1
            return y[:, 0] if self._chunk else y

    def _one_by_one(self, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """One call per stream: for models whose batch rows interact. All or nothing: the
        state changes only once every stream's call has succeeded."""
        outs, news = [], []
        for j, row in enumerate(rows):
            states = {n: np.take(a, [row], axis=self._axes[n]) for n, a in self._state.items()}
            y, new = self.model.run(x[j:j + 1, None] if self._chunk else x[j:j + 1], states)
            outs.append(y[0, 0] if self._chunk else y[0])
            news.append(new)
        for row, new in zip(rows, news):
            self._write_rows([row], new)
        self._steps[rows] += 1
        return np.stack(outs)

    @property
    def _swappable(self) -> bool:
        return (all(self._leading.values()) and self._out_fixed and not self._chunk
                and bool(self.model.states))

    def _view(self, name: str, a: np.ndarray, k: int) -> np.ndarray:
        return a[(slice(None),) * self._axes[name] + (slice(0, k),)]

    def _tick(self, x: np.ndarray, k: int) -> np.ndarray:
        """Every open stream steps, rows 0..k-1 in order: read the state in place, write the
        next into the spare arrays, swap. A failed call leaves both as they were. The binding
        for (k, which array set holds the state) is made once and kept until the pool grows."""
        key = (k, self._parity)
        bound = self._bound.get(key)
        if bound is None:
            if len(self._bound) >= 32:                    # many sizes: keep the cache small
                self._bound.clear()
            bound = self._bound[key] = self._bind(k)
        binding, xb, yb = bound
        xb[...] = x
        self.model.session.run_with_iobinding(binding)
        self._state, self._spare = self._spare, self._state
        self._parity ^= 1
        return yb.copy()

    def _bind(self, k: int):
        import onnxruntime as ort

        model = self.model
        binding = model.session.io_binding()
        xb = np.zeros((k, *self._prep.frame_shape), self._prep.dtype)
        binding.bind_ortvalue_input(model.input.name, ort.OrtValue.ortvalue_from_numpy(xb))
        for s in model.states:
            binding.bind_ortvalue_input(s.input, ort.OrtValue.ortvalue_from_numpy(
                self._view(s.name, self._state[s.name], k)))
            binding.bind_ortvalue_output(s.output, ort.OrtValue.ortvalue_from_numpy(
                self._view(s.name, self._spare[s.name], k)))
        for name, value in model.constant_values.items():
            binding.bind_ortvalue_input(name, value)
        yb = np.empty((k, *self._out_shape), model.output_dtype)
        binding.bind_ortvalue_output(model.output.name, ort.OrtValue.ortvalue_from_numpy(yb))
        return binding, xb, yb

    def _gather(self, name, a, rows, k, dense):
        axis = self._axes[name]
        if dense and self._leading[name]:
            return a[(slice(None),) * axis + (slice(0, k),)]      # a contiguous view
        return np.take(a, rows, axis=axis)

    def _scatter(self, name, a, rows, k, dense, value):
        axis = self._axes[name]
        if dense and self._leading[name]:
            a[(slice(None),) * axis + (slice(0, k),)] = value
        else:
            index = [slice(None)] * a.ndim
            index[axis] = rows
            a[tuple(index)] = value

    # ---------------------------------------------------------------- snapshots

    def snapshot(self, stream_id: int) -> bytes:
        with self._lock:
            row = self._row(stream_id)
            state = {n: np.take(a, [row], axis=self._axis(n)) for n, a in self._state.items()}
            return _snapshot.dumps(self.model.fingerprint, state, int(self._steps[row]))

    def restore(self, stream_id: int, data: bytes) -> None:
        states, steps = _snapshot.loads(data, self.model.fingerprint)
        _snapshot.check_fits(states, self.model.initial_state(1))
        with self._lock:
            row = self._row(stream_id)
            self._write_rows([row], states)
            self._steps[row] = steps


def _needs_probe(model) -> bool:
    """Files edgernn did not write, int8 files from before its row-independent form, and any
    graph holding per-tensor dynamic quantization whatever its contract says (a file quantized
    by ONNX Runtime's own quantize_dynamic keeps the fp32 file's contract)."""
    q = model.contract.quantization
    return bool(model.inferred) or model.per_tensor_dynamic or (
        q is not None and q.mode in ("dynamic", "static") and "activations" not in q.options)


def _rows_independent(model, prep, tolerance: float = 1e-5) -> bool:
    """Step a stream alone and beside a loud neighbour: a pooled stream must get what it gets
    alone, whatever its neighbours send. False (with a warning saying what the pool does
    instead) for a model whose rows interact."""
    rng = np.random.default_rng(0)
    shape = prep.frame_shape
    if prep.integer:
        frames = rng.integers(0, 2, (3, 2, *shape))
    else:
        frames = rng.standard_normal((3, 2, *shape)).astype(prep.dtype)
        frames[:, 1] *= 20.0                                  # the loud neighbour
    lone, pair = model.initial_state(1), model.initial_state(2)
    chunk = model.graph == "chunk"
    worst = 0.0
    for t in range(len(frames)):
        a = frames[t, :1]
        y1, lone = model.run(a[:, None] if chunk else a, lone)
        y2, pair = model.run(frames[t][:, None] if chunk else frames[t], pair)
        worst = max(worst, float(np.abs(y1[0] - y2[0]).max()))
    if worst <= tolerance:
        return True
    warnings.warn(f"{model.source}: this model's batch rows interact (a stream stepped beside "
                  f"another gets outputs {worst:.3g} away from the same stream alone: int8 "
                  f"activations scaled per batch), so the pool steps each stream in a call of "
                  f"its own: right answers, no batching speed-up. Re-quantize the fp32 file "
                  f"with edgernn (row-independent int8) to batch it", RowsInteractWarning,
                  stacklevel=4)
    return False


class RowsInteractWarning(UserWarning):
    """A pool's model mixes its batch rows; the pool runs one call per stream instead."""
