"""A stream: one sequence's state, advanced a step or a chunk at a time.

The state changes only when a call succeeds: a bad frame (wrong shape or dtype, NaN) raises and
leaves the stream exactly where it was. A stream is cheap; make one per sequence (per user,
per sensor, per utterance). One stream is not meant to be stepped from two threads at once;
different streams of one model may run in parallel threads.
"""

from __future__ import annotations

import errno
import math
import os

import numpy as np

from edgernn.errors import DataError, ModelError, NonFiniteError, SnapshotError
from edgernn.files import atomic_write_bytes
from edgernn.runtime import snapshot as _snapshot
from edgernn.runtime import state_forms
from edgernn.runtime.engine import Engine
from edgernn.sampling import sample_logits, softmax


_F32 = np.dtype(np.float32)


def checked_frames(frames, frame_shape: tuple, dtype: np.dtype, many: bool,
                   kept: str) -> np.ndarray:
    """``frames`` as an array, after the checks every path makes (local, pooled, remote): the
    frame's shape, a numeric dtype (integer ids for a token model) and finite values; ``kept``
    names what a refused frame leaves unchanged."""
    a = frames if isinstance(frames, np.ndarray) else np.asarray(frames)
    got = a.shape[1:] if many else a.shape
    if a.ndim != len(frame_shape) + many or got != tuple(frame_shape):
        want = ("T",) * many + tuple(frame_shape)
        what = "takes frames" if many else "takes one frame"
        raise DataError(f"this model {what} of shape ({', '.join(map(str, want))}"
                        f"{',' if len(want) == 1 else ''}); got an array of shape {a.shape}")
    if np.issubdtype(dtype, np.integer):
        if a.dtype.kind not in "iu":
            raise DataError(f"this model takes integer token ids, got {a.dtype} values")
        return a
    if a.dtype.kind not in "fiub":
        raise DataError(f"this model takes numeric frames, got dtype {a.dtype}")
    if not np.isfinite(a).all():
        bad = int(a.size - np.isfinite(a).sum())
        raise NonFiniteError(f"the frame holds {bad} NaN or infinite value(s); {kept} was "
                             f"left unchanged. Clean or drop the frame")
    return a


class FramePrep:
    """Checks frames against the model's input and applies the contract's normalisation."""

    def __init__(self, model, normalize: bool):
        self.frame_shape = tuple(model.input.shape[model.x_lead:])
        unknown = [d for d in self.frame_shape if isinstance(d, str)]
        if unknown:
            raise ModelError(f"input {model.input.name!r} {model.input.shape} leaves the size of "
                             f"frame ax{'es' if len(unknown) > 1 else 'is'} "
                             f"{', '.join(unknown)} open; a stream needs it. Give it when "
                             f"loading: load(..., dims={{{unknown[0]!r}: SIZE}}) (CLI: --dim "
                             f"{unknown[0]}=SIZE)")
        self.dtype = model.input_dtype
        self.integer = np.issubdtype(self.dtype, np.integer)
        pre = model.contract.preprocessing
        self.mean = self.inv_std = None       # frames go in as they come: (x - mean) * inv_std
        if pre is not None and pre.in_graph and not normalize:
            # the graph normalises; the caller's frames already are: back to the data's units,
            # x * std + mean, written as (x - (-mean/std)) * std
            mean, std = pre.arrays()
            self.mean, self.inv_std = -mean / std, std
        elif pre is not None and not pre.in_graph and normalize:
            mean, std = pre.arrays()
            self.mean, self.inv_std = mean, 1.0 / std

    def __call__(self, frames, many: bool) -> np.ndarray:
        """Frames as the graph takes them, with a leading batch axis of the given size."""
        a = checked_frames(frames, self.frame_shape, self.dtype, many, "the stream's state")
        if self.integer:
            return np.ascontiguousarray(a, dtype=self.dtype)
        if self.mean is not None:
            a = (a - self.mean) * self.inv_std
        return np.ascontiguousarray(a, dtype=self.dtype)


