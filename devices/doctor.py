"""What this machine is, for choosing a device profile (device side: no torch, no onnx)."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import onnxruntime as ort

from edgernn.devices.profiles import all_profiles
from edgernn.runtime import kernels

_INT8_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512vnni", "asimddp", "i8mm",
               "sve")


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    flags = set()
    for line in text.splitlines():
        key = line.split(":")[0].strip().lower()
        if key in ("flags", "features"):
            flags.update(line.split(":", 1)[1].split())
    return flags


def report() -> dict:
    flags = cpu_flags()
    arch = platform.machine()
    available = ort.get_available_providers()
    int8 = sorted(f for f in _INT8_FLAGS if f in flags)
    vnni = any("vnni" in f for f in flags)
    if arch in ("aarch64", "arm64"):
        int8_note = ("ARM64: int8 dot products " + ("available (asimddp)" if "asimddp" in flags
                                                    else "not reported") +
                     "; quantized results match fp32 closely")
    elif "avx2" in flags and not vnni:
        int8_note = ("x86 AVX2 without VNNI: u8 x s8 products of full-range int8 saturate; "
                     "edgernn's int8 multiplies u8 x u8, which does not")
    elif vnni:
        int8_note = "x86 with VNNI: int8 products do not saturate"
    else:
        int8_note = "no SIMD int8 support reported; int8 may be slower than fp32"
    recommended = recommend(arch, available)
    return {"arch": arch, "system": platform.system(), "python": sys.version.split()[0],
            "onnxruntime": ort.__version__, "providers": available,
            "cpu_int8_features": int8, "int8_note": int8_note, "int8_kernels": kernels.status(),
            "recommended_profile": recommended}


def recommend(arch: str, available: list[str]) -> str:
    if "CUDAExecutionProvider" in available or "TensorrtExecutionProvider" in available:
        return "nvidia-gpu"
    if any(p in available for p in ("NnapiExecutionProvider", "CoreMLExecutionProvider")):
        return "mobile"
    return "arm64-cpu" if arch in ("aarch64", "arm64") else "x86-cpu"


def profiles_table() -> list[dict]:
    out = []
    for p in all_profiles():
        ok, why = p.usable()
        out.append({"name": p.name, "usable": ok, "status": why, "description": p.description,
                    "providers": p.provider_names(), "precision": p.precision, "ops": p.ops,
                    "graph": p.graph, "threads": p.threads})
    return out
