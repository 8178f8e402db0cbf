"""edgernn's int8 cell kernels for ONNX Runtime: where they are, and registering them.

An int8 step file from ``edgernn quantize`` computes each layer's step with one ``ai.edgernn``
node (:mod:`edgernn.exporters.quant.cells8`) and carries that node's meaning as a plain-ONNX
function. :func:`register` adds the kernel library (``runtime/cells8``, built when edgernn is
installed) to a session's options, and ONNX Runtime then runs the kernel instead of the
function: one call per layer instead of some thirty small ones. Without the library (no
compiler at install, another platform's wheel) or with ``EDGERNN_KERNELS=0`` in the
environment, the same file runs its functions: the same model, slower.
"""

from __future__ import annotations

import importlib.util
import os
from contextlib import contextmanager
from functools import lru_cache

DOMAIN = b"ai.edgernn"
ENV = "EDGERNN_KERNELS"


@lru_cache(maxsize=1)
def library() -> str | None:
    """The kernel library's path, or None when this install has none."""
    try:
        spec = importlib.util.find_spec("edgernn.runtime._cells8")
    except (ImportError, ValueError):
        return None
    path = spec.origin if spec is not None else None
    return path if path and os.path.isfile(path) else None


def enabled() -> bool:
    """Whether sessions get the kernels: the library is here and not turned off."""
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off") and \
        library() is not None


def status() -> str:
    """One line for ``edgernn doctor``: whether int8 step files run the kernels here, and if not,
    why and what to do."""
    if library() is None:
        return ("not built: lean and fused int8 files run their plain-ONNX functions, about "
                "half as fast; reinstall edgernn where a C++ compiler is available")
    if not enabled():
        return f"turned off by {ENV}=0: lean and fused int8 files run their plain-ONNX functions"
    return "registered: lean and fused int8 files run one kernel call per layer"


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
