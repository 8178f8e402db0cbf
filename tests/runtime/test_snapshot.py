"""Snapshots under damage: any change to any byte gives SnapshotError, never anything else."""

import hashlib
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgernn.errors import SnapshotError
from edgernn.runtime import load, snapshot

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def real(models):
    model = load(models / "lstm_step.onnx")
    stream = model.stream()
    stream.feed(np.random.default_rng(0).normal(size=(7, 4)))
    return model, stream.snapshot(), stream.state


def _rehash(body: bytes) -> bytes:
    return body + hashlib.sha256(body).digest()


def _restores_or_refuses(model, data, good_state):
    stream = model.stream()
    before = stream.state
    try:
        stream.restore(data)
    except SnapshotError:
        for k, v in stream.state.items():               # a refused snapshot changes nothing
            np.testing.assert_array_equal(v, before[k])
        return False
    for k, v in stream.state.items():
        assert np.isfinite(v).all() and v.shape == good_state[k].shape
    return True


@SETTINGS
@given(data=st.data())
def test_any_damage_to_any_byte_is_refused(real, data):
    model, good, state = real
    position = data.draw(st.integers(0, len(good) - 1))
    value = data.draw(st.integers(0, 255).filter(lambda v: v != good[position]))
    damaged = good[:position] + bytes([value]) + good[position + 1:]
    assert not _restores_or_refuses(model, damaged, state)
    cut = data.draw(st.integers(0, len(good) - 1))
    assert not _restores_or_refuses(model, good[:cut], state)
    assert not _restores_or_refuses(model, good + data.draw(st.binary(min_size=1, max_size=9)),
                                    state)


@SETTINGS
@given(data=st.data())
def test_damage_behind_a_valid_checksum_is_still_only_a_snapshot_error(real, data):
    """A tool that rewrote the file and its checksum: the header and arrays are checked too."""
    model, good, state = real
    body = good[:-32]
    position = data.draw(st.integers(len(snapshot.MAGIC), len(body) - 1))
    value = data.draw(st.integers(0, 255))
    _restores_or_refuses(model, _rehash(body[:position] + bytes([value]) + body[position + 1:]),
                         state)


@pytest.mark.parametrize("change", [
    lambda h: h.pop("steps"), lambda h: h.update(steps=-1), lambda h: h.update(steps="7"),
    lambda h: h.update(states="h"), lambda h: h["states"][0].update(dtype="object"),
    lambda h: h["states"][0].update(shape=[1, 2 ** 40]), lambda h: h["states"][0].pop("name"),
    lambda h: h["states"].pop(), lambda h: h["states"][0].update(dtype="float64"),
    lambda h: h.update(model=7),
])
def test_a_broken_header_with_a_valid_checksum(real, change):
    model, good, state = real
    body = good[:-32]
    (n,) = np.frombuffer(body[len(snapshot.MAGIC):len(snapshot.MAGIC) + 4], "<u4")
    start = len(snapshot.MAGIC) + 4
    header = json.loads(body[start:start + n])
    change(header)
    head = json.dumps(header).encode()
    data = _rehash(body[:len(snapshot.MAGIC)] + np.uint32(len(head)).tobytes() + head
                   + body[start + n:])
    with pytest.raises(SnapshotError):
        model.stream().restore(data)


def test_non_finite_state_is_refused(real):
    model, good, state = real
    bad = {k: np.where(np.arange(v.size).reshape(v.shape) == 3, np.nan, v).astype(v.dtype)
           for k, v in state.items()}
    with pytest.raises(SnapshotError, match="holds NaN or inf"):
        model.stream().restore(snapshot.dumps(model.fingerprint, bad, 7))
    pool = model.pool()
    with pytest.raises(SnapshotError, match="holds NaN or inf"):
        pool.restore(pool.open(), snapshot.dumps(model.fingerprint, bad, 7))


def _legacy_snapshot(model, state: dict, steps: int) -> bytes:
    """A snapshot as edgernn wrote it before canonical JSON: the fingerprint hashed Python's
    repr of each state's shape, and the header had json.dumps' default spaces."""
    c = model.contract
    parts = [c.provenance.weights_sha256, c.quantization.mode if c.quantization else "fp32"]
    parts += [f"{s.name}:{s.shape}:{s.dtype}" for s in c.states]
    old = hashlib.sha256("|".join(parts).encode()).hexdigest()
    header = json.dumps({"model": old, "steps": steps, "states": [
        {"name": k, "dtype": str(v.dtype), "shape": list(v.shape)} for k, v in state.items()]},
        sort_keys=True).encode()
    body = snapshot.MAGIC + len(header).to_bytes(4, "little") + header + b"".join(
        np.ascontiguousarray(v).tobytes() for v in state.values())
    return _rehash(body)


def test_the_fingerprint_is_canonical_json_and_older_snapshots_still_restore(real):
    from edgernn.contract import canonical_json, state_fingerprint

    model, blob, state = real
    c = model.contract
    assert model.fingerprint == state_fingerprint(
        c.provenance.weights_sha256, "fp32", c.states) == hashlib.sha256(canonical_json({
            "weights": c.provenance.weights_sha256, "quantization": "fp32",
            "states": [{"name": s.name, "shape": s.shape, "dtype": s.dtype}
                       for s in c.states]})).hexdigest()
    assert b'{"model":"' + model.fingerprint.encode() + b'","states":[' in blob
    stream = model.stream()
    stream.restore(_legacy_snapshot(model, state, 7))     # a state file from before: kept
    assert stream.steps == 7
    for k, v in state.items():
        np.testing.assert_array_equal(stream.state[k], v)
    assert stream.snapshot() == blob                       # and re-saved in today's form


FORMS = ("lstm_step.onnx", "lstm_step_fused.onnx", "lstm_step_lean.onnx", "lstm_chunk.onnx")
INT8 = "lstm_step_int8.onnx"                  # per-layer (batch, hidden): quantize flattens it


def test_a_snapshot_moves_between_every_step_and_chunk_form_of_the_same_weights(models):
    """Issue 27: the compact step export keeps h as (batch, 16), the lean one per layer, the
    fused and chunk ones as (batch, 2, 8); a snapshot of any restores in any (stream and pool)
    and continues as the stream it was taken from would. Tolerance SPLITS: the forms compute the
    same float32 step with sums possibly in another order."""
    from tests.tolerances import SPLITS

    x = np.random.default_rng(4).normal(size=(30, 4)).astype(np.float32)
    for source in FORMS:
        stream = load(models / source).stream()
        stream.feed(x[:20])
        blob, want = stream.snapshot(), stream.feed(x[20:])
        for target in FORMS:
            model = load(models / target)
            other = model.stream()
            other.restore(blob)
            assert other.steps == 20
            got = other.feed(x[20:])
            assert float(np.abs(got - want).max()) <= SPLITS, (source, target)
            pool = model.pool()
            sid = pool.open()
            pool.restore(sid, blob)
            assert float(np.abs(pool.step({sid: x[20]})[sid] - want[0]).max()) <= SPLITS


def test_a_snapshot_of_another_precision_or_model_is_refused_saying_which(models):
    x = np.random.default_rng(5).normal(size=(5, 4)).astype(np.float32)
    fp32 = load(models / "lstm_step_lean.onnx").stream()
    fp32.feed(x)
    int8 = load(models / INT8).stream()
    with pytest.raises(SnapshotError, match="taken from the fp32 file of these weights; this "
                                            "file is dynamic"):
        int8.restore(fp32.snapshot())
    with pytest.raises(SnapshotError, match="belongs to another model"):
        load(models / "other_weights.onnx").stream().restore(fp32.snapshot())
