"""edgernn's int8 kernels in an installed runtime (this also runs in the torch-free device
venv, on the wheel ``make device-test`` builds): the library is there, the runtime registers it
for a file with ``ai.edgernn`` nodes, and every path of the runtime gives through it what the
file's plain-ONNX functions give.

Tolerances: one step from the same state 1e-5 (identical integer sums; the kernel's sigmoid and
tanh round differently from ONNX Runtime's by ~1e-7); a pooled stream against the same stream
alone exact (rows are computed alone); streams over many fed-back steps within int8 error of
each other (INT8_VS_FP32), because a state value on an 8-bit rounding boundary may go either way.
"""

import numpy as np

from edgernn.runtime import kernels, load
from tests.tolerances import INT8_VS_FP32

ONE_STEP = 1e-5


def _frames(n, seed=0):
    return np.random.default_rng(seed).normal(0.5, 2.0, (n, 4)).astype(np.float32)


def test_the_installed_runtime_has_its_kernels(models):
    assert kernels.library(), "the install built no edgernn.runtime._cells8 (needs a C++ compiler)"
    model = load(models / "lstm_step_int8.onnx")
    assert model.kernels
    assert not load(models / "lstm_step_lean.onnx").kernels       # no ai.edgernn node in it
    with kernels.turned_off():
        assert not load(models / "lstm_step_int8.onnx").kernels


def test_every_path_agrees_with_the_functions(models):
    path = models / "lstm_step_int8.onnx"
    fast = load(path)
    with kernels.turned_off():
        plain = load(path)
    xs = _frames(200)
    a, b = fast.stream(), plain.stream()
    np.testing.assert_allclose(a.step(xs[0]), b.step(xs[0]), rtol=0, atol=ONE_STEP)
    ys_fast, ys_plain = fast.stream().feed(xs), plain.stream().feed(xs)
    assert ys_fast.shape == ys_plain.shape and np.isfinite(ys_fast).all()
    assert float(np.abs(ys_fast - ys_plain).max()) <= INT8_VS_FP32
    # step by step, in a pool beside loud and silent rows, and resumed from a snapshot
    lone = fast.stream()
    pool = fast.pool()
    loud, target, silent = pool.open(), pool.open(), pool.open()
    for t, x in enumerate(xs[:60]):
        if t == 30:
            blob = lone.snapshot()
            lone = fast.stream()
            lone.restore(blob)
        out = pool.step({loud: x * 50 + 10, target: x, silent: np.zeros(4, np.float32)})
        y = lone.step(x)
        assert np.array_equal(out[target], y), t
        assert np.array_equal(y, ys_fast[t]), t
