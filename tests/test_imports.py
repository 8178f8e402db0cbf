"""The dependency rule: the device side never imports torch or onnx."""

import subprocess
import sys

import pytest

HEAVY = ("torch", "onnx", "onnxscript", "matplotlib", "tritonclient", "grpc")


@pytest.mark.parametrize("module", ["edgernn", "edgernn.runtime", "edgernn.contract",
                                    "edgernn.cli", "edgernn.runtime.remote",
                                    "edgernn.serving", "edgernn.frontend", "edgernn.wav"])
def test_import_pulls_in_no_host_dependency(module):
    code = (f"import sys, {module}\n"
            f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import {module} loaded {out.stdout.strip()}"
