"""Served streams against a plain ONNX Runtime call, on the foreign files of
:mod:`tests.runtime.shapes`: outputs of rank 1-4 (one number per stream included), float16,
float32 and float64, through a real tritonserver on 127.0.0.1.

Tolerance: streams are interleaved so the server batches their rows into one call; a batched
matrix product may sum in another order than a one-row one, so rows get 1e-6 x the dtype's
scale (2e-3 for float16, whose step is 1e-3), as in tests/runtime/test_shapes.py."""

from __future__ import annotations

import numpy as np
import pytest

from edgernn.errors import ConfigError
from edgernn.runtime.remote import connect
from edgernn.serving import Options, Server, write_repository
from tests.runtime.shapes import BATCH_ATOL, FEATURES, SHAPES, build, plain_ort

BATCHED = [k for k, v in SHAPES.items() if v[2]]
STEPS = 6


@pytest.fixture(scope="module")
def shapes_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shapes")
    build(folder)
    repo = folder / "repo"
    for key in BATCHED:
        write_repository(folder / f"shape_{key}.onnx", repo, Options(name=key))
    with open(folder / "server.log", "wb") as log:
        with Server(repo, log=log, exit_seconds=1).start() as server:
            yield server, folder


@pytest.mark.parametrize("key", BATCHED)
def test_served_streams_equal_plain_onnxruntime(shapes_server, key):
    server, folder = shapes_server
    dtype, tail, _ = SHAPES[key]
    inputs = [np.random.default_rng(n).normal(size=(STEPS, FEATURES)).astype(np.float32)
              * (1 + 10 * n) for n in range(3)]
    wants = [plain_ort(folder / f"shape_{key}.onnx", x)[0] for x in inputs]
    atol = BATCH_ATOL[dtype] * max(1.0, max(float(np.abs(w).max()) for w in wants))
    remote = connect(server.grpc_url, model=key)
    streams = [remote.stream() for _ in inputs]
    got = [[] for _ in inputs]
    for t in range(STEPS):                          # interleaved: rows share server calls
        for n, s in enumerate(streams):
            got[n].append(s.step(inputs[n][t]))
    for n, s in enumerate(streams):
        assert all(g.shape == tail and g.dtype == np.dtype(dtype) for g in got[n]), \
            [(g.shape, g.dtype) for g in got[n]]
        np.testing.assert_allclose(np.array(got[n], np.float64), wants[n], rtol=0, atol=atol)
        s.reset()                                   # feed: the same sequence again, from START
        fed = s.feed(inputs[n])
        assert fed.shape == (STEPS, *tail) and fed.dtype == np.dtype(dtype)
        np.testing.assert_allclose(fed.astype(np.float64), wants[n], rtol=0, atol=atol)
        s.close()


def test_a_file_without_a_batch_axis_is_refused_before_writing(tmp_path):
    build(tmp_path)
    with pytest.raises(ConfigError, match=r"Triton batches the frames of its sequences: state "
                                          r"h_in has no batch axis"):
        write_repository(tmp_path / "shape_nobatch_f32.onnx", tmp_path / "repo",
                         Options(name="nobatch"))
    assert not (tmp_path / "repo" / "nobatch").exists()
