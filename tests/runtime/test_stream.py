"""Stream properties (Hypothesis) and errors. Uses only edgernn.runtime: runs on a device."""

import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgernn.errors import DataError, NonFiniteError, SnapshotError, StreamingError
from edgernn.runtime import load
from tests.tolerances import SPLITS

ATOL = SPLITS
SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def frames(n, seed=0, f=4):
    return np.random.default_rng(seed).normal(size=(n, f)).astype(np.float32)


def splits(draw_sizes, n):
    out, t = [], 0
    for size in draw_sizes:
        if t >= n:
            break
        out.append((t, min(n, t + size)))
        t += size
    if t < n:
        out.append((t, n))
    return out


@SETTINGS
@given(n=st.integers(1, 30), sizes=st.lists(st.integers(1, 8), max_size=30),
       graph=st.sampled_from(["lstm_step", "lstm_chunk"]), seed=st.integers(0, 10_000))
def test_any_split_equals_the_whole_sequence(models, n, sizes, graph, seed):
    model = load(models / f"{graph}.onnx")
    x = frames(n, seed)
    whole = model.stream().feed(x)
    stream = model.stream()
    parts = []
    for a, b in splits(sizes, n):
        parts.append(stream.step(x[a])[None] if b - a == 1 else stream.feed(x[a:b]))
    np.testing.assert_allclose(np.concatenate(parts), whole, rtol=0, atol=ATOL)
    assert stream.steps == n
    # a step graph and a chunk graph of the same weights agree too
    other = load(models / "lstm_chunk.onnx" if graph == "lstm_step" else
                 models / "lstm_step.onnx").stream().feed(x)
    np.testing.assert_allclose(other, whole, rtol=0, atol=ATOL)


@SETTINGS
@given(n=st.integers(1, 20), m=st.integers(1, 20), seed=st.integers(0, 10_000))
def test_a_reset_stream_equals_a_fresh_one(models, n, m, seed):
    model = load(models / "lstm_step.onnx")
    used = model.stream()
    used.feed(frames(n, seed))
    used.reset()
    x = frames(m, seed + 1)
    np.testing.assert_array_equal(used.feed(x), model.stream().feed(x))
    assert used.steps == m


@SETTINGS
@given(n=st.integers(1, 20), m=st.integers(1, 20), seed=st.integers(0, 10_000))
def test_a_restored_snapshot_continues_exactly(models, n, m, seed):
    model = load(models / "lstm_chunk.onnx")
    a = model.stream()
    a.feed(frames(n, seed))
    blob = a.snapshot()
    rest = frames(m, seed + 1)
    expected = a.feed(rest)
    b = model.stream()
    b.restore(blob)
    assert b.steps == n
    np.testing.assert_array_equal(b.feed(rest), expected)


def test_snapshot_to_file_and_across_graph_kinds(models, tmp_path):
    step = load(models / "lstm_step_fused.onnx").stream()
    step.feed(frames(7))
    step.save(tmp_path / "s.state")
    chunk = load(models / "lstm_chunk.onnx").stream()   # same weights, another graph kind
    chunk.load(tmp_path / "s.state")
    x = frames(5, 3)
    np.testing.assert_allclose(chunk.feed(x), step.feed(x), rtol=0, atol=ATOL)
    assert [p.name for p in tmp_path.iterdir()] == ["s.state"]


@pytest.mark.parametrize("name", ["lstm_step", "lstm_step_fused", "lstm_step_lean"])
def test_frames_in_data_units_or_already_normalised(models, name):
    model = load(models / f"{name}.onnx")
    pre = model.contract.preprocessing
    assert pre.in_graph                     # folded into the graph's first layer at export
    x = frames(6)
    normalised = (x - np.asarray(pre.mean, np.float32)) / np.asarray(pre.std, np.float32)
    np.testing.assert_allclose(model.stream().feed(x),
                               model.stream(normalize=False).feed(normalised),
                               rtol=0, atol=1e-5)


def test_threads_stepping_different_streams_never_mix_state(models):
    model = load(models / "lstm_step.onnx")
    inputs = [frames(200, seed) for seed in range(6)]
    expected = [model.stream().feed(x) for x in inputs]
    results = [None] * 6

    def work(i):
        stream = model.stream()
        results[i] = np.stack([stream.step(f) for f in inputs[i]])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, expected):
        np.testing.assert_allclose(got, want, rtol=0, atol=ATOL)


