"""edgernn's one native part: the int8 cell kernels (runtime/cells8/cells8.cc), a library of
ONNX Runtime custom operators that the runtime registers when it loads a model.

The library needs a C++ compiler and nothing else (no ONNX Runtime headers, no linking against
ONNX Runtime: it receives the API table when registered). It is optional: where it cannot be
built, edgernn installs without it and int8 files run the plain-ONNX functions they carry.
Everything else is declared in pyproject.toml.
"""

from pathlib import Path

from setuptools import Extension, setup

# The compiler flags, shared with scripts/arm64_check.py's cross build: -ffp-contract=off (no
# fused multiply-add, so every CPU rounds the same way: x86 == ARM64 bit for bit),
# -fno-trapping-math (lets the gate loops vectorise; IEEE results as they are). The AVX2
# product is chosen at run time, so the build runs on any x86-64.
FLAGS = (Path(__file__).parent / "runtime/cells8/flags.txt").read_text().split()

setup(ext_modules=[Extension(
    "edgernn.runtime._cells8",
    sources=["runtime/cells8/cells8.cc"],
    depends=[str(p) for p in sorted(Path("runtime/cells8").iterdir()) if p.name != "cells8.cc"],
    language="c++",
    optional=True,
    extra_compile_args=FLAGS,
)])
