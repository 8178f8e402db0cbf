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
    assert load(models / "lstm_step_lean.onnx").kernels           # fp32: its Step nodes
    assert not load(models / "lstm_step_fused.onnx").kernels      # no ai.edgernn node in it
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


def _exact(q, w):
    return (w.astype(np.int64) - 128) @ q.astype(np.int64)


def test_every_product_path_gives_the_exact_integer_sums_for_every_byte():
    """Each path the library has on this CPU (issue 27: AVX2's sign trick once gave -128 for a
    weight byte 0 whose activation was negative) against the exact sums, for every weight byte
    0..255 against every activation byte -128..127, at widths around the vector width."""
    assert "portable" in kernels.paths(), kernels.paths()
    every = np.arange(256)
    for k in (1, 7, 31, 32, 33, 64, 255, 256, 257, 300):
        for rows in (1, 3, 4, 5, 9):
            w = np.stack([np.resize(np.roll(every, 37 * r + k), k) for r in range(rows)])
            q = np.resize(np.roll(every, k) - 128, k)
            for extreme in (q, np.full(k, -128), np.full(k, 127)):
                want = _exact(extreme, w)
                for name in kernels.paths():
                    got = kernels.product(name, extreme.astype(np.int8), w.astype(np.uint8))
                    assert np.array_equal(got, want), (name, k, rows)
    for name in kernels.paths():                            # all zero bytes, all 255
        for byte in (0, 255):
            w = np.full((5, 64), byte, np.uint8)
            assert np.array_equal(kernels.product(name, np.full(64, -128, np.int8), w),
                                  _exact(np.full(64, -128), w)), (name, byte)


def test_rows_in_pairs_share_the_weights_and_get_the_same_exact_sums():
    """A pool's rows go through the product in pairs (one pass over the weights for two rows):
    every row's sums are still the exact integers, for odd and even counts, both forms (a weight
    byte 0 takes the careful one) and the activation -128."""
    rng = np.random.default_rng(5)
    for k in (31, 32, 96, 257):
        for n in (1, 2, 3, 5):
            q = rng.integers(-128, 128, (n, k))
            q[:, ::7] = -128
            for low in (1, 0):                               # edgernn's own bytes; any byte
                w = rng.integers(low, 256, (9, k))
                want = np.stack([_exact(row, w) for row in q])
                for name in kernels.paths():
                    got = kernels.product(name, q.astype(np.int8), w.astype(np.uint8))
                    assert np.array_equal(got, want), (name, k, n, low)


def test_the_float_product_has_the_same_bits_on_every_path_alone_and_in_pairs():
    """A frame's float product is a chain of fused multiply-adds in k's order on every path
    (FMA3 on x86's AVX2 path, fmaf elsewhere), so every path, and a row alone or paired with
    another, gives the same bits; and it is the product within float rounding."""
    rng = np.random.default_rng(6)
    for i, g in ((40, 512), (7, 33), (64, 100), (1, 8)):
        x = rng.normal(size=(5, i)).astype(np.float32) * 3
        w = rng.normal(size=(i, g)).astype(np.float32)
        alone = np.stack([kernels.float_product("portable", row, w)[0] for row in x])
        np.testing.assert_allclose(alone, x.astype(np.float64) @ w, rtol=1e-5, atol=1e-4)
        for name in kernels.paths():
            assert np.array_equal(kernels.float_product(name, x, w), alone), (name, i, g)
            assert np.array_equal(kernels.float_product(name, x[:1], w), alone[:1]), (name, i, g)


def test_a_lower_path_is_forced_by_the_environment(monkeypatch):
    best = kernels.paths()[-1]
    assert kernels.path() == best
    monkeypatch.setenv(kernels.PATH_ENV, "portable")
    assert kernels.path() == "portable"
    assert "portable path" in kernels.status()
    monkeypatch.setenv(kernels.PATH_ENV, "no-such-path")
    assert kernels.path() == best and "names no path" in kernels.status()
