"""Stream state to bytes and back.

Layout: ``MAGIC`` | u32 header length | JSON header | raw arrays | sha256 of everything before.
The header names the model (its fingerprint), each state's name, dtype and shape, and the
number of steps taken. A snapshot of another model, a truncated or corrupted one, is refused.
"""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np

from edgernn.errors import SnapshotError

MAGIC = b"EDGERNN-SNAPSHOT\x01"
_DIGEST = 32


def dumps(fingerprint: str, states: dict[str, np.ndarray], steps: int) -> bytes:
    header = {"model": fingerprint, "steps": steps,
              "states": [{"name": k, "dtype": str(v.dtype), "shape": list(v.shape)}
                         for k, v in states.items()]}
    head = json.dumps(header, sort_keys=True).encode()
    body = MAGIC + struct.pack("<I", len(head)) + head + b"".join(
        np.ascontiguousarray(v).tobytes() for v in states.values())
    return body + hashlib.sha256(body).digest()


def loads(data: bytes, fingerprint: str) -> tuple[dict[str, np.ndarray], int]:
    data = bytes(data)
    if not data.startswith(MAGIC):
        raise SnapshotError("this is not an edgernn state snapshot (wrong magic bytes)")
    if len(data) < len(MAGIC) + 4 + _DIGEST:
        raise SnapshotError(f"the snapshot is truncated ({len(data)} bytes)")
    body, digest = data[:-_DIGEST], data[-_DIGEST:]
    if hashlib.sha256(body).digest() != digest:
        raise SnapshotError("the snapshot is corrupt or truncated (checksum mismatch); it "
                            "cannot be restored")
    (n,) = struct.unpack_from("<I", body, len(MAGIC))
    start = len(MAGIC) + 4
    header = json.loads(body[start:start + n])
    if header["model"] != fingerprint:
        raise SnapshotError(f"the snapshot belongs to another model (fingerprint "
                            f"{header['model'][:12]}..., this model is {fingerprint[:12]}...); "
                            f"restore it into the model it was taken from")
    offset, states = start + n, {}
    for spec in header["states"]:
        dtype = np.dtype(spec["dtype"])
        count = int(np.prod(spec["shape"], dtype=np.int64))
        states[spec["name"]] = np.frombuffer(body, dtype, count, offset).reshape(
            spec["shape"]).copy()
        offset += count * dtype.itemsize
    if offset != len(body):
        raise SnapshotError("the snapshot's arrays do not match its header")
    return states, int(header["steps"])
