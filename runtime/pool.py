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
from edgernn.runtime import state_forms
from edgernn.runtime.engine import Engine
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
        self._engine = Engine(model, capacity, device="cpu")     # the rows, in host memory
        self._high = 0                                           # 1 + the highest open row
        self._chunk = model.graph == "chunk"
        self._range = np.arange(capacity)
        # Rows that interact (per-batch activation scales) are stepped one call per stream.
        self.lone_calls = lone_calls(model, self._prep)
        tail = model.output.shape[model.y_lead:]
        self._out_shape = tuple(d if isinstance(d, int) else 0 for d in tail)

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def ids(self) -> list[int]:
        return list(self._rows)

    def _grow(self) -> None:
        capacity = self._engine.rows
        self._engine.grow(capacity * 2)
        self._steps = np.concatenate([self._steps, np.zeros(capacity, np.int64)])
        self._free.extend(range(capacity * 2 - 1, capacity - 1, -1))
        self._range = np.arange(capacity * 2)

    def _row(self, stream_id: int) -> int:
        try:
            return self._rows[stream_id]
        except KeyError:
            raise DataError(f"no open stream with id {stream_id!r} in this pool; open() one "
                            f"first (open ids: {sorted(self._rows)[:10]})") from None

    def _rows_of(self, ids) -> np.ndarray:
        try:
            return np.fromiter(map(self._rows.__getitem__, ids), np.intp, len(ids))
        except KeyError as exc:
            self._row(exc.args[0])                                   # raises a clear error
        except TypeError:
            raise DataError(f"stream ids are the ints open() returned, got {ids!r:.60}") \
                from None

    # ---------------------------------------------------------------- membership

    def open(self) -> int:
        """A new stream with fresh state; returns its id."""
        with self._lock:
            if not self._free:
                self._grow()
            row = self._free.pop()
            self._engine.set_state(self.model.initial_state(1), [row])
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
            self._engine.set_state(self.model.initial_state(1), [row])
            self._steps[row] = 0

    # ---------------------------------------------------------------- rows

    def gather(self, ids) -> dict[str, np.ndarray]:
        """A copy of the state of streams ``ids``, in that order, one row each on every
        state's batch axis."""
        with self._lock:
            return self._engine.take(self._rows_of(list(ids)))

    def reorder(self, ids, parents) -> None:
        """Stream ``ids[j]`` continues from the state (and step count) stream ``parents[j]``
        had: parents may repeat and may be among ``ids``, all read before any is written. This
        is beam search's step: each surviving hypothesis takes its parent's decoder state."""
        ids, parents = list(ids), list(parents)
        if len(ids) != len(parents):
            raise DataError(f"reorder() takes one parent per stream: {len(ids)} ids, "
                            f"{len(parents)} parents")
        with self._lock:
            rows, sources = self._rows_of(ids), self._rows_of(parents)
            if len(set(ids)) != len(ids):
                raise DataError("a stream id appears twice in reorder(); each stream takes one "
                                "parent")
            self._engine.reorder(rows, sources)
            self._steps[rows] = self._steps[sources]

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
            rows = self._rows_of(ids)
            x = self._prep(frames, many=True)                       # (k, *frame)
            k = len(rows)
            if len(x) != k:
                raise DataError(f"{k} stream ids but {len(x)} frames")
            if len(set(ids)) != k:
                raise DataError("a stream id appears twice in one call; one frame per stream "
                                "per step")
            if self.lone_calls:
                return self._one_by_one(x, rows)
            engine = self._engine
            # Streams opened in order and stepped together occupy rows 0..k-1: the model reads
            # them where they are and writes the next state into the spare set (no gather).
            dense = rows[-1] == k - 1 and np.array_equal(rows, self._range[:k])
            bound = engine.bound(k) if dense and k >= self._high and not self._chunk else None
            if bound is not None:
                bound.x[...] = x
                y = engine.call(bound).copy()
                self._steps[:k] += 1
                return y
            y = engine.run(x[:, None] if self._chunk else x, rows)
            self._steps[rows] += 1
            return y[:, 0] if self._chunk else y

    def _one_by_one(self, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """One call per stream: for models whose batch rows interact. All or nothing: the
        state changes only once every stream's call has succeeded."""
        outs, news = [], []
        for j, row in enumerate(rows):
            y, new = self.model.run(x[j:j + 1, None] if self._chunk else x[j:j + 1],
                                    self._engine.take([row]))
            outs.append(y[0, 0] if self._chunk else y[0])
            news.append(new)
        for row, new in zip(rows, news):
            self._engine.set_state(new, [row])
        self._steps[rows] += 1
        return np.stack(outs)

    # ---------------------------------------------------------------- snapshots

    def snapshot(self, stream_id: int) -> bytes:
        with self._lock:
            row = self._row(stream_id)
            state = self._engine.take([row])
            return _snapshot.dumps(self.model.fingerprint, state, int(self._steps[row]))

    def restore(self, stream_id: int, data: bytes) -> None:
        states, steps = state_forms.read(self.model, data)
        _snapshot.check_fits(states, self.model.initial_state(1))
        with self._lock:
            row = self._row(stream_id)
            self._engine.set_state(states, [row])
            self._steps[row] = steps


def lone_calls(model, prep) -> bool:
    """Whether ``model``'s batch rows interact, so that streams batched together must each run
    in a call of their own; probed once per model (a warning says so when they do)."""
    known = getattr(model, "_lone_calls", None)
    if known is None:
        known = model._lone_calls = _needs_probe(model) and not _rows_independent(model, prep)
    return known


def step_streams(model, streams, frames) -> np.ndarray:
    """One time step for each of ``streams`` (Streams of ``model``) in one batched call:
    ``frames[j]`` is ``streams[j]``'s frame; returns the outputs in order, (k, *out). Each
    stream's result and new state equal stepping it alone; all or nothing: a bad frame or a
    failed call leaves every stream as it was."""
    streams = list(streams)
    if not streams:
        raise DataError("step_streams() got no streams; pass a list of model.stream()s")
    if any(getattr(s, "model", None) is not model for s in streams):
        raise DataError("step_streams() batches streams of the model it is called on; some "
                        "of these come from another model (or are not streams)")
    if len({id(s) for s in streams}) != len(streams):
        raise DataError("a stream appears twice in one step_streams() call; one frame per "
                        "stream per step")
    frames = list(frames) if not isinstance(frames, np.ndarray) else frames
    if len(frames) != len(streams):
        raise DataError(f"{len(streams)} streams but {len(frames)} frames")
    check_poolable(model)
    x = np.stack([s._prep(f, many=False) for s, f in zip(streams, frames)])
    chunk = model.graph == "chunk"
    if chunk:
        x = x[:, None]
    if lone_calls(model, streams[0]._prep):
        runs = [model.run(x[j:j + 1], s._engine.get_state()) for j, s in enumerate(streams)]
        y = np.concatenate([r[0] for r in runs])
        news = [r[1] for r in runs]
    else:
        states = [s._engine.get_state() for s in streams]
        batch = {t.name: np.concatenate([st[t.name] for st in states], axis=t.batch_axis)
                 for t in model.states}
        y, new = model.run(x, batch)
        news = [{t.name: np.take(new[t.name], [j], axis=t.batch_axis) for t in model.states}
                for j in range(len(streams))]
    for s, new in zip(streams, news):
        s._engine.set_state(new)
        s.steps += 1
    return y[:, 0] if chunk else y


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
                  stacklevel=5)
    return False


class RowsInteractWarning(UserWarning):
    """A pool's model mixes its batch rows; the pool runs one call per stream instead."""
