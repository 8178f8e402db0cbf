"""The API's choices and defaults, declared once.

The functions (``export``, ``quantize``, ``train``) validate against these and the CLI's options
are built from them, so a mode, a default or a file-name rule is typed in one place. Plain data
only: the CLI reads this module before torch or onnx load.
"""

from __future__ import annotations

from pathlib import Path

from edgernn.contract import GRAPH_KINDS, OP_FORMS  # noqa: F401  (re-exported: one list each)

# ---------------------------------------------------------------- export
EXPORTERS = ("torchscript", "dynamo")
DEFAULT_EXPORTER = "torchscript"
DEFAULT_GRAPH = "step"
# How an edgernn network's step graph writes its cells when no --ops or profile says: lean, one
# recurrent node per layer, which quantize turns into one int8 kernel node per layer (the fast
# path for one stream and for pools, benchmarks/runtime_bench.py; the plain-ONNX functions run
# where the kernels are not). compact stays an option (one product per layer, state (batch,
# layers x hidden)).
DEFAULT_STEP_OPS = "lean"
DEFAULT_OPSET = 17
MIN_OPSET = 14           # the oldest opset whose ops every graph form is written with
MAX_OPSET = {"torchscript": 20, "dynamo": 23}   # torch 2.13's exporters write no newer ones
DYNAMO_MIN_OPSET = 18    # torch 2.13's dynamo exporter cannot reliably convert down to 17
EXPORT_TOLERANCE = 1e-4  # float32 rounding over a few dozen steps is ~1e-6; real bugs are ~1e-1
RTOL = 1e-5              # |onnx - torch| <= atol + rtol * |torch| (see exporters.checks.parity)

# ---------------------------------------------------------------- quantize
QUANTIZE_MODES = ("dynamic", "static", "fp16")
DEFAULT_QUANTIZE_MODE = "dynamic"
QUANTIZE_RECURRENT = ("auto", "int8", "fp32")
QUANTIZE_INPUTS = ("fp32", "int8")
CALIBRATION_FRAMES = 1024
GATE_HORIZON = 10_000    # streamed steps for the gate's drift check
GATE_MAX_ERROR = 0.25    # 99th percentile of per-step |q - fp32|, in fp32 output std units


def quantized_path(path: str | Path, mode: str) -> Path:
    """Where ``quantize`` writes by default: ``model.onnx`` -> ``model.int8.onnx`` (or
    ``model.fp16.onnx``), beside the input."""
    path = Path(path)
    suffix = ".fp16.onnx" if mode == "fp16" else ".int8.onnx"
    return path.with_name(path.name.removesuffix(".onnx") + suffix)


# ---------------------------------------------------------------- train
NONLINEARITIES = ("tanh", "relu")
