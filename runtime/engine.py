"""The state store: k rows of a model's state, kept in bound buffers between calls.

Every stateful path (a :class:`~edgernn.runtime.stream.Stream`, a
:class:`~edgernn.runtime.pool.Pool`, streams batched with ``model.step_streams``) keeps its
state here, so buffers, bindings and dtypes are made in one place, from the contract. Row ``r``
of every state tensor (on that state's batch axis) is one stream; a stream is a handle on a row.

State lives in two sets of buffers (current and next), bound with ONNX Runtime's IOBinding: a
call reads the current set and writes the next, and only a successful call swaps them, so a
failed call leaves the state exactly as it was. When input and output shapes are fixed (one
step per call), the bindings of the first k rows are made once (:meth:`Engine.bound`) and a
step is: write the frames into the bound input buffer, run, flip. On a CUDA provider a store
can keep its buffers on the GPU, so that only frames in and outputs out cross the bus.
"""

from __future__ import annotations

import functools

import numpy as np
import onnxruntime as ort

_ORT_DEVICE = {"CUDAExecutionProvider": "cuda", "ROCMExecutionProvider": "cuda"}


class Bound:
    """The bindings of rows 0..k-1 with fixed input and output buffers: write frames into
    ``x``, call ``calls[engine parity]()``, flip the parity; the output is in ``y``."""

    __slots__ = ("k", "x", "y", "calls")

    def __init__(self, k, x, y, calls):
        self.k, self.x, self.y, self.calls = k, x, y, calls


