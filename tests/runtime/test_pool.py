"""The pool: many streams in one batched call, each equal to running it alone."""

import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgernn.errors import DataError, SnapshotError
from edgernn.runtime import load
from tests.tolerances import POOLED

ATOL = POOLED

ops = st.lists(st.one_of(st.just(("open",)), st.tuples(st.just("close"), st.integers(0, 50)),
                         st.tuples(st.just("step"), st.integers(1, 2 ** 16))),
               min_size=1, max_size=40)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schedule=ops, graph=st.sampled_from(["lstm_step", "lstm_chunk", "gru_step_decomposed"]))
def test_pool_equals_lone_streams_while_streams_join_and_leave(models, schedule, graph):
    model = load(models / f"{graph}.onnx")
    pool = model.pool()
    alone = {}
    rng = np.random.default_rng(0)
    for op in schedule:
        if op[0] == "open":
            alone[pool.open()] = model.stream()
        elif op[0] == "close" and alone:
            victim = sorted(alone)[op[1] % len(alone)]
            pool.close(victim)
            del alone[victim]
        elif op[0] == "step" and alone:
            chosen = [i for k, i in enumerate(sorted(alone)) if op[1] >> (k % 16) & 1] \
                or sorted(alone)[:1]
            frames = {i: rng.normal(size=4).astype(np.float32) for i in chosen}
            out = pool.step(frames)
            assert set(out) == set(chosen)
            for i in chosen:
                np.testing.assert_allclose(out[i], alone[i].step(frames[i]), rtol=0, atol=ATOL)
    assert len(pool) == len(alone)


def test_pool_grows_past_its_capacity(models):
    model = load(models / "lstm_step.onnx")
    pool = model.pool()
    ids = [pool.open() for _ in range(40)]
    x = np.random.default_rng(0).normal(size=(40, 4)).astype(np.float32)
    out = pool.step(dict(zip(ids, x)))
    for i, frame in zip(ids, x):
        np.testing.assert_allclose(out[i], model.stream().step(frame), rtol=0, atol=ATOL)


def test_pool_is_safe_from_several_threads(models):
    model = load(models / "lstm_step.onnx")
    pool = model.pool()
    inputs = [np.random.default_rng(s).normal(size=(100, 4)).astype(np.float32) for s in range(4)]
    ids = [pool.open() for _ in inputs]
    results = [[] for _ in inputs]

    def work(k):
        for frame in inputs[k]:
            results[k].append(pool.step({ids[k]: frame})[ids[k]])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, x in enumerate(inputs):
        np.testing.assert_allclose(np.stack(results[k]), model.stream().feed(x), rtol=0,
                                   atol=ATOL)


def test_pool_snapshots_and_reset(models):
    model = load(models / "lstm_step.onnx")
    pool = model.pool()
    a = pool.open()
    x = np.random.default_rng(1).normal(size=(6, 4)).astype(np.float32)
    for f in x[:3]:
        pool.step({a: f})
    blob = pool.snapshot(a)
    stream = model.stream()
    stream.restore(blob)                          # pool and stream snapshots interchange
    np.testing.assert_allclose(pool.step({a: x[3]})[a], stream.step(x[3]), rtol=0, atol=ATOL)
    b = pool.open()
    pool.restore(b, blob)
    np.testing.assert_allclose(pool.step({b: x[3]})[b], model.stream().feed(x[:4])[-1], rtol=0,
                               atol=ATOL)
    pool.reset(a)
    np.testing.assert_allclose(pool.step({a: x[0]})[a], model.stream().step(x[0]), rtol=0,
                               atol=ATOL)
    other = load(models / "other_weights.onnx").pool()
    c = other.open()
    with pytest.raises(SnapshotError, match="belongs to another model"):
        other.restore(c, blob)


