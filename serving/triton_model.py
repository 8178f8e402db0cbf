"""The model a Python-backend Triton repository runs: sequences as streams of one edgernn pool.

Triton's sequence batcher marks each request with the sequence's correlation ID and its START
and END flags, and gathers requests of different sequences into one ``execute`` call; this
model keeps one stream of a :class:`~edgernn.runtime.Pool` per sequence and steps every
request of the call in one batched ONNX Runtime run (the same engine as an embedded pool).
START opens (or resets) a sequence's stream, END closes it after its step, and a sequence
idle past the batcher's timeout is dropped, as Triton drops its slot. A bad frame (shape,
dtype, NaN) fails only its own request.

Imported by the tiny ``model.py`` that ``edgernn triton`` writes; ``triton_python_backend_utils``
exists only inside Triton's Python-backend stub, so it is imported there.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np


class Sequences:
    """Correlation IDs to pool streams, with the batcher's idle timeout (no Triton needed:
    tested on its own)."""

    def __init__(self, model, idle_seconds: float):
        self.model, self.pool, self.idle = model, model.pool(), idle_seconds
        self.streams: dict[int, int] = {}
        self.seen: dict[int, float] = {}

    def step(self, items: list[tuple[int, bool, bool, np.ndarray]]) -> list:
        """``items``: (correlation id, start, end, frame). Returns per item its output or an
        error message (str); every good item is stepped in one batched call."""
        now = time.monotonic()
        self._expire(now)
        results: list = [None] * len(items)
        ids, frames, rows = [], [], []
        for k, (corr, start, end, frame) in enumerate(items):
            problem = self._check(frame)
            if problem:
                results[k] = problem
                continue
            if start:
                if corr in self.streams:
                    self.pool.reset(self.streams[corr])
                else:
                    self.streams[corr] = self.pool.open()
            elif corr not in self.streams:
                results[k] = (f"sequence {corr} has no state on this server (it ended, idled past "
                              f"{self.idle:g} s, or the server restarted); start it again "
                              f"with the START flag")
                continue
            if self.streams[corr] in ids:
                results[k] = f"sequence {corr} sent two frames in one batch"
                continue
            self.seen[corr] = now
            ids.append(self.streams[corr])
            frames.append(frame)
            rows.append(k)
        if ids:
            ys = self.pool.step_many(ids, np.stack(frames))
            for k, y in zip(rows, ys):
                results[k] = y
        for k, (corr, start, end, frame) in enumerate(items):
            if end and corr in self.streams:
                self.pool.close(self.streams.pop(corr))
                self.seen.pop(corr, None)
        return results

    def _check(self, frame: np.ndarray) -> str:
        want = tuple(self.pool._prep.frame_shape)
        if frame.shape != want:
            return f"a frame of shape {frame.shape}; this model takes {want}"
        if frame.dtype.kind == "f" and not np.isfinite(frame).all():
            return "the frame holds NaN or inf; the sequence's state was left unchanged"
        return ""

    def _expire(self, now: float) -> None:
        for corr in [c for c, t in self.seen.items() if now - t > self.idle]:
            self.pool.close(self.streams.pop(corr))
            del self.seen[corr]


def _array(tensor) -> np.ndarray:
    """A request tensor as numpy, through DLPack: the stub's ``as_numpy`` and ``Tensor(name,
    array)`` were built against numpy 1 and read or write garbage under numpy 2."""
    return np.from_dlpack(tensor).copy()


_USED = b"used_dltensor"            # kept alive: a capsule's name is not copied
_ctypes_api = None


def _output(pb, name: str, array: np.ndarray):
    """An output tensor through DLPack. The stub marks the capsule it consumed with its own
    name ("used_dlpack"), which numpy's capsule destructor does not know; it would print a
    ValueError for every response. Marking it with the name numpy expects ends that (the stub
    owns the memory from here, as it should)."""
    global _ctypes_api
    capsule = array.__dlpack__()
    tensor = pb.Tensor.from_dlpack(name, capsule)
    if _ctypes_api is None:
        import ctypes

        api = ctypes.pythonapi
        api.PyCapsule_GetName.restype = ctypes.c_char_p
        api.PyCapsule_GetName.argtypes = [ctypes.py_object]
        api.PyCapsule_SetName.argtypes = [ctypes.py_object, ctypes.c_char_p]
        _ctypes_api = api
    if _ctypes_api.PyCapsule_GetName(capsule) != b"dltensor":
        _ctypes_api.PyCapsule_SetName(capsule, _USED)
    return tensor


class TritonPythonModel:
    """What Triton's Python backend calls: ``initialize``, ``execute``, ``finalize``."""

    def initialize(self, args):
        import triton_python_backend_utils as pb_utils

        from edgernn.runtime import load

        self.pb = pb_utils
        config = json.loads(args["model_config"])
        folder = Path(args["model_repository"]) / args["model_version"]
        extra = folder / "load.json"
        kwargs = json.loads(extra.read_text()) if extra.exists() else {}
        model = load(folder / "model.onnx", threads=1, **kwargs)
        idle = float(config.get("parameters", {}).get("idle_seconds", {}).get(
            "string_value", 60))
        self.sequences = Sequences(model, idle)
        self.x_name = model.input.name
        self.y_name = model.output.name
        self.dtype = model.input_dtype
        self.y_dtype = model.output_dtype

    def execute(self, requests):
        pb = self.pb
        items = []
        for request in requests:
            frame = _array(pb.get_input_tensor_by_name(request, self.x_name))
            start = _array(pb.get_input_tensor_by_name(request, "START"))
            end = _array(pb.get_input_tensor_by_name(request, "END"))
            corr = _array(pb.get_input_tensor_by_name(request, "CORRID"))
            items.append((int(corr.reshape(-1)[0]), bool(start.reshape(-1)[0]),
                          bool(end.reshape(-1)[0]), np.asarray(frame[0])))
        responses = []
        for result in self.sequences.step(items):
            if isinstance(result, str):
                responses.append(pb.InferenceResponse(error=pb.TritonError(result)))
            else:
                out = np.ascontiguousarray(result[None], dtype=self.y_dtype)
                responses.append(pb.InferenceResponse(output_tensors=[
                    _output(pb, self.y_name, out)]))
        return responses

    def finalize(self):
        self.sequences = None
