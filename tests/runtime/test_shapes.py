"""Every runtime path against a plain ONNX Runtime call, on foreign files of output ranks 1-4,
fp16/fp32/fp64, and no batch axis (:mod:`tests.runtime.shapes`).

Tolerance: 0 for step, feed, model.run and lone pool rows (the same kernels on the same inputs
in the same dtype); pooled rows of a batch of 3 get 1e-6 x the dtype's scale, since a batched
matrix product may sum in another order than a one-row one (~1e-7 seen in fp32).
"""

import importlib.util
import json
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgernn.errors import DataError, StreamingError
from edgernn.runtime import load
from tests.conftest import run_cli
from tests.runtime.shapes import BATCH_ATOL, FEATURES, SHAPES, build_one, plain_ort

STEPS = 7


def _load(models, key):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load(models / f"shape_{key}.onnx")


def _frames(seed=0):
    return np.random.default_rng(seed).normal(size=(STEPS, FEATURES)).astype(np.float32)


@pytest.mark.parametrize("key", SHAPES)
def test_step_and_feed_equal_plain_onnxruntime(models, key):
    dtype, tail, batched = SHAPES[key]
    want, last = plain_ort(models / f"shape_{key}.onnx", _frames())
    stream = _load(models, key).stream()
    got = [stream.step(f) for f in _frames()]
    assert all(g.shape == tail and g.dtype == np.dtype(dtype) for g in got), \
        [(g.shape, g.dtype) for g in got]
    np.testing.assert_array_equal(np.array(got), want)
    np.testing.assert_array_equal(stream.state["h_in"], last)
    stream.reset()
    fed = stream.feed(_frames())
    assert fed.shape == (STEPS, *tail) and fed.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(fed, want)
    stream.reset()                                 # any split: steps and chunks mixed
    mixed = np.concatenate([stream.feed(_frames()[:3]), stream.step(_frames()[3])[None],
                            stream.feed(_frames()[4:])])
    np.testing.assert_array_equal(mixed, want)


@pytest.mark.parametrize("key", SHAPES)
def test_model_run_equals_plain_onnxruntime(models, key):
    dtype, tail, batched = SHAPES[key]
    model = _load(models, key)
    want, _ = plain_ort(models / f"shape_{key}.onnx", _frames()[:1])
    x = _frames()[:1] if batched else _frames()[0]
    y, states = model.run(x)
    np.testing.assert_array_equal(y[0] if batched else y, want[0])
    assert y.dtype == np.dtype(dtype) and states["h_in"].dtype == np.dtype(dtype)


@pytest.mark.parametrize("key", [k for k, v in SHAPES.items() if v[2]])
def test_pool_rows_equal_plain_onnxruntime(models, key):
    dtype, tail, _ = SHAPES[key]
    pool = _load(models, key).pool()
    ids = [pool.open() for _ in range(3)]
    streams = {i: _frames(seed=n) * (1 + 10 * n) for n, i in enumerate(ids)}
    wants = {i: plain_ort(models / f"shape_{key}.onnx", f)[0] for i, f in streams.items()}
    atol = BATCH_ATOL[dtype] * max(1.0, float(np.abs(np.concatenate(
        [w.ravel() for w in wants.values()])).max()))
    for t in range(STEPS):
        if t % 2:
            out = pool.step({i: f[t] for i, f in streams.items()})
        else:
            ys = pool.step_many(ids, np.stack([streams[i][t] for i in ids]))
            assert ys.shape == (3, *tail) and ys.dtype == np.dtype(dtype)
            out = dict(zip(ids, ys))
        for i in ids:
            assert out[i].shape == tail and out[i].dtype == np.dtype(dtype)
            np.testing.assert_allclose(out[i].astype(np.float64), wants[i][t], rtol=0,
                                       atol=atol)
    # a stream stepped on its own in the pool (the gather path)
    lone = pool.step({ids[1]: streams[ids[1]][0]})
    np.testing.assert_allclose(lone[ids[1]].astype(np.float64), plain_ort(
        models / f"shape_{key}.onnx", np.concatenate([streams[ids[1]], streams[ids[1]][:1]])
    )[0][-1], rtol=0, atol=atol)


def test_a_file_without_batch_axis_streams_but_does_not_pool(models):
    model = _load(models, "nobatch_f32")
    assert model.stream().frame_shape == (FEATURES,)
    with pytest.raises(StreamingError, match=r"no batch axis.*model.stream\(\)"):
        model.pool()


