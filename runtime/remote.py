"""Streams served by Triton Inference Server, with the same methods as local ones.

    remote = edgernn.runtime.remote.connect("127.0.0.1:8001")        # or a list of servers
    stream = remote.stream()                                          # one sequence
    y = stream.step(frame); ys = stream.feed(frames); stream.reset(); stream.close()

Each stream is one Triton sequence: a correlation ID, START on its first step (and after
``reset()``), END on ``close()``. Given several servers, each stream sticks to one, chosen from
its correlation ID, so its state lives on one server. Uses ``tritonclient`` (gRPC), imported only
here: ``pip install 'edgernn[serve]'``. A device app moves from local to served by changing the
line that makes its model.
"""

from __future__ import annotations

import itertools
import os
import threading

import numpy as np

from edgernn.contract import TRITON_TYPES
from edgernn.errors import MissingDependencyError, ModelError, StreamingError
from edgernn.runtime.stream import checked_frames

_TYPES = {f"TYPE_{wire}": np.dtype(name) for name, wire in TRITON_TYPES.items()}
_WIRE = {np.dtype(name): wire for name, wire in TRITON_TYPES.items()}


def _grpc():
    try:
        import tritonclient.grpc as grpc
    except ImportError:
        raise MissingDependencyError("streaming from Triton", extra="serve",
                                     module="tritonclient") from None
    return grpc


def connect(url, model: str | None = None, *, timeout: float = 30.0) -> "Remote":
    """A served model: ``url`` is "host:grpc_port" or a list of them (sticky routing)."""
    urls = [url] if isinstance(url, str) else list(url)
    if not urls:
        raise ModelError("connect() needs at least one server address")
    return Remote(urls, model, timeout)


class Remote:
    def __init__(self, urls: list[str], model: str | None, timeout: float):
        self._grpc = _grpc()
        self.urls, self.timeout = urls, timeout
        self.clients = [self._client(u) for u in urls]
        self.name = model or self._only_model()
        config = self._call(0, lambda c: c.get_model_config(self.name, as_json=True))["config"]
        self.input, self.output = config["input"][0], config["output"][0]
        self.frame_shape = tuple(int(d) for d in self.input["dims"])
        self.dtype = _TYPES[self.input["data_type"]]
        # one stream's output as the model computes it: a [batch] output is [batch, 1] to Triton
        out = self.output
        self.output_shape = tuple(int(d) for d in (out["reshape"].get("shape", []) if "reshape"
                                                   in out else out["dims"]))
        # correlation IDs: unique per process and client, never 0 (Triton's "none")
        self._ids = itertools.count((os.getpid() << 32) + (id(self) & 0xFFFFFFF) + 1)
        self._lock = threading.Lock()

    def _client(self, url: str):
        # own subchannels (gRPC shares them process-wide, with the backoff of a dead server)
        # and a short reconnect backoff, so a restarted server is reached at once
        return self._grpc.InferenceServerClient(url, channel_args=[
            ("grpc.max_send_message_length", 2**31 - 1),
            ("grpc.max_receive_message_length", 2**31 - 1),
            ("grpc.use_local_subchannel_pool", 1),
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000)])

    def _only_model(self) -> str:
        index = self._call(0, lambda c: c.get_model_repository_index(as_json=True))
        ready = [m["name"] for m in index.get("models", []) if m.get("state") == "READY"]
        if len(ready) != 1:
            raise ModelError(f"the server at {self.urls[0]} serves {len(ready)} ready models "
                             f"({', '.join(ready) or 'none'}); name one: connect(url, model=...)")
        return ready[0]

    def _call(self, server: int, fn):
        try:
            return fn(self.clients[server])
        except self._grpc.InferenceServerException as exc:
            error = _error(exc, self.urls[server], getattr(self, "name", ""))
            if isinstance(error, _Unreachable):
                # a fresh channel connects on the next call, without gRPC's reconnect backoff
                self.clients[server] = self._client(self.urls[server])
            raise error from None

    def stream(self) -> "RemoteStream":
        with self._lock:
            corr = next(self._ids)
        return RemoteStream(self, corr, corr % len(self.clients))


class _Unreachable(StreamingError):
    """The server did not answer (down, restarting, or the network)."""


def _error(exc, url: str, model: str):
    message = str(exc.message() if hasattr(exc, "message") else exc).strip()
    status = str(exc.status() if hasattr(exc, "status") else "")
    if "UNAVAILABLE" in status or "failed to connect" in message or "Socket closed" in message:
        return _Unreachable(f"the Triton server at {url} is not reachable ({message[:120]}); "
                              f"is it running? A restarted server keeps no sequence state: "
                              f"start the stream again (reset())")
    if "unknown model" in message.lower() or "not found" in message.lower():
        return ModelError(f"the server at {url} has no model {model!r} ({message[:160]})")
    return StreamingError(f"the server at {url} refused the request: {message[:300]}")


class RemoteStream:
    """One Triton sequence; ``step``/``feed``/``reset``/``close`` as a local stream."""

    def __init__(self, remote: Remote, corr: int, server: int):
        self.remote, self.sequence_id, self.server = remote, corr, server
        self._start, self.steps, self.closed = True, 0, False

    def _frame(self, frame) -> np.ndarray:
        r = self.remote
        a = checked_frames(frame, tuple(r.frame_shape), np.dtype(r.dtype), False,
                           "the sequence's state")
        return np.ascontiguousarray(a, dtype=r.dtype)[None]

    def _infer(self, x: np.ndarray, end: bool = False) -> np.ndarray:
        r = self.remote
        grpc = r._grpc
        if self.closed:
            raise StreamingError("this stream is closed; make another with remote.stream()")
        inp = grpc.InferInput(r.input["name"], list(x.shape), _WIRE[x.dtype])
        inp.set_data_from_numpy(x)
        out = grpc.InferRequestedOutput(r.output["name"])
        result = r._call(self.server, lambda c: c.infer(
            r.name, [inp], outputs=[out], sequence_id=self.sequence_id,
            sequence_start=self._start, sequence_end=end, client_timeout=r.timeout))
        self._start = False
        return result.as_numpy(r.output["name"])[0].reshape(r.output_shape)

    def step(self, frame) -> np.ndarray:
        """One time step on the server; the sequence's state stays there."""
        y = self._infer(self._frame(frame))
        self.steps += 1
        return y

    def feed(self, frames) -> np.ndarray:
        """Many time steps, one request each, in order: (T, *out)."""
        return np.stack([self.step(f) for f in frames])

    def reset(self) -> None:
        """The next step starts the sequence afresh (START)."""
        self._start, self.steps = True, 0

    def close(self) -> None:
        """End the sequence on the server (frees its slot and state). The END request carries
        a frame of zeros; its output is discarded."""
        if not self.closed and not self._start:
            self._infer(np.zeros((1, *self.remote.frame_shape), self.remote.dtype), end=True)
        self.closed = True

    def __enter__(self) -> "RemoteStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
