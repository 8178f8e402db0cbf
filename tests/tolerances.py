"""Every numeric tolerance the tests compare with, and why, in one table.

Outputs of the test models are unit-scale, so absolute tolerances are in output units. A real
bug (wrong gate order, a lost or mixed state, a pinned time axis) is off by 1e-2 or more; the
tolerances below sit far under that and far over the rounding they allow for.
"""

# PyTorch against ONNX Runtime, float32: the kernels differ by a few 1e-7 per step, which stays
# far below 1e-5 over a dozen steps.
TORCH_VS_ONNX = 1e-5

# One sequence split any way into step and chunk calls, or a stream resumed from a snapshot:
# the same float32 kernels, sums possibly ordered differently by batch size (~1e-7 seen).
SPLITS = 1e-5

# A stream stepped in a batch (pool, step_streams) against the same stream alone: a batched
# matrix product may sum in another order than a one-row one (~1e-7 seen).
POOLED = 1e-5

# Rows of a batch against one-row calls, per unit of the values, by dtype: float32 ~1e-7 seen;
# float16's step near 1 is 1e-3.
BATCHED_BY_DTYPE = {"float16": 2e-3, "float32": 1e-6, "float64": 1e-12}

# edgernn's own int8 pooled against alone, and served through Triton against a lone stream:
# integer sums are exact, the float glue around them rounds like float32 (~1e-7).
BATCHED_EXACT = 1e-6

# onnxruntime-web's WebAssembly kernels against native ONNX Runtime, float32.
WEB_VS_NATIVE = 1e-5

# The same fp32 file on emulated ARM64 CPUs against x86: different SIMD widths reorder sums.
ARM64_VS_X86 = 1e-5

# int8 against its fp32 file on ARM64, in output units: int8 rounding, not a platform error.
INT8_VS_FP32 = 5e-2

# fp16 against fp32 on outputs of order 1: fp16's step near 1 is 1e-3, over a stream ~1e-2.
FP16_VS_FP32 = 1e-2

# A forecast printed by a device app (rounded to 4 decimals in data units of ~10) against the
# library's.
PRINTED_FORECAST = 1e-3
