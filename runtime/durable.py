"""A stream whose state survives the process: saves on a cadence, one writer per state file,
and the record a step's output becomes. ``edgernn run`` is built on it; a device app that
streams from its own source uses the same pieces::

    with state_file_lock(path):
        stream = model.stream()
        if path.exists():
            stream.load(path)
        saver = Durable(stream, path, every=100, seconds=5)
        for frame in source:
            print(step_record(stream, stream.step(frame)))
            saver.maybe()
        saver.save()

Device side: numpy and the standard library only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import numpy as np

from edgernn.errors import SnapshotError


class Durable:
    """Saves a stream's state every ``every`` steps and ``seconds`` seconds (0: never on that
    count) and on demand; knows what the last save holds. ``path`` None saves nothing."""

    def __init__(self, stream, path: str | os.PathLike | None, every: int = 100,
                 seconds: float = 5.0):
        self.stream, self.every, self.seconds = stream, every, seconds
        self.path = None if path is None else Path(path)
        self.saved_steps = stream.steps
        self.saved_at = time.monotonic()

    def maybe(self) -> None:
        """Save if the cadence says so."""
        if self.path is None:
            return
        if (self.every and self.stream.steps - self.saved_steps >= self.every) or (
                self.seconds and time.monotonic() - self.saved_at >= self.seconds):
            self.save()

    def save(self) -> None:
        """Save now (atomically) unless the file already holds this state."""
        if self.path is None or self.stream.steps == self.saved_steps and self.path.exists():
            return
        self.stream.save(self.path)
        self.saved_steps, self.saved_at = self.stream.steps, time.monotonic()


# the signals that stop a durable stream, and the exit status a shell gives each (128 + n)
EXIT_CODES = {signal.SIGTERM: 143, signal.SIGINT: 130, signal.SIGHUP: 129}


class Stop(Exception):
    """A stop signal arrived (``signum``); the state is whole: save it and exit."""

    def __init__(self, signum: int):
        self.signum = signum


class Signals:
    """SIGTERM, SIGINT and SIGHUP for a durable stream: while reading (possibly blocked on
    stdin) a signal raises :class:`Stop` at once; while stepping it is noted and raised by
    :meth:`check` after the step, so a step is never half-counted::

        with Signals() as signals:
            signals.reading = True
            frame = next(source)
            signals.reading = False
            stream.step(frame)
            signals.check()
    """

    def __init__(self):
        self.reading = False
        self.pending: int | None = None
        self._old = {}

    def __enter__(self):
        for sig in EXIT_CODES:
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def _handle(self, signum, frame):
        if self.reading:
            raise Stop(signum)
        self.pending = signum

    def check(self):
        if self.pending is not None:
            raise Stop(self.pending)


@contextlib.contextmanager
def state_file_lock(path: str | os.PathLike, *, what: str = "", who: str = "another process"):
    """One writer per state file: a second would overwrite the first's saves with its own.
    Raises SnapshotError naming the holder's pid; the lock dies with its process. ``what`` and
    ``who`` word the error (the file as the caller named it, the kind of holder)."""
    from edgernn.files import FileLockedError, HardLinkedError, exclusive

    try:
        held = exclusive(path)
        held.__enter__()
    except FileLockedError as exc:
        raise SnapshotError(f"{what or f'state file {path}'} is in use by {who} (pid "
                            f"{exc.holder}); two writers on one state file would lose one's "
                            f"state. Stop that one first, or give this one its own state "
                            f"file") from None
    except HardLinkedError as exc:
        raise SnapshotError(f"{what or f'state file {path}'} has {exc.links} names (hard "
                            f"links): a writer through another name would not see this one's "
                            f"lock. Give this stream a file of its own (copy it, do not link "
                            f"it)") from None
    try:
        yield
    finally:
        held.__exit__(None, None, None)


def step_record(stream, y, *, rng=None, temperature: float = 0.0,
                top_k: int | None = None, step: int | None = None) -> dict:
    """What one step's output means, as a JSON-ready dict: the step (``step``, else the
    stream's count) and the output, with the label (classifiers), the forecast in data units
    (forecasters) or the next character (language models, sampled at ``temperature``; 0 takes
    the most likely)."""
    model = stream.model
    head = model.contract.head
    record = {"step": stream.steps if step is None else step,
              "y": np.round(y.astype(float), 6).tolist()}
    if head in ("classify_last", "classify_step") or model.labels:
        record["label"] = stream.label(y)
    elif head == "regress":
        record["forecast"] = np.round(stream.denormalize(y).astype(float), 6).tolist()
    elif model.vocabulary and model.input_dtype == np.int64:
        record["next"] = stream.sample(y, temperature=temperature, top_k=top_k,
                                       rng=rng if rng is not None else np.random.default_rng())
        del record["y"]
    return record
