"""The Python-backend model's bookkeeping on its own (no server): correlation IDs to pool
streams, START/END, the idle timeout, and bad frames failing only their own request."""

from __future__ import annotations

import time

import numpy as np
import pytest

from edgernn.runtime import load
from edgernn.serving.triton_model import Sequences
from tests.serving.conftest import frames
from tests.tolerances import BATCHED_EXACT


@pytest.fixture
def seqs(serve_models):
    return Sequences(load(serve_models["lstm"]), idle_seconds=0.3)


def test_interleaved_sequences_match_lone_streams(seqs, serve_models):
    model = load(serve_models["lstm"])
    data = {corr: frames(corr, 12) for corr in (11, 22, 33)}
    lone = {corr: model.stream().feed(x) for corr, x in data.items()}
    for t in range(12):
        order = [11, 22, 33] if t % 2 else [33, 11, 22]           # batches in any order
        out = seqs.step([(c, t == 0, False, data[c][t]) for c in order])
        for c, y in zip(order, out):
            np.testing.assert_allclose(y, lone[c][t], atol=BATCHED_EXACT)


def test_start_resets_end_frees_and_unknown_sequences_are_refused(seqs):
    x = frames(1, 3)
    first = seqs.step([(5, True, False, x[0])])[0]
    seqs.step([(5, False, False, x[1])])
    again = seqs.step([(5, True, False, x[0])])[0]                # START on a live sequence
    np.testing.assert_array_equal(first, again)
    seqs.step([(5, False, True, x[1])])                           # END: stepped, then freed
    assert 5 not in seqs.streams and len(seqs.pool) == 0
    msg = seqs.step([(5, False, False, x[2])])[0]
    assert isinstance(msg, str) and "START" in msg


def test_idle_sequences_are_released(seqs):
    x = frames(2, 2)
    seqs.step([(7, True, False, x[0]), (8, True, False, x[0])])
    time.sleep(0.45)
    out = seqs.step([(8, True, False, x[1])])                     # 8 starts again; 7 idled out
    assert not isinstance(out[0], str)
    assert 7 not in seqs.streams
    assert "idled past 0.3 s" in seqs.step([(7, False, False, x[1])])[0]


def test_a_bad_frame_fails_only_its_own_request(seqs, serve_models):
    model = load(serve_models["lstm"])
    x = frames(3, 2)
    lone = model.stream().feed(x)
    seqs.step([(1, True, False, x[0]), (2, True, False, x[0])])
    nan = x[1].copy()
    nan[2] = np.nan
    out = seqs.step([(1, False, False, nan), (2, False, False, x[1]),
                     (3, True, False, np.zeros(7, np.float32)), (2, False, False, x[1])])
    assert "NaN" in out[0] and "shape (7,)" in out[2] and "two frames" in out[3]
    np.testing.assert_allclose(out[1], lone[1], atol=BATCHED_EXACT)
    y = seqs.step([(1, False, False, x[1])])[0]                   # 1's state was left as it was
    np.testing.assert_allclose(y, lone[1], atol=BATCHED_EXACT)
