"""The runtime on ARM64 under qemu user-mode emulation, against x86 (scripts/arm64_check.py).

Sets up an ARM64 Debian userland with numpy and onnxruntime from their ARM64 wheels (about a
minute, needs apt and PyPI) and Debian 13's qemu 10 (the one that emulates SME correctly), then
streams 300 seeded frames through fp32 and int8 LSTMs 40->128x2->10 (compact and lean graphs;
the lean int8 file through edgernn's int8 kernels, cross-built for ARM64 from the same source),
one stream alone and one pooled beside loud and silent neighbours, on two emulated cores:
Cortex-A53 (no dot product) and ``max`` (SME, i8mm, dotprod, SVE2). Each core runs every
product path it has, forced in turn, so ``max`` also runs the path a Neoverse-N1 picks
(dotprod). ``make arm64`` runs the N1, the A72 and ``max`` with SME off (onnxruntime's own
kernels for a core without SME) as well. Deselect with -m "not arm64".

Tolerance 1e-5 for every row, fp32 and int8: float32 kernels of two ISAs agree to ~1e-7 over
300 fed-back steps, and edgernn's int8 is integer arithmetic that never saturates (u8 x u8
products, widened to 16 bits), scaled per row, so it must agree as closely; int8 against fp32
5e-2 (quantization error, for scale).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.tolerances import ARM64_VS_X86, INT8_VS_FP32

pytestmark = pytest.mark.arm64
CPUS = "cortex-a53,max"
ROOT = Path(__file__).resolve().parents[2]


def test_arm64_matches_x86(tmp_path):
    pytest.importorskip("torch")
    if os.geteuid() != 0 and not shutil.which("qemu-aarch64-static"):
        pytest.skip("needs root to install qemu-user-static and debootstrap")
    work = Path(os.environ.get("EDGERNN_ARM64_ROOT", ROOT / "build/arm64"))
    # Cortex-A72 (the script's default list has it) runs the same ARMv8.0 paths as the A53
    out = subprocess.run([sys.executable, str(ROOT / "scripts/arm64_check.py"), "--root",
                          str(work), "--json", str(tmp_path / "arm64.json"), "--cpus", CPUS],
                         capture_output=True, text=True,
                         timeout=1200)
    if out.returncode != 0 and ("Temporary failure" in out.stderr or "Could not" in out.stderr
                                or "Failed to fetch" in out.stderr):
        pytest.skip(f"could not fetch the ARM64 userland or wheels: {out.stderr[-300:]}")
    assert out.returncode == 0, out.stderr[-2000:]
    doc = json.loads((tmp_path / "arm64.json").read_text())
    rows = doc["rows"]
    # every integer product path the kernels have on each core gives the exact sums for every
    # weight byte 0..255 and activation byte (issue 27)
    assert set(doc["products"]) == {r["cpu"] for r in rows}
    for cpu, paths in doc["products"].items():
        assert paths and all(d == 0 for d in paths.values()), (cpu, paths)
        # ARMv8.2's dot product where the core has it (Neoverse-N1, max), not on the A53, and
        # ARMv8.6's 8-bit matrix multiply (a pool's row pairs) on max; each exact, pairs too
        want = {"cortex-a53": {"portable"},
                "neoverse-n1": {"portable", "neon-dotprod"}}.get(
                    cpu, {"portable", "neon-dotprod", "neon-i8mm"})
        assert set(paths) == want, (cpu, paths)
    assert {r["cpu"] for r in rows} == set(CPUS.split(","))
    assert {r["qemu"] for r in rows if r["cpu"] == "max"} == {"10"}
    assert len({r["model"] for r in rows}) == 4
    for r in rows:
        for key in ("arm64_vs_x86", "pool_arm64_vs_x86", "state_arm64_vs_x86"):
            assert r[key] <= ARM64_VS_X86, r
        assert r["vs_fp32_arm64"] <= INT8_VS_FP32, r
        # the lean files run edgernn's kernels on both sides (cross-built for ARM64; fp32: the
        # Step nodes), the compact ones their plain operators: both paths are compared
        assert r["kernels"] == r["model"].startswith("lstm.lean."), r
