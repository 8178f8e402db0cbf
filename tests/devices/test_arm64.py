"""The runtime on ARM64 under qemu user-mode emulation, against x86 (scripts/arm64_check.py).

Sets up an ARM64 Debian userland with numpy and onnxruntime from their ARM64 wheels (about a
minute, needs apt and PyPI), then streams 300 seeded frames through an fp32 and an int8 LSTM
40->128x2->10 on three emulated cores. Deselect with -m "not arm64".

Tolerances: fp32 1e-5 (float32 kernels of two ISAs agree to ~1e-7 over 300 fed-back steps);
int8 against x86 1e-4 (with edgernn's portable reduce_range default both round alike; without
it x86 AVX2 saturates by up to 0.24), int8 against fp32 5e-2 (quantization error).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.arm64
ROOT = Path(__file__).resolve().parents[2]


def test_arm64_matches_x86(tmp_path):
    pytest.importorskip("torch")
    if os.geteuid() != 0 and not shutil.which("qemu-aarch64-static"):
        pytest.skip("needs root to install qemu-user-static and debootstrap")
    work = Path(os.environ.get("EDGERNN_ARM64_ROOT", ROOT / "build/arm64"))
    out = subprocess.run([sys.executable, str(ROOT / "scripts/arm64_check.py"), "--root",
                          str(work), "--cpus", "cortex-a53,cortex-a72,neoverse-n1", "--json",
                          str(tmp_path / "arm64.json")], capture_output=True, text=True,
                         timeout=1200)
    if out.returncode != 0 and ("Temporary failure" in out.stderr or "Could not" in out.stderr
                                or "Failed to fetch" in out.stderr):
        pytest.skip(f"could not fetch the ARM64 userland or wheels: {out.stderr[-300:]}")
    assert out.returncode == 0, out.stderr[-2000:]
    rows = json.loads((tmp_path / "arm64.json").read_text())["rows"]
    assert {r["cpu"] for r in rows} == {"cortex-a53", "cortex-a72", "neoverse-n1"}
    for r in rows:
        if "fp32" in r["model"]:
            assert r["arm64_vs_x86"] <= 1e-5 and r["state_arm64_vs_x86"] <= 1e-5, r
        else:
            assert r["arm64_vs_x86"] <= 1e-4 and r["state_arm64_vs_x86"] <= 1e-4, r
            assert r["vs_fp32_arm64"] <= 5e-2, r
