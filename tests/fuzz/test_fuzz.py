"""The int8 kernels against untrusted model files, under AddressSanitizer and UBSan.

The kernel library (runtime/cells8) is built here a second time with
``-fsanitize=address,undefined``, and :mod:`tests.fuzz.child` runs the cases of
:mod:`tests.fuzz.cases` against it in a process with the sanitizer runtime preloaded: 600
crafted one-node files (Hypothesis, derandomized) and every mutation of the real lean int8
LSTM, GRU and RNN files in tests/fuzz/corpus. A read or write outside a tensor, or undefined
behaviour, ends that process with the sanitizer's report; otherwise every case must be refused
at load with a message, or give what the file's plain-ONNX functions give (child.py has the
rules). About a minute on 2 cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
CELLS8 = ROOT / "runtime/cells8"
CRAFTED = 600
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer",
            "-g", "-O1"]


def _compiler() -> str:
    for cxx in (os.environ.get("CXX"), "g++", "c++"):
        if cxx and subprocess.run(["sh", "-c", f"command -v {cxx}"],
                                  capture_output=True).returncode == 0:
            return cxx
    pytest.fail("no C++ compiler: the Makefile installs g++ (apt), which the kernels need too")


def _build(source: Path, out: Path) -> Path:
    flags = [f for f in (CELLS8 / "flags.txt").read_text().split() if not f.startswith("-O")]
    done = subprocess.run([_compiler(), *flags, *SANITIZE, "-shared", "-fPIC", str(source), "-o",
                           str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def _env() -> dict:
    """The sanitizers' runtime preloaded (Python itself is not built with them), with the C++
    runtime before it so that exceptions thrown by ONNX Runtime are intercepted correctly."""
    libs = [subprocess.run([_compiler(), f"-print-file-name={name}"], capture_output=True,
                           text=True).stdout.strip() for name in ("libasan.so", "libstdc++.so")]
    for lib in libs:
        assert os.path.isabs(lib) and os.path.exists(lib), f"{lib}: the compiler has no " \
                                                           f"sanitizer runtime"
    return {**os.environ, "LD_PRELOAD": " ".join(libs),
            # no allocation stacks (a report still shows where the bad access was): a fifth
            # faster; raise malloc_context_size to see where a block came from
            "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0:exitcode=86:malloc_context_size=0",
            "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1:exitcode=87",
            "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def sanitized(tmp_path_factory) -> Path:
    return _build(CELLS8 / "cells8.cc", tmp_path_factory.mktemp("asan") / "cells8_asan.so")


def test_the_sanitizers_see_a_write_past_a_tensor(tmp_path):
    """The set-up itself: a library that writes one float past its buffer, called from Python
    in the same preloaded process, is stopped with ASan's report (else a quiet fuzz run would
    prove nothing)."""
    source = tmp_path / "overflow.cc"
    source.write_text('#include <stdlib.h>\n'
                      'extern "C" __attribute__((visibility("default"))) float poke(int n) {\n'
                      '  float* p = (float*)malloc(n * sizeof(float));\n'
                      '  p[n] = 1.0f; float v = p[0]; free(p); return v; }\n')
    lib = _build(source, tmp_path / "overflow.so")
    poke = f"import ctypes; ctypes.CDLL({str(lib)!r}).poke(8)"
    done = subprocess.run([sys.executable, "-c", poke], env=_env(), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 86 and "heap-buffer-overflow" in done.stderr, done.stderr[-2000:]


def test_every_case_is_refused_at_load_or_agrees_with_the_functions(sanitized, tmp_path):
    progress = tmp_path / "progress"
    done = subprocess.run([sys.executable, "-m", "tests.fuzz.child", str(sanitized),
                           "--crafted", str(CRAFTED), "--progress", str(progress)],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=900)
    last = progress.read_text().strip() if progress.exists() else "(before the first case)"
    assert done.returncode == 0, f"the fuzz process ended with {done.returncode} on {last}:\n" \
                                 f"{done.stderr[-6000:]}"
    result = json.loads(done.stdout)
    counts, broken = result["counts"], result["broken"]
    print("fuzz outcomes:", json.dumps(counts, sort_keys=True))   # docs/quantization.md quotes
    assert not broken, "\n".join(broken[:30])
    crafted = sum(n for k, n in counts.items() if k.startswith("crafted"))
    mutated = sum(n for k, n in counts.items() if k.startswith("mutated"))
    assert crafted == CRAFTED and mutated >= 450, counts
    for source in ("crafted", "mutated"):            # both outcomes are exercised, not one
        assert counts.get(f"{source}: same result", 0) >= 100, counts
        assert counts.get(f"{source}: refused at load", 0) >= 100, counts
