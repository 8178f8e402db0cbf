"""Run edgernn's runtime on ARM64 under qemu user-mode emulation and compare with x86.

    python scripts/arm64_check.py [--root build/arm64] [--cpus cortex-a53,cortex-a72,...]

From scratch (needs root, apt and PyPI): installs qemu-user-static (Debian 12's qemu 7.2) and
debootstrap, fetches Debian 13's qemu 10 (its static qemu-aarch64 runs here; 7.2 emulates
SME wrongly), downloads an ARM64 Debian userland with Python, installs ARM64 wheels of numpy
and onnxruntime plus the edgernn wheel, then streams the same seeded frames through fp32 and
int8 artifacts, one stream alone and one in a pool beside loud and silent neighbours, on x86
and on each emulated core, and prints the max abs differences.

Cores: cortex-a53, cortex-a72, neoverse-n1 (boards), ``max,sme=off`` (i8mm, dotprod, SVE2) under
qemu 7.2, and ``max`` (with SME) under qemu 10. See docs/devices.md for the traps (qemu passes
x86 /proc/cpuinfo through; a Neoverse-N1 cpuinfo makes onnxruntime assume dot products; qemu
7.2's SME) and the figures measured here.
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
CROSS = "aarch64-linux-gnu-g++"
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


def ensure_cross_compiler() -> str:
    """Debian's cross g++ for ARM64, to build edgernn's int8 kernels the way pip would there."""
    if not shutil.which(CROSS):
        sh("apt-get", "update", "-qq")
        sh("apt-get", "install", "-y", "-qq", "g++-aarch64-linux-gnu")
    return CROSS


def qemu10(work: Path) -> Path:
    """Debian 13's qemu-aarch64 (qemu 10, statically linked), unpacked here, not installed."""
    binary = work / "qemu10/usr/bin/qemu-aarch64"
    if binary.exists():
        return binary
    apt = work / "qemu10-apt"
    for sub in ("lists/partial", "cache/archives/partial"):
        (apt / sub).mkdir(parents=True, exist_ok=True)
    (apt / "sources.list").write_text(f"deb {mirror()} trixie main\n")
    opts = [f"-oDir::Etc::SourceList={apt}/sources.list", "-oDir::Etc::SourceParts=/dev/null",
            f"-oDir::State={apt}", f"-oDir::State::Lists={apt}/lists",
            f"-oDir::Cache={apt}/cache", "-oAPT::Sandbox::User=root"]
    sh("apt-get", *opts, "update", "-qq")
    sh("apt-get", *opts, "download", "qemu-user", cwd=apt)
    sh("dpkg", "-x", next(apt.glob("qemu-user_*.deb")), work / "qemu10")
    return binary


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
    """ARM64 wheels of the runtime's dependencies (kept between runs) and this checkout's
    edgernn (installed afresh every run, so the check never tests an older one)."""
    site = work / "site"
    wheels = work / "wheels"
    if not (site / "onnxruntime").exists():
        pkgs = ["numpy", "onnxruntime", "protobuf", "flatbuffers", "packaging", "click"]
        sh(sys.executable, "-m", "pip", "download", "-q", "--no-deps", *WHEEL_FLAGS, "-d",
           wheels, *pkgs)
        sh(sys.executable, "-m", "pip", "install", "-q", "--no-deps", *WHEEL_FLAGS, "--target",
           site, *sorted(wheels.glob("*.whl")))
    shutil.rmtree(work / "edgernn-wheel", ignore_errors=True)
    for old in list(site.glob("edgernn")) + list(site.glob("edgernn-*.dist-info")):
        shutil.rmtree(old)
    sh(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", work / "edgernn-wheel",
       ROOT_DIR)
    sh(sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", site,
       *sorted((work / "edgernn-wheel").glob("edgernn-*.whl")))
    # the wheel is x86's: its int8 kernel library is built again for ARM64, with the same
    # source and flags (the name an ARM64 CPython 3.11 looks for)
    kernels = ROOT_DIR / "runtime/cells8"
    for old in (site / "edgernn/runtime").glob("_cells8.*.so"):
        old.unlink()
    sh(ensure_cross_compiler(), *(kernels / "flags.txt").read_text().split(), "-shared", "-fPIC",
       kernels / "cells8.cc", "-o",
       site / "edgernn/runtime/_cells8.cpython-311-aarch64-linux-gnu.so")
    return site


