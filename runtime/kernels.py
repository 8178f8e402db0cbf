"""edgernn's cell kernels for ONNX Runtime: where they are, and registering them.

An int8 step file from ``edgernn quantize``, and the fp32 lean file ``edgernn export`` writes by
default (Step nodes), compute each layer's step with one ``ai.edgernn`` node
(:mod:`edgernn.exporters.quant.cells8`) and carry that node's meaning as a plain-ONNX function
(for a Step node: ONNX's own ``LSTM``/``GRU``/``RNN`` operator). :func:`register` adds the
kernel library (``runtime/cells8``, built when edgernn is installed) to a session's options, and
ONNX Runtime then runs the kernel instead of the function: one call per layer instead of some
thirty small ones (int8), or instead of ONNX Runtime's slower one-step recurrent kernel
(fp32). Without the library (no compiler at install, another platform's wheel) or with
``EDGERNN_KERNELS=0`` in the environment, the same file runs its functions: the same model,
slower.

The library's integer product has one path per instruction set (:func:`paths`: ``avx2`` on
x86-64 with AVX2 and FMA3, ``neon-dotprod`` on ARM64 with the ARMv8.2 dot product,
``neon-i8mm`` with ARMv8.6's 8-bit matrix multiply, ``portable`` everywhere), chosen when a
session registers the kernels; ``EDGERNN_KERNEL_PATH=portable`` forces a lower one. Every path
gives the same integer sums, hence the same bits (tests/runtime/test_kernels.py holds each to them for every byte).
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
from contextlib import contextmanager
from functools import lru_cache

DOMAIN = b"ai.edgernn"
ENV = "EDGERNN_KERNELS"
PATH_ENV = "EDGERNN_KERNEL_PATH"


@lru_cache(maxsize=1)
def library() -> str | None:
    """The kernel library's path, or None when this install has none."""
    try:
        spec = importlib.util.find_spec("edgernn.runtime._cells8")
    except (ImportError, ValueError):
        return None
    path = spec.origin if spec is not None else None
    return path if path and os.path.isfile(path) else None


@lru_cache(maxsize=1)
def _native():
    """The library loaded for its own entry points (no ONNX Runtime needed), or None."""
    path = library()
    if path is None:
        return None
    lib = ctypes.CDLL(path)
    lib.edgernn_cells8_paths.restype = ctypes.c_char_p
    lib.edgernn_cells8_path.restype = ctypes.c_char_p
    lib.edgernn_cells8_product.restype = ctypes.c_int
    lib.edgernn_cells8_product.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int64,
                                           ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                                           ctypes.c_void_p]
    lib.edgernn_cells8_float_product.restype = ctypes.c_int
    lib.edgernn_cells8_float_product.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int64,
                                                 ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                                                 ctypes.c_void_p]
    lib.edgernn_cells8_rate.restype = ctypes.c_double
    lib.edgernn_cells8_rate.argtypes = [ctypes.c_char_p, ctypes.c_int64, ctypes.c_int64,
                                        ctypes.c_int64]
    return lib


def paths() -> list[str]:
    """The integer product's paths this CPU has, lowest first; [] without the library."""
    lib = _native()
    return lib.edgernn_cells8_paths().decode().split(",") if lib else []


def path() -> str | None:
    """The path a session registered now gets: the best this CPU has, or the lower one that
    ``EDGERNN_KERNEL_PATH`` names."""
    lib = _native()
    return lib.edgernn_cells8_path().decode() if lib else None


def _run(entry: str, name: str, rows, w, out) -> None:
    """Call the library's ``entry`` on path ``name``: ``rows`` (n, K) against ``w`` into ``out``;
    a path this CPU lacks (or no library) is a ValueError."""
    lib = _native()
    if lib is None or getattr(lib, entry)(name.encode(), rows.ctypes.data, rows.shape[0],
                                          w.ctypes.data, w.shape[0], w.shape[1],
                                          out.ctypes.data):
        raise ValueError(f"no product path {name!r} here (this CPU has {paths()})")


