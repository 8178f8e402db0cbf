"""int8 against fp32: error over fed-back steps, size, step latency, task metric, drift.

    python benchmarks/quantize_bench.py [--horizon 10000] [--seeds 20] [--json]

For the keyword model with each cell at the reference size (40->128x2->10), and the default
forecast and charlm models, each trained with its default settings:

1. error: max |int8 - fp32| of the outputs over 50 steps with the state fed back, for each of
   ``--seeds`` streams of the task's frames, for edgernn's int8 (``--recurrent auto`` and
   ``int8``), ONNX Runtime's own ``quantize_dynamic`` on the same graph (activation scales per
   batch), and the floor that 8-bit weights alone set (weights rounded, everything else fp32).
   (benchmarks/int8_error.py measures the error against PyTorch next to LiteRT's int8);
2. the gate's figures for the default quantization: size, step latency (alternating rounds,
   median of round medians), task metric on the test split, error drift over ``--horizon``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CASES = [("classify", "lstm"), ("classify", "gru"), ("classify", "rnn"), ("forecast", None),
         ("charlm", None)]


def fed_back_error(fp32_path, other_path, task, seeds: int, steps: int = 50) -> np.ndarray:
    """Per seed: max |other - fp32| over ``steps`` fed-back steps of the task's frames."""
    from edgernn.runtime import load

    a, b = load(fp32_path, threads=1), load(other_path, threads=1)
    out = []
    for seed in range(seeds):
        frames = task.stream(steps, seed)
        sa, sb = a.stream(), b.stream()
        out.append(max(float(np.abs(sa.step(f) - sb.step(f)).max()) for f in frames))
    return np.array(out)


def weight_floor(result, folder: Path) -> Path:
    """The same network with only its weights rounded to 8 bits (per output column)."""
    import torch

    from edgernn.checkpoint import save_checkpoint
    from edgernn.exporters import export

    ckpt = result.checkpoint()
    with torch.no_grad():
        for name, w in ckpt.state_dict.items():
            if w.dim() == 2 and "embedding" not in name:
                scale = w.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127
                ckpt.state_dict[name] = (w / scale).round().clamp(-127, 127) * scale
    path = save_checkpoint(folder / "w8.pt", ckpt)
    return export(path, folder / "w8.onnx").path


def ort_dynamic(fp32_path: Path, folder: Path) -> Path:
    """ONNX Runtime's quantize_dynamic on the same file, its contract kept (what edgernn did)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from edgernn.exporters.forms.lower import lower

    lowered, _ = lower(onnx.load(fp32_path))
    src, out = folder / "lowered.onnx", folder / "ort.onnx"
    onnx.save(lowered, src)
    quantize_dynamic(str(src), str(out), weight_type=QuantType.QInt8, reduce_range=True)
    return out


def case(task_name: str, cell, folder: Path, args) -> dict:
    from edgernn.checkpoint import save_checkpoint
    from edgernn.exporters import export
    from edgernn.exporters.quant.quantize import Gate, quantize
    from edgernn.tasks import get_task
    from edgernn.training import fit

    task = get_task(task_name)
    config = task.model.replace(cell=cell) if cell else task.model
    result = fit(task, config=config, verbose=False)
    name = f"{task_name}-{config.cell}"
    ckpt = save_checkpoint(folder / f"{name}.pt", result.checkpoint())
    fp32 = export(ckpt, folder / f"{name}.onnx").path
    report = quantize(fp32, folder / f"{name}.int8.onnx", gate=Gate(horizon=args.horizon),
                      force=True)
    row = {"case": name, "passed": report.passed, "recurrent": report.recurrent,
           "size_ratio": report.size_ratio, "latency_ratio": report.latency_out_us /
           report.latency_fp32_us, "latency_fp32_us": report.latency_fp32_us,
           "mac_share_int8": report.coverage.mac_share_int8,
           "metric": report.metric.metric if report.metric else "",
           "metric_fp32": report.metric.reference if report.metric else None,
           "metric_int8": report.metric.value if report.metric else None,
           "changed": report.metric.changed if report.metric else None,
           "p99_over_std": report.error_p99, "worst_over_std": report.worst_error,
           "drift_first": report.drift_first, "drift_last": report.drift_last}
    if task_name == "classify":
        errors = {"edgernn int8": fed_back_error(fp32, report.path, task, args.seeds)}
        if report.recurrent != "int8":
            full = folder / f"{name}.full.onnx"
            quantize(fp32, full, recurrent="int8", gate=Gate(horizon=500), force=True,
                     measure_latency=False)
            errors["edgernn int8, recurrent int8"] = fed_back_error(fp32, full, task, args.seeds)
        errors["8-bit weights only (floor)"] = fed_back_error(
            fp32, weight_floor(result, folder), task, args.seeds)
        errors["onnxruntime quantize_dynamic"] = fed_back_error(
            fp32, ort_dynamic(fp32, folder), task, args.seeds)
        row["fed_back_error"] = {k: {"max": float(v.max()), "median": float(np.median(v))}
                                 for k, v in errors.items()}
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--horizon", type=int, default=10_000)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="edgernn-qbench-"))
    rows = []
    for task_name, cell in CASES:
        print(f"{task_name} {cell or ''}...", file=sys.stderr)
        rows.append(case(task_name, cell, folder, args))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"1. max |int8 - fp32| over 50 fed-back steps, {args.seeds} frame seeds: max (median)")
    for r in rows:
        for what, e in r.get("fed_back_error", {}).items():
            print(f"   {r['case']:15s} {what:32s} {e['max']:.3f} ({e['median']:.3f})")
    print(f"\n2. the default int8 behind the gate ({args.horizon} streamed steps)")
    print(f"   {'case':15s} {'size':>5s} {'step':>6s} {'int8 MACs':>9s} {'metric fp32 -> int8':>26s}"
          f" {'changed':>7s} {'p99/std':>8s} {'drift':>15s} gate")
    for r in rows:
        metric = (f"{r['metric']} {r['metric_fp32']:.4f} -> {r['metric_int8']:.4f}"
                  if r["metric"] else "")
        print(f"   {r['case']:15s} {r['size_ratio']:5.2f} {r['latency_ratio']:5.2f}x "
              f"{r['mac_share_int8']:9.0%} {metric:>26s} {str(r['changed']):>7s} "
              f"{r['p99_over_std']:8.4f} {r['drift_first']:.4f}->{r['drift_last']:.4f} "
              f"{'ok' if r['passed'] else 'FAIL'} (recurrent {r['recurrent']})")


if __name__ == "__main__":
    main()