def test_pool_errors(models):
    pool = load(models / "lstm_step.onnx").pool()
    a = pool.open()
    with pytest.raises(DataError, match="no open stream with id 99"):
        pool.step({99: np.zeros(4)})
    with pytest.raises(DataError, match=r"takes frames of shape \(T, 4\)"):
        pool.step({a: np.zeros(3)})
    with pytest.raises(DataError, match="frames have different shapes"):
        b = pool.open()
        pool.step({a: np.zeros(4), b: np.zeros(3)})
    pool.close(a)
    with pytest.raises(DataError, match="no open stream with id 0"):
        pool.close(a)
    assert pool.step({}) == {}


def test_step_many_is_the_array_form_of_step(models):
    model = load(models / "lstm_chunk.onnx")
    a, b = model.pool(), model.pool()
    ids_a = [a.open() for _ in range(5)]
    ids_b = [b.open() for _ in range(5)]
    x = np.random.default_rng(2).normal(size=(3, 5, 4)).astype(np.float32)
    for t in range(3):
        many = a.step_many(ids_a[::-1], x[t][::-1])
        one = b.step(dict(zip(ids_b, x[t])))
        np.testing.assert_allclose(many[::-1], np.stack([one[i] for i in ids_b]), rtol=0,
                                   atol=ATOL)
    with pytest.raises(DataError, match="5 stream ids but 4 frames"):
        a.step_many(ids_a, x[0][:4])


def test_one_frame_per_stream_per_call(models):
    pool = load(models / "lstm_step.onnx").pool()
    a = pool.open()
    with pytest.raises(DataError, match="a stream id appears twice in one call"):
        pool.step_many([a, a], np.zeros((2, 4), np.float32))


def test_a_foreign_quantized_file_is_pooled_one_call_per_stream(models):
    """quantize_dynamic keeps the fp32 contract (quantization None) but scales activations per
    tensor per call: the pool probes the graph itself, warns, and steps each stream alone."""
    from edgernn.runtime.pool import RowsInteractWarning

    model = load(models / "lstm_step_ortq.onnx")
    assert model.contract.quantization is None and model.per_tensor_dynamic
    with pytest.warns(RowsInteractWarning, match="steps each stream in a call of its own"):
        pool = model.pool()
    ids = [pool.open() for _ in range(4)]
    alone = [model.stream() for _ in ids]
    rng = np.random.default_rng(0)
    for t in range(60):
        frames = rng.normal(size=(4, 4)).astype(np.float32) * np.array([[1], [30], [0.1], [5]],
                                                                        np.float32)
        out = pool.step_many(ids, frames) if t % 2 else np.stack(
            list(pool.step(dict(zip(ids, frames))).values()))
        for j, s in enumerate(alone):
            np.testing.assert_array_equal(out[j], s.step(frames[j]))   # exact: same calls


@pytest.mark.parametrize("graph", ["lstm_step", "lstm_chunk", "gru_step_decomposed"])
def test_step_streams_batches_stream_objects_as_if_each_ran_alone(models, graph):
    """sherpa-onnx's decode_streams, for Streams: any subset of streams, in any order, mixed
    with lone steps and feeds, gets what each stream gets alone."""
    model = load(models / f"{graph}.onnx")
    streams = [model.stream() for _ in range(4)]
    alone = [model.stream() for _ in range(4)]
    rng = np.random.default_rng(3)
    for t in range(12):
        chosen = [j for j in range(4) if rng.random() < 0.7] or [0]
        chosen = list(rng.permutation(chosen))
        frames = rng.normal(size=(len(chosen), 4)).astype(np.float32) * 5
        if t % 4 == 3:                                        # a lone feed in between
            for j, f in zip(chosen, frames):
                np.testing.assert_allclose(streams[j].feed(f[None]), alone[j].feed(f[None]),
                                           rtol=0, atol=ATOL)
            continue
        out = model.step_streams([streams[j] for j in chosen], frames)
        assert out.shape == (len(chosen), *model.output.shape[model.y_lead:])
        for y, j, f in zip(out, chosen, frames):
            np.testing.assert_allclose(y, alone[j].step(f), rtol=0, atol=ATOL)
    for s, a in zip(streams, alone):
        assert s.steps == a.steps
        for name, value in a.state.items():
            np.testing.assert_allclose(s.state[name], value, rtol=0, atol=ATOL)