def artifacts(work: Path) -> list[Path]:
    """LSTM 40->128x2->10 step graphs: fp32 (compact and lean) and their int8 (dynamic)."""
    from edgernn.checkpoint import Checkpoint, save_checkpoint
    from edgernn.exporters import export
    from edgernn.exporters.quant.quantize import Gate, quantize
    from edgernn.models import build
    from edgernn.tasks import get_task

    cfg = get_task("classify").model
    ckpt = save_checkpoint(work / "lstm.pt", Checkpoint(cfg, build(cfg, seed=0).state_dict()))
    out = []
    for ops in ("compact", "lean"):
        fp32 = export(ckpt, work / f"lstm.{ops}.fp32.onnx", ops=ops).path
        int8 = work / f"lstm.{ops}.int8.onnx"
        quantize(fp32, int8, gate=Gate(horizon=2000, check_metric=False), force=True,
                 measure_latency=False)
        out += [fp32, int8]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=ROOT_DIR / "build/arm64")
    ap.add_argument("--cpus", default="cortex-a53,cortex-a72,neoverse-n1,max+sme=off,max",
                    help="QEMU_CPU values (',' inside one written '+'); 'max' runs on qemu 10")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    work = args.root.resolve()
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    ensure_tools()
    cpus = [c.replace("+", ",") for c in args.cpus.split(",")]
    qemu = {c: str(qemu10(work)) if c == "max" else "qemu-aarch64-static" for c in cpus}
    userland(work / "rootfs")
    site = site_packages(work)
    setup_s = time.perf_counter() - t0
    models = artifacts(work)
    probe = ROOT_DIR / "scripts/arm64_probe.py"
    sh(sys.executable, probe, work / "x86.npz", *models)
    import numpy as np

    x86 = np.load(work / "x86.npz")
    rows, products = [], {}
    for cpu in cpus:
        env = {**os.environ, "PYTHONPATH": str(site), "QEMU_CPU": cpu}
        t = time.perf_counter()
        tag = cpu.replace(",", "+")
        sh(qemu[cpu], "-L", work / "rootfs", work / "rootfs/usr/bin/python3", probe,
           work / f"arm64-{tag}.npz", *models, env=env)
        arm = np.load(work / f"arm64-{tag}.npz")
        for m in models:
            key = f"{m.name}:y"
            fp32_key = f"{m.name.replace('.int8.', '.fp32.')}:y"
            rows.append({"cpu": tag, "qemu": "10" if cpu == "max" else "7.2", "model": m.name,
                         "arm64_vs_x86": float(np.abs(arm[key] - x86[key]).max()),
                         "pool_arm64_vs_x86": float(np.abs(arm[f"{m.name}:pool"]
                                                           - x86[f"{m.name}:pool"]).max()),
                         "state_arm64_vs_x86": max(float(np.abs(arm[k] - x86[k]).max())
                                                   for k in arm.files
                                                   if k.startswith(m.name + ":")
                                                   and k not in (key, f"{m.name}:pool",
                                                                 f"{m.name}:kernels")),
                         "vs_fp32_arm64": float(np.abs(arm[key] - arm[fp32_key]).max()),
                         "vs_fp32_x86": float(np.abs(x86[key] - x86[fp32_key]).max()),
                         "kernels": bool(arm[f"{m.name}:kernels"]) and bool(
                             x86[f"{m.name}:kernels"]),
                         "seconds": time.perf_counter() - t})
        products[tag] = {k.split(":", 1)[1]: int(arm[k]) for k in arm.files
                         if k.startswith("product:")}
    doc = {"setup_seconds": setup_s, "total_seconds": time.perf_counter() - t0, "rows": rows,
           "products": products}
    print(f"setup {setup_s:.0f} s, total {doc['total_seconds']:.0f} s; 300 streamed steps each")
    print(f"{'QEMU_CPU':13} {'qemu':4} {'model':22} {'stream':>9} {'pool':>9} {'state':>9} "
          f"{'vs fp32 arm64':>13} {'vs fp32 x86':>11} kernels  (max abs, arm64 vs x86)")
    for r in rows:
        print(f"{r['cpu']:13} {r['qemu']:4} {r['model']:22} {r['arm64_vs_x86']:9.2e} "
              f"{r['pool_arm64_vs_x86']:9.2e} {r['state_arm64_vs_x86']:9.2e} "
              f"{r['vs_fp32_arm64']:13.2e} {r['vs_fp32_x86']:11.2e} "
              f"{'both' if r['kernels'] else '-'}")
    for tag, paths in products.items():
        print(f"{tag:13} int8 product paths, max abs from the exact sums over every byte: "
              + ", ".join(f"{p} {d}" for p, d in paths.items()))
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
