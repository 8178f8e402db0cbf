"""Stream state to bytes and back.

Layout: ``MAGIC`` | u32 header length | JSON header | raw arrays | sha256 of everything before.
The header names the model (its fingerprint), each state's name, dtype and shape, and the
number of steps taken. A snapshot of another model, a truncated or corrupted one, one whose
header does not describe its arrays, or one holding NaN or inf, is refused with
:class:`~edgernn.errors.SnapshotError`: nothing else is ever raised for bad bytes.
"""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np

from edgernn.contract import DTYPES, canonical_json
from edgernn.errors import SnapshotError

MAGIC = b"EDGERNN-SNAPSHOT\x01"
_DIGEST = 32


def dumps(fingerprint: str, states: dict[str, np.ndarray], steps: int) -> bytes:
    header = {"model": fingerprint, "steps": int(steps),
              "states": [{"name": k, "dtype": str(v.dtype), "shape": list(v.shape)}
                         for k, v in states.items()]}
    head = canonical_json(header)
    body = MAGIC + struct.pack("<I", len(head)) + head + b"".join(
        np.ascontiguousarray(v).tobytes() for v in states.values())
    return body + hashlib.sha256(body).digest()


def _bad(why: str) -> SnapshotError:
    return SnapshotError(f"the snapshot is damaged ({why}); it cannot be restored. Restore an "
                         f"older snapshot, or reset the stream")


def _header(body: bytes) -> tuple[dict, int]:
    (n,) = struct.unpack_from("<I", body, len(MAGIC))
    start = len(MAGIC) + 4
    if start + n > len(body):
        raise _bad("its header runs past the end")
    try:
        header = json.loads(body[start:start + n])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _bad("its header is not JSON") from None
    if not isinstance(header, dict) or not isinstance(header.get("model"), str) \
            or not isinstance(header.get("steps"), int) or isinstance(header["steps"], bool) \
            or header["steps"] < 0 or not isinstance(header.get("states"), list):
        raise _bad("its header lacks the model, steps or states")
    for spec in header["states"]:
        shape = spec.get("shape") if isinstance(spec, dict) else None
        if not (isinstance(spec, dict) and isinstance(spec.get("name"), str)
                and spec.get("dtype") in DTYPES and isinstance(shape, list)
                and all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 1 << 31
                        for d in shape)):
            raise _bad("a state in its header is malformed")
    return header, start + n


def loads(data: bytes, fingerprint: str, also=()) -> tuple[dict[str, np.ndarray], int]:
    """The states and step count of a snapshot of the model named ``fingerprint`` (or one of
    ``also``: the names older versions gave the same model)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise SnapshotError(f"a snapshot is bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data.startswith(MAGIC):
        raise SnapshotError("this is not an edgernn state snapshot (wrong magic bytes)")
    if len(data) < len(MAGIC) + 4 + _DIGEST:
        raise SnapshotError(f"the snapshot is truncated ({len(data)} bytes)")
    body, digest = data[:-_DIGEST], data[-_DIGEST:]
    if hashlib.sha256(body).digest() != digest:
        raise SnapshotError("the snapshot is corrupt or truncated (checksum mismatch); it "
                            "cannot be restored")
    header, offset = _header(body)
    if header["model"] != fingerprint and header["model"] not in also:
        raise SnapshotError(f"the snapshot belongs to another model (fingerprint "
                            f"{header['model'][:12]}..., this model is {fingerprint[:12]}...); "
                            f"restore it into the model it was taken from")
    states = {}
    for spec in header["states"]:
        dtype = np.dtype(spec["dtype"])
        count = int(np.prod(spec["shape"], dtype=np.int64))
        if offset + count * dtype.itemsize > len(body):
            raise _bad("its arrays are shorter than its header says")
        value = np.frombuffer(body, dtype, count, offset).reshape(spec["shape"]).copy()
        if dtype.kind == "f" and not np.isfinite(value).all():
            raise SnapshotError(f"the snapshot's state {spec['name']!r} holds NaN or inf; a "
                                f"stream never reaches such a state, so it was damaged or "
                                f"made by hand. It cannot be restored")
        states[spec["name"]] = value
        offset += count * dtype.itemsize
    if offset != len(body):
        raise _bad("its arrays do not match its header")
    return states, int(header["steps"])


def model_of(data: bytes) -> str | None:
    """The fingerprint a snapshot names, when it is an intact one; else None."""
    try:
        data = bytes(data)
        if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4 + _DIGEST:
            return None
        body = data[:-_DIGEST]
        if hashlib.sha256(body).digest() != data[-_DIGEST:]:
            return None
        return _header(body)[0]["model"]
    except (SnapshotError, TypeError, ValueError, struct.error):
        return None


def check_fits(states: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    """The restored states are exactly the model's: same names, shapes and dtypes."""
    if set(states) != set(expected):
        raise SnapshotError(f"the snapshot holds states {', '.join(sorted(states)) or 'none'}; "
                            f"this model's are {', '.join(sorted(expected))}")
    for name, want in expected.items():
        got = states[name]
        if got.shape != want.shape or got.dtype != want.dtype:
            raise SnapshotError(f"the snapshot's state {name!r} is {got.dtype} {got.shape}; "
                                f"this model's is {want.dtype} {want.shape}")
