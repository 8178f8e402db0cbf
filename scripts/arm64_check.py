"""Run edgernn's runtime on ARM64 under qemu user-mode emulation and compare with x86.

    python scripts/arm64_check.py [--root build/arm64] [--cpus cortex-a53,cortex-a72,neoverse-n1,max]

From scratch (needs root, apt and PyPI): installs qemu-user-static and debootstrap, downloads an
ARM64 Debian userland with Python, installs ARM64 wheels of numpy and onnxruntime plus the
edgernn wheel, then streams the same seeded frames through an fp32 and an int8 artifact on x86
and on each emulated core, and prints the max abs differences. See docs/devices.md for the two
traps (qemu passes x86 /proc/cpuinfo through; a Neoverse-N1 cpuinfo makes onnxruntime assume
dot-product instructions) and the figures measured here.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT_DIR = Path(__file__).resolve().parents[1]
CPUINFO = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x0
CPU part\t: 0xd08
CPU revision\t: 3
"""
WHEEL_FLAGS = ["--only-binary=:all:", "--platform", "manylinux_2_28_aarch64", "--platform",
               "manylinux_2_17_aarch64", "--platform", "manylinux2014_aarch64",
               "--python-version", "3.11", "--implementation", "cp"]


def sh(*cmd, **kw):
    print("+", " ".join(map(str, cmd)), file=sys.stderr, flush=True)
    return subprocess.run(list(map(str, cmd)), check=True, **kw)


def ensure_tools():
    if shutil.which("qemu-aarch64-static") and shutil.which("debootstrap"):
        return
    sh("apt-get", "update", "-qq")
    sh("apt-get", "install", "-y", "-qq", "qemu-user-static", "debootstrap")


def mirror() -> str:
    """The Debian mirror apt already uses here (the main archive, not -security)."""
    for f in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for line in f.read_text().splitlines():
            parts = line.split()
            if parts[:1] == ["URIs:"] and parts[1].rstrip("/").endswith("/debian"):
                return parts[1]
    return "http://deb.debian.org/debian"


def userland(root: Path):
    if (root / "usr/bin/python3").exists():
        return
    sh("debootstrap", "--arch=arm64", "--foreign", "--variant=minbase", "--include=python3",
       "bookworm", root, mirror())
    for deb in sorted((root / "var/cache/apt/archives").glob("*.deb")):
        sh("dpkg", "-x", deb, root, stdout=subprocess.DEVNULL)
    (root / "proc").mkdir(exist_ok=True)
    (root / "proc/cpuinfo").write_text(CPUINFO)      # trap 1: x86 cpuinfo crashes onnxruntime


def site_packages(work: Path) -> Path:
    site = work / "site"
    if (site / "edgernn").exists():
        return site
    wheels = work / "wheels"
    pkgs = ["numpy", "onnxruntime", "protobuf", "flatbuffers", "packaging", "click"]
    sh(sys.executable, "-m", "pip", "download", "-q", "--no-deps", *WHEEL_FLAGS, "-d", wheels,
       *pkgs)
    sh(sys.executable, "-m", "pip", "install", "-q", "--no-deps", *WHEEL_FLAGS, "--target", site,
       *sorted(wheels.glob("*.whl")))
    sh(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", work / "edgernn-wheel",
       ROOT_DIR)
    sh(sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", site,
       *sorted((work / "edgernn-wheel").glob("edgernn-*.whl")))
    return site


def artifacts(work: Path) -> list[Path]:
    """An fp32 LSTM 40->128x2->10 step graph and its int8 (dynamic, decomposed) version."""
    from edgernn.checkpoint import Checkpoint, save_checkpoint
    from edgernn.exporters import export
    from edgernn.exporters.quantize import Gate, quantize
    from edgernn.models import build
    from edgernn.tasks import get_task

    cfg = get_task("keyword").model
    ckpt = save_checkpoint(work / "lstm.pt", Checkpoint(cfg, build(cfg, seed=0).state_dict()))
    fp32 = export(ckpt, work / "lstm.fp32.onnx").path
    quantize(fp32, work / "lstm.int8.onnx", checkpoint=ckpt, gate=Gate(horizon=2000),
             measure_latency=False)
    return [fp32, work / "lstm.int8.onnx"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=ROOT_DIR / "build/arm64")
    ap.add_argument("--cpus", default="cortex-a53,cortex-a72,neoverse-n1,max")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    work = args.root.resolve()
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    ensure_tools()
    userland(work / "rootfs")
    site = site_packages(work)
    setup_s = time.perf_counter() - t0
    models = artifacts(work)
    probe = ROOT_DIR / "scripts/arm64_probe.py"
    sh(sys.executable, probe, work / "x86.npz", *models)
    import numpy as np

    x86 = np.load(work / "x86.npz")
    rows = []
    for cpu in args.cpus.split(","):
        env = {**os.environ, "PYTHONPATH": str(site), "QEMU_CPU": cpu}
        t = time.perf_counter()
        sh("qemu-aarch64-static", "-L", work / "rootfs", work / "rootfs/usr/bin/python3", probe,
           work / f"arm64-{cpu}.npz", *models, env=env)
        arm = np.load(work / f"arm64-{cpu}.npz")
        for m in models:
            key = f"{m.name}:y"
            fp32_key = f"{models[0].name}:y"
            rows.append({"cpu": cpu, "model": m.name,
                         "arm64_vs_x86": float(np.abs(arm[key] - x86[key]).max()),
                         "state_arm64_vs_x86": max(float(np.abs(arm[k] - x86[k]).max())
                                                   for k in arm.files
                                                   if k.startswith(m.name) and k != key),
                         "vs_fp32_arm64": float(np.abs(arm[key] - arm[fp32_key]).max()),
                         "vs_fp32_x86": float(np.abs(x86[key] - x86[fp32_key]).max()),
                         "seconds": time.perf_counter() - t})
    doc = {"setup_seconds": setup_s, "total_seconds": time.perf_counter() - t0, "rows": rows}
    print(f"setup {setup_s:.0f} s, total {doc['total_seconds']:.0f} s; 300 streamed steps each")
    print(f"{'QEMU_CPU':12} {'model':16} {'arm64 vs x86':>13} {'state':>10} "
          f"{'vs fp32 (arm64)':>16} {'vs fp32 (x86)':>14}")
    for r in rows:
        print(f"{r['cpu']:12} {r['model']:16} {r['arm64_vs_x86']:13.2e} "
              f"{r['state_arm64_vs_x86']:10.2e} {r['vs_fp32_arm64']:16.2e} "
              f"{r['vs_fp32_x86']:14.2e}")
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