def test_helpers(models):
    stream = load(models / "lstm_step.onnx").stream()
    y = stream.step(frames(1)[0])
    assert stream.label(y) in ("low", "mid", "high")
    assert stream.probabilities(y).sum() == pytest.approx(1.0)
    lm = load(models / "lm_step.onnx").stream()
    ids = lm.encode("abc ")
    out = lm.feed(ids)
    assert out.shape == (4, 12)
    ch = lm.sample(out[-1], temperature=0.7, top_k=3, rng=np.random.default_rng(0))
    assert ch in "abcdefgh .,\n"
    assert lm.sample(out[-1], temperature=0) == "abcdefgh .,\n"[int(out[-1].argmax())]


# ---------------------------------------------------------------------------- errors

@pytest.mark.parametrize("frame, error, message", [
    (np.zeros(5, np.float32), DataError,
     r"this model takes one frame of shape \(4,\); got an array of shape \(5,\)"),
    (np.zeros((1, 4), np.float32), DataError, r"got an array of shape \(1, 4\)"),
    (np.array(["a", "b", "c", "d"]), DataError, "this model takes numeric frames, got dtype <U1"),
    (np.array([0.0, np.nan, np.inf, 1.0], np.float32), NonFiniteError,
     r"the frame holds 2 NaN or infinite value\(s\); the stream's state was left unchanged"),
    ([0.0, float("nan"), 0.0, 0.0], NonFiniteError, "holds 1 NaN"),
])
def test_bad_frames_raise_and_leave_the_state_unchanged(models, frame, error, message):
    stream = load(models / "lstm_step.onnx").stream()
    stream.feed(frames(3))
    before = stream.state
    with pytest.raises(error, match=message):
        stream.step(frame)
    after = stream.state
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert stream.steps == 3


def test_a_failed_feed_leaves_the_state_unchanged(models):
    stream = load(models / "lstm_step.onnx").stream()
    stream.feed(frames(3))
    before = stream.state
    x = frames(5)
    x[3, 1] = np.nan
    with pytest.raises(NonFiniteError):
        stream.feed(x)
    with pytest.raises(DataError, match="feed\\(\\) got no frames"):
        stream.feed(np.zeros((0, 4), np.float32))
    assert all(np.array_equal(before[k], stream.state[k]) for k in before)


def test_token_ids_must_be_integers(models):
    stream = load(models / "lm_step.onnx").stream()
    with pytest.raises(DataError, match="takes integer token ids, got float64"):
        stream.step(np.float64(1.0))
    with pytest.raises(DataError, match=r"character\(s\) 'z' are not in this model's vocabulary"):
        stream.encode("z")


def test_snapshot_of_another_model_is_refused(models):
    a = load(models / "lstm_step.onnx").stream()
    b = load(models / "other_weights.onnx").stream()
    with pytest.raises(SnapshotError, match="the snapshot belongs to another model"):
        b.restore(a.snapshot())


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:40], "truncated|corrupt"),
    (lambda b: b[:-1], "corrupt or truncated"),
    (lambda b: b[:30] + bytes([b[30] ^ 1]) + b[31:], "corrupt or truncated"),
    (lambda b: b"not a snapshot at all", "not an edgernn state snapshot"),
])
def test_damaged_snapshots_are_refused(models, damage, message):
    stream = load(models / "lstm_step.onnx").stream()
    stream.feed(frames(4))
    before = stream.state
    with pytest.raises(SnapshotError, match=message):
        stream.restore(damage(stream.snapshot()))
    assert all(np.array_equal(before[k], stream.state[k]) for k in before)


def test_missing_snapshot_file(models, tmp_path):
    with pytest.raises(SnapshotError, match="cannot read snapshot"):
        load(models / "lstm_step.onnx").stream().load(tmp_path / "none.state")


def test_bidirectional_model_cannot_stream(models):
    model = load(models / "bidi_sequence.onnx")
    with pytest.raises(StreamingError, match="'sequence' graph .* cannot stream"):
        model.stream()
    y, _ = model.run(frames(6)[None])
    assert y.shape == (1, 3)


def test_huge_finite_frames_raise_no_library_warning(models):
    """Issue 27: numpy's 'overflow encountered in dot' reached the user from the finite check;
    a frame of finite huge values is the model's to compute, quietly."""
    import warnings

    stream = load(models / "lstm_step.onnx").stream()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = stream.step(np.full(4, 3e38, np.float32))
    assert y.shape == (3,)