def product(name: str, q, w):
    """The library's integer product on path ``name``: ``q`` (k,) or (n, k) int8 activations
    (n rows go in pairs, as a pool's do), ``w`` (rows, k) u8 weights around 128 -> (rows,) or
    (n, rows) int32 sums of q * (w - 128). For tests."""
    import numpy as np

    q = np.ascontiguousarray(q, np.int8)
    w = np.ascontiguousarray(w, np.uint8)
    many = np.atleast_2d(q)
    acc = np.empty((many.shape[0], w.shape[0]), np.int32)
    _run("edgernn_cells8_product", name, many, w, acc)
    return acc if q.ndim == 2 else acc[0]


def float_product(name: str, x, w):
    """The library's float product on path ``name``: frames ``x`` (n, I) (in pairs, as a pool's
    rows go) against ``w`` (I, G) -> (n, G), each sum a chain of fused multiply-adds. For
    tests."""
    import numpy as np

    x = np.ascontiguousarray(np.atleast_2d(x), np.float32)
    w = np.ascontiguousarray(w, np.float32)
    out = np.empty((x.shape[0], w.shape[1]), np.float32)
    _run("edgernn_cells8_float_product", name, x, w, out)
    return out


def rate(name: str, rows: int, k: int, calls: int) -> float:
    """MACs per second of the integer product on path ``name`` (one activation row against
    rows x k weights, ``calls`` times), timed inside the library. For the benchmarks."""
    lib = _native()
    got = lib.edgernn_cells8_rate(name.encode(), rows, k, calls) if lib else -1.0
    if got <= 0:
        raise ValueError(f"no product path {name!r} here (this CPU has {paths()})")
    return got


def enabled() -> bool:
    """Whether sessions get the kernels: the library is here and not turned off."""
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off") and \
        library() is not None


def status() -> str:
    """One line for ``edgernn doctor``: whether int8 step files run the kernels here, and if not,
    why and what to do."""
    if library() is None:
        return ("not built: lean files (fp32 and int8) and fused int8 files run their "
                "plain-ONNX functions, int8 about half as fast; reinstall edgernn where a C++ "
                "compiler is available")
    if not enabled():
        return (f"turned off by {ENV}=0: lean files (fp32 and int8) and fused int8 files run "
                f"their plain-ONNX functions")
    forced = os.environ.get(PATH_ENV)
    note = (f"; {PATH_ENV}={forced} names no path this CPU has ({', '.join(paths())})"
            if forced and forced not in paths() else "")
    return (f"registered: lean files (fp32 and int8) and fused int8 files run one kernel call "
            f"per layer, integer product on the {path()} path{note}")


def refusal(message: str) -> str | None:
    """The kernels' own words in an ONNX Runtime error (a node whose inputs do not fit its
    weights: it names the node, the tensor and both shapes), or None."""
    at = message.find("ai.edgernn ")
    return message[at:].strip() if at >= 0 else None


def uses(data: bytes) -> bool:
    """Whether a model's bytes name the kernels' domain (its nodes and functions)."""
    return DOMAIN in data


def register(options) -> bool:
    """Add the kernels to ``options`` (an ``onnxruntime.SessionOptions``); False when they are
    not available or turned off, and the model's functions will run instead."""
    if not enabled():
        return False
    options.register_custom_ops_library(library())
    return True


@contextmanager
def turned_off():
    """Models loaded inside run their plain-ONNX functions instead of the kernels (the path the
    browser and Triton's ONNX Runtime backend take): to compare the two. Sets ``EDGERNN_KERNELS``
    for the process while it lasts."""
    before = os.environ.get(ENV)
    os.environ[ENV] = "0"
    try:
        yield
    finally:
        if before is None:
            del os.environ[ENV]
        else:
            os.environ[ENV] = before