def test_model_run_refuses_a_wrong_shape_with_its_own_message(models):
    model = _load(models, "rank2_f32")
    with pytest.raises(DataError, match=r"x has shape \(1, 5\); this model takes 'x' shaped "
                                        r"\('batch', 3\)"):
        model.run(np.zeros((1, 5), np.float32))
    with pytest.raises(DataError, match="states lacks 'h_in'"):
        model.run(np.zeros((1, 3), np.float32), {})


@pytest.mark.parametrize("key", ["rank1_f32", "rank3_f16", "rank1_f64"])
def test_cli_run_prints_what_plain_onnxruntime_computes(models, tmp_path, key):
    frames = _frames()
    want, _ = plain_ort(models / f"shape_{key}.onnx", frames)
    (tmp_path / "x.csv").write_text("\n".join(",".join(repr(float(v)) for v in f)
                                              for f in frames))
    done = run_cli("run", models / f"shape_{key}.onnx", tmp_path / "x.csv")
    assert done.returncode == 0, done.stderr
    got = np.array([json.loads(line)["y"] for line in done.stdout.splitlines()])
    np.testing.assert_allclose(got, want.astype(np.float64), rtol=0, atol=1e-6)  # 6 decimals


@pytest.mark.skipif(importlib.util.find_spec("onnx") is None,
                    reason="builds its files with onnx (the device venv has none)")
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dtype=st.sampled_from(["float16", "float32", "float64"]),
       tail=st.lists(st.integers(1, 4), max_size=3).map(tuple), batched=st.booleans(),
       cuts=st.lists(st.integers(1, 4), min_size=1, max_size=5), seed=st.integers(0, 99))
def test_any_output_shape_and_dtype_streams_as_plain_onnxruntime(tmp_path_factory, dtype, tail,
                                                                  batched, cuts, seed):
    """Property: for an output [batch, *tail] (or [*tail]) of any rank 1-4 in any float dtype,
    any mix of step() and feed() calls equals plain ONNX Runtime exactly, and pooled rows
    (when the file has a batch axis) equal it within BATCH_ATOL."""
    path = build_one(tmp_path_factory.mktemp("prop") / "m.onnx", dtype, tail, batched, seed)
    frames = np.random.default_rng(seed).normal(size=(sum(cuts), FEATURES)).astype(np.float32)
    want, last = plain_ort(path, frames)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load(path)
    stream, got, at = model.stream(), [], 0
    for n in cuts:                                  # 1 frame: step(); more: feed()
        got += [stream.step(frames[at])] if n == 1 else list(stream.feed(frames[at:at + n]))
        at += n
    assert all(g.shape == tail and g.dtype == np.dtype(dtype) for g in got)
    np.testing.assert_array_equal(np.array(got), want)
    np.testing.assert_array_equal(stream.state["h_in"], last)
    if batched:
        pool = model.pool()
        ids = [pool.open(), pool.open()]
        other = frames[::-1] * 3
        atol = BATCH_ATOL[dtype] * max(1.0, float(np.abs(want).max()))
        for t in range(len(frames)):
            ys = pool.step_many(ids, np.stack([frames[t], other[t]]))
            assert ys.shape == (2, *tail) and ys.dtype == np.dtype(dtype)
            np.testing.assert_allclose(ys[0].astype(np.float64), want[t], rtol=0, atol=atol)


@pytest.mark.parametrize("key", [k for k, v in SHAPES.items() if v[2]])
def test_step_streams_equals_plain_onnxruntime(models, key):
    dtype, tail, _ = SHAPES[key]
    model = _load(models, key)
    streams = [model.stream() for _ in range(3)]
    inputs = [_frames(seed=n) * (1 + 10 * n) for n in range(3)]
    wants = [plain_ort(models / f"shape_{key}.onnx", f)[0] for f in inputs]
    atol = BATCH_ATOL[dtype] * max(1.0, max(float(np.abs(w).max()) for w in wants))
    for t in range(STEPS):
        order = [2, 0, 1] if t % 2 else [0, 1, 2]
        ys = model.step_streams([streams[j] for j in order], [inputs[j][t] for j in order])
        assert ys.shape == (3, *tail) and ys.dtype == np.dtype(dtype)
        for y, j in zip(ys, order):
            np.testing.assert_allclose(y.astype(np.float64), wants[j][t], rtol=0, atol=atol)


def test_a_file_without_batch_axis_cannot_batch_its_streams(models):
    model = _load(models, "nobatch_f32")
    with pytest.raises(StreamingError, match=r"no batch axis.*model.stream\(\)"):
        model.step_streams([model.stream(), model.stream()], _frames()[:2])