class Engine:
    def __init__(self, model, rows: int = 1, device: str | None = None):
        """``rows`` streams of ``model``'s state, fresh. ``device="cpu"`` keeps the rows in host
        memory whatever the provider (a pool gathers rows every call); by default they live
        where the provider computes."""
        self.model = model
        self.session = model.session
        self.device = device or _ORT_DEVICE.get(model.providers[0], "cpu")
        self._axes = {s.name: (s.batch_axis if "batch" in s.layout else None)
                      for s in model.states}
        self._dtypes = {s.name: np.dtype(s.dtype) for s in model.states}
        # batch first in memory (nothing but axes of size one before it): a row prefix is a
        # contiguous view that a binding can take
        self._leading = all(a is not None and all(d == 1 for d in s.shape[:a])
                            for s in model.states for a in [self._axes[s.name]])
        self.rows = rows
        self._sets = [self._allocate(rows), self._allocate(rows)]
        self._cur = 0
        self._bound: dict = {}                    # (k, t) -> Bound, until the store grows
        self.set_state(model.initial_state(rows))

    # ---------------------------------------------------------------- buffers

    def _allocate(self, rows: int) -> dict:
        """name -> host array (cpu) or device OrtValue, ``rows`` streams."""
        out = {}
        for name, value in self.model.initial_state(rows).items():
            out[name] = (np.empty_like(value) if self.device == "cpu" else
                         ort.OrtValue.ortvalue_from_shape_and_type(value.shape, value.dtype,
                                                                   self.device, 0))
        return out

    def grow(self, rows: int) -> None:
        """Room for ``rows`` streams; the new rows hold the initial state."""
        state, extra = self.get_state(), self.model.initial_state(rows - self.rows)
        self.rows = rows
        self._sets = [self._allocate(rows), self._allocate(rows)]
        self._bound.clear()                       # the bindings were of the old buffers
        self.set_state({n: np.concatenate([a, extra[n]], axis=self._axes[n])
                        for n, a in state.items()})

    def _index(self, name: str, rows) -> tuple:
        axis = self._axes[name]
        if axis is None:
            return (Ellipsis,)                    # no batch axis: the store has one row
        return (slice(None),) * axis + (rows,)

    def _host(self, name: str, parity: int | None = None) -> np.ndarray:
        value = self._sets[self._cur if parity is None else parity][name]
        return value if isinstance(value, np.ndarray) else value.numpy()

    # ---------------------------------------------------------------- rows

    def get_state(self, rows=None) -> dict[str, np.ndarray]:
        """A host copy of the state of ``rows`` (a list of row numbers; all rows if None)."""
        if rows is None:
            return {n: self._host(n).copy() for n in self._sets[self._cur]}
        return self.take(rows)

    def set_state(self, states: dict[str, np.ndarray], rows=None) -> None:
        """Write ``states`` into ``rows`` (all rows if None)."""
        for name, value in self._sets[self._cur].items():
            if isinstance(value, np.ndarray):
                if rows is None:
                    np.copyto(value, states[name])
                else:
                    value[self._index(name, rows)] = states[name]
            else:                                 # a device buffer: written whole
                host = self._host(name)
                if rows is None:
                    host = states[name]
                else:
                    host[self._index(name, rows)] = states[name]
                value.update_inplace(np.ascontiguousarray(host, dtype=self._dtypes[name]))

    def take(self, rows, copy: bool = True) -> dict[str, np.ndarray]:
        """The state of ``rows``, in that order (a gather). ``copy=False`` may return views of
        the store when the rows are a prefix 0..k-1, for a call that only reads them."""
        rows = np.asarray(rows, np.intp)
        k = len(rows)
        prefix = (not copy and self._leading and k and rows[-1] == k - 1
                  and np.array_equal(rows, np.arange(k)))
        out = {}
        for name in self._sets[self._cur]:
            host = self._host(name)
            if self._axes[name] is None:
                out[name] = host.copy()
            elif prefix and isinstance(self._sets[self._cur][name], np.ndarray):
                out[name] = host[self._index(name, slice(0, k))]
            else:
                out[name] = np.take(host, rows, axis=self._axes[name])
        return out

    def reorder(self, rows, parents) -> None:
        """Row ``rows[j]`` takes the state row ``parents[j]`` held (the parents may repeat:
        what beam search does to its hypotheses after each step)."""
        self.set_state(self.take(parents), rows)

    # ---------------------------------------------------------------- running

    def run(self, x: np.ndarray, rows=None, extra: dict | None = None) -> np.ndarray:
        """One call on ``x`` (batch first, any length); returns a new output array. With
        ``rows``, those rows (in that order) are the batch: gathered, run, scattered back;
        without, every row of the store is. ``extra``: the graph's other data inputs (a step
        decoder's memory and mask), one row per batch row."""
        if rows is not None:
            y, new = self.model.run(x, self.take(rows, copy=False), extra)
            self.set_state(new, rows)
            return y
        b = self.session.io_binding()                   # y bound first: get_outputs()[0]
        b.bind_output(self.model.output.name, "cpu")
        b.bind_cpu_input(self.model.input.name, x)
        for name, value in self.model.checked_extra(extra).items():
            b.bind_cpu_input(name, np.ascontiguousarray(value))
        self._bind_states(b, self._cur, self.rows)
        self.session.run_with_iobinding(b)
        self._cur ^= 1
        return b.get_outputs()[0].numpy()

    def bound(self, k: int, t: int | None = None, shapes: tuple | None = None) -> Bound | None:
        """The fixed bindings of rows 0..k-1 (``t`` steps per call for a chunk graph), made
        once and kept; None when a call's shapes are not fixed (an axis left open) or rows
        0..k-1 are not one block of memory. ``shapes``: the input and output shapes, for a
        file whose layout the contract's leading axes do not describe. A call on them leaves
        rows k and above undefined: the caller keeps no stream there."""
        key = (k, t, shapes)
        hit = self._bound.get(key)
        if hit is not None or key in self._bound:
            return hit
        if len(self._bound) >= 32:                        # many sizes: keep the cache small
            self._bound.clear()
        self._bound[key] = made = self._make_bound(k, t, shapes)
        return made

    def _make_bound(self, k: int, t: int | None, shapes: tuple | None) -> Bound | None:
        model = self.model
        if not (k == self.rows or (self._leading and self.device == "cpu")):
            return None
        if shapes is None:
            lead = () if not model.x_lead else (k,) + ((t or 1,) if model.x_lead == 2 else ())
            y_lead = () if not model.y_lead else (k,) + ((t or 1,) if model.y_lead == 2 else ())
            shapes = (lead + tuple(model.input.shape[model.x_lead:]),
                      y_lead + tuple(model.output.shape[model.y_lead:]))
        if not all(isinstance(d, int) for shape in shapes for d in shape):
            return None                                   # an axis the contract leaves open
        x = np.zeros(shapes[0], model.input_dtype)
        y = np.zeros(shapes[1], model.output_dtype)
        bindings = []
        for parity in (0, 1):
            b = self.session.io_binding()
            b.bind_ortvalue_input(model.input.name, ort.OrtValue.ortvalue_from_numpy(x))
            self._bind_states(b, parity, k)
            b.bind_ortvalue_output(model.output.name, ort.OrtValue.ortvalue_from_numpy(y))
            bindings.append(b)
        # The C-level call: ONNX Runtime's Python wrapper adds a Python frame per step.
        c_run = getattr(getattr(self.session, "_sess", None), "run_with_iobinding", None)
        inner = [getattr(b, "_iobinding", None) for b in bindings]
        if c_run is not None and None not in inner:
            calls = [functools.partial(c_run, b, None) for b in inner]
        else:
            calls = [functools.partial(self.session.run_with_iobinding, b) for b in bindings]
        return Bound(k, x, y, calls)

    def call(self, bound: Bound) -> np.ndarray:
        """Run ``bound`` on what is in its ``x``; the output is in its ``y`` (valid until the
        next call)."""
        bound.calls[self._cur]()
        self._cur ^= 1
        return bound.y

    def _bind_states(self, b, parity: int, k: int) -> None:
        cur, nxt = self._sets[parity], self._sets[1 - parity]
        for s in self.model.states:
            b.bind_ortvalue_input(s.input, self._value(cur, s.name, k))
            b.bind_ortvalue_output(s.output, self._value(nxt, s.name, k))
        for name, value in self.model.constant_values.items():
            b.bind_ortvalue_input(name, value)

    def _value(self, buffers: dict, name: str, k: int):
        value = buffers[name]
        if not isinstance(value, np.ndarray):
            return value                                  # device buffers are bound whole
        if k != self.rows:
            value = value[self._index(name, slice(0, k))]
        return ort.OrtValue.ortvalue_from_numpy(value)