def test_step_streams_is_all_or_nothing_and_refuses_what_it_cannot_batch(models):
    model = load(models / "lstm_step.onnx")
    a, b = model.stream(), model.stream()
    a.step(np.ones(4, np.float32))
    before = (a.state, b.state)
    with pytest.raises(DataError, match="NaN"):
        model.step_streams([a, b], np.array([[0, 0, 0, 0], [0, np.nan, 0, 0]], np.float32))
    for s, state in zip((a, b), before):
        for name, value in state.items():
            np.testing.assert_array_equal(s.state[name], value)
    assert (a.steps, b.steps) == (1, 0)
    with pytest.raises(DataError, match="appears twice"):
        model.step_streams([a, a], np.zeros((2, 4), np.float32))
    with pytest.raises(DataError, match="2 streams but 1 frames"):
        model.step_streams([a, b], np.zeros((1, 4), np.float32))
    other = load(models / "lstm_step.onnx")
    with pytest.raises(DataError, match="another model"):
        other.step_streams([a, other.stream()], np.zeros((2, 4), np.float32))
    with pytest.raises(DataError, match="no streams"):
        model.step_streams([], [])


def test_pool_reorder_gives_each_stream_its_parents_state(models):
    """Beam search's step: after it, stream ids[j] continues exactly as parents[j] would."""
    model = load(models / "lstm_step.onnx")
    pool = model.pool()
    ids = [pool.open() for _ in range(4)]
    rng = np.random.default_rng(4)
    history = rng.normal(size=(3, 4, 4)).astype(np.float32)
    for x in history:
        pool.step_many(ids, x * np.arange(1, 5, dtype=np.float32)[:, None])
    before = pool.gather(ids)
    parents = [ids[2], ids[2], ids[0], ids[3]]         # repeats, and a stream its own parent
    pool.reorder(ids, parents)
    after = pool.gather(ids)
    for name, value in before.items():
        axis = next(s.batch_axis for s in model.states if s.name == name)
        np.testing.assert_array_equal(after[name], np.take(value, [2, 2, 0, 3], axis=axis))
    # each continues as a lone stream that saw its parent's frames
    frame = rng.normal(size=4).astype(np.float32)
    out = pool.step_many(ids, np.stack([frame] * 4))
    for j, parent in enumerate([2, 2, 0, 3]):
        lone = model.stream()
        lone.feed(history[:, parent] * (parent + 1))
        np.testing.assert_allclose(out[j], lone.step(frame), rtol=0, atol=ATOL)
    with pytest.raises(DataError, match="one parent per stream"):
        pool.reorder(ids, ids[:2])
    with pytest.raises(DataError, match="no open stream with id 99"):
        pool.reorder(ids[:1], [99])


def test_streams_of_a_file_that_mixes_rows_are_batched_one_call_each(models):
    """model.step_streams probes the graph as the pool does: exact, each as if alone."""
    from edgernn.runtime.pool import RowsInteractWarning

    model = load(models / "lstm_step_ortq.onnx")
    streams, alone = [model.stream() for _ in range(3)], [model.stream() for _ in range(3)]
    rng = np.random.default_rng(1)
    with pytest.warns(RowsInteractWarning):
        model.step_streams(streams, np.zeros((3, 4), np.float32))
    for s in alone:
        s.step(np.zeros(4, np.float32))
    for _ in range(10):
        frames = rng.normal(size=(3, 4)).astype(np.float32) * np.array([[1], [30], [0.1]],
                                                                       np.float32)
        out = model.step_streams(streams, frames)
        for j, s in enumerate(alone):
            np.testing.assert_array_equal(out[j], s.step(frames[j]))