class Stream:
    def __init__(self, model, normalize: bool = True):
        self.model = model
        self._prep = FramePrep(model, normalize)
        self.frame_shape = self._prep.frame_shape
        self._chunk = model.graph == "chunk"
        self._engine = engine = Engine(model, 1)
        bound = engine.bound(1, 1 if self._chunk else None)      # None: an output axis is open
        self._x = None if bound is None else bound.x.reshape(self.frame_shape)
        self._calls = None if bound is None else bound.calls
        self._fast = (self._x is not None and not self._prep.integer)
        self._mean, self._inv_std = self._prep.mean, self._prep.inv_std
        self._lead = (None,) * model.x_lead     # adds the batch (and time) axes to a frame
        # takes them off an output; the Ellipsis keeps a view even of a one-number output
        self._first = (0,) * model.y_lead + (Ellipsis,)
        self._y = None if bound is None else bound.y[self._first]
        self.steps = 0

    # ---------------------------------------------------------------- state

    def reset(self) -> None:
        """Back to the initial state: the stream then behaves exactly like a fresh one."""
        self._engine.set_state(self.model.initial_state(1))
        self.steps = 0

    @property
    def state(self) -> dict[str, np.ndarray]:
        """A copy of the current state (batch axis of one included)."""
        return self._engine.get_state()

    def snapshot(self) -> bytes:
        """The state as bytes, naming the model it belongs to."""
        return _snapshot.dumps(self.model.fingerprint, self.state, self.steps)

    def restore(self, data: bytes) -> None:
        """Continue from a snapshot of this model (another model's is refused)."""
        states, steps = state_forms.read(self.model, data)
        _snapshot.check_fits(states, self.model.initial_state(1))
        self._engine.set_state(states)
        self.steps = steps

    def save(self, path: str | os.PathLike) -> None:
        """Write a snapshot to ``path`` atomically: never a half-written file. Refused while
        another process holds the file's lock (``edgernn run --state-file``, a device app's
        :func:`~edgernn.runtime.durable.state_file_lock`): its saves would overwrite this one."""
        from edgernn.runtime.durable import state_file_lock

        try:
            with state_file_lock(path):
                atomic_write_bytes(path, self.snapshot())
        except OSError as exc:
            why = ("the disk is full while writing" if exc.errno == errno.ENOSPC else
                   "cannot write the snapshot to")
            raise SnapshotError(f"{why} {path}: {exc.strerror or exc}; the previous file, if "
                                f"any, is unchanged") from None

    def load(self, path: str | os.PathLike) -> None:
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise SnapshotError(f"cannot read snapshot {path}: {exc.strerror}") from None
        self.restore(data)

    # ---------------------------------------------------------------- stepping

    def step(self, frame) -> np.ndarray:
        """Consume one time step; return that step's output."""
        x = self._x
        if type(frame) is np.ndarray and frame.shape == self.frame_shape and self._fast and (
                frame.dtype is _F32 or frame.dtype.kind in "fiub"):
            # The hot path, every microsecond counted (benchmarks/runtime_bench.py): the frame
            # into the bound input buffer (normalised there when the graph does not normalise
            # itself), one check, the C-level run, the state buffers swapped.
            if self._mean is None:
                x[:] = frame
            else:
                np.subtract(frame, self._mean, out=x, casting="unsafe")
                np.multiply(x, self._inv_std, out=x)
            # NaN/inf survive a sum; a float64 sum of float32 values cannot overflow (a dot of
            # huge ones did, and numpy said so on stderr)
            if not math.isfinite(x.sum(dtype=np.float64)):
                self._check_finite(frame, x)
            engine = self._engine
            self._calls[engine._cur]()
            engine._cur ^= 1
            self.steps += 1
            return self._y.copy()
        if x is not None:
            np.copyto(x, self._prep(frame, many=False))
        else:
            y = self._engine.run(self._prep(frame, many=False)[self._lead])
            self.steps += 1
            return y[self._first]
        self._run_bound()
        self.steps += 1
        return self._y.copy()

    def _run_bound(self) -> None:
        engine = self._engine
        self._calls[engine._cur]()
        engine._cur ^= 1

    def _check_finite(self, frame: np.ndarray, x: np.ndarray) -> None:
        if not np.isfinite(frame).all():
            self._prep(frame, many=False)             # raises NonFiniteError with the count
        if not np.isfinite(x).all():
            raise DataError("the normalised frame overflows float32; check the frame's units "
                            "against the model's preprocessing")

    def feed(self, frames) -> np.ndarray:
        """Consume many time steps in one call; return one output per step, (T, *out)."""
        x = self._prep(frames, many=True)                             # (T, *frame)
        if x.shape[0] == 0:
            raise DataError("feed() got no frames; pass at least one")
        if self._chunk:
            # bindings made once per chunk length and kept (issue 20: a new IOBinding per call
            # cost 20-30 us); an open output axis or no batch axis takes the plain call
            m = self.model                # time axes open on the input and the output
            timed = m.x_lead == 2 and m.y_lead == 2 and isinstance(m.output.shape[1], str)
            bound = self._engine.bound(1, x.shape[0]) if timed else None
            if bound is not None:
                bound.x[0] = x
                y = self._engine.call(bound)[0].copy()                # (T, *out)
            else:
                y = self._engine.run(x[None])[0]
        else:
            saved = self._engine.get_state()
            outs = []
            try:
                for t in range(x.shape[0]):
                    if self._x is not None:
                        np.copyto(self._x, x[t])
                        self._run_bound()
                        outs.append(self._y.copy())
                    else:
                        outs.append(self._engine.run(x[t][self._lead])[self._first])
            except BaseException:
                self._engine.set_state(saved)     # all or nothing, like one chunk call
                raise
            y = np.stack(outs)
        self.steps += x.shape[0]
        return y

    # ---------------------------------------------------------------- reading outputs

    def probabilities(self, y: np.ndarray) -> np.ndarray:
        """Softmax over the last axis of a classifier's or language model's output."""
        return softmax(np.asarray(y, np.float64))

    def label(self, y: np.ndarray) -> str:
        """The most likely class, by name when the contract has labels."""
        i = int(np.argmax(y))
        labels = self.model.labels
        return labels[i] if labels and i < len(labels) else str(i)

    def denormalize(self, y: np.ndarray) -> np.ndarray:
        """A regressor's output in the data's units (the contract's postprocessing)."""
        post = self.model.contract.postprocessing
        if post is None or post.in_graph:
            return np.asarray(y)
        return post.invert(y)

    def sample(self, y: np.ndarray, *, temperature: float = 1.0, top_k: int | None = None,
               rng: np.random.Generator | None = None) -> str:
        """A character drawn from a language model's logits (needs a vocabulary)."""
        vocab = self.model.vocabulary
        if not vocab:
            raise DataError("this model has no vocabulary in its contract; sample() is for "
                            "character language models")
        return vocab[sample_logits(y, temperature=temperature, top_k=top_k, rng=rng)]

    def feed_text(self, text: str) -> np.ndarray:
        """A text classifier's stream: the tokens of ``text`` (the contract's tokenizer), fed
        in one call after what the stream has seen; one output per token, (T, classes). Text
        that arrives in pieces is fed piece by piece; ``label(ys[-1])`` is the label so far."""
        return self.feed(self.encode(text))

    def encode(self, text: str) -> np.ndarray:
        """Text to token ids: the contract's tokenizer (text classifiers), or its character
        vocabulary (character language models)."""
        tokenizer = self.model.contract.tokenizer
        if tokenizer is not None:
            ids = tokenizer.encode(text)
            if not ids:
                raise DataError("the text has no tokens; pass some text")
            return np.array(ids, dtype=np.int64)
        vocab = self.model.vocabulary or ""
        index = {ch: i for i, ch in enumerate(vocab)}
        missing = sorted({ch for ch in text if ch not in index})
        if missing:
            raise DataError(f"character(s) {''.join(missing)!r} are not in this model's "
                            f"vocabulary {vocab!r}")
        return np.array([index[ch] for ch in text], dtype=np.int64)
