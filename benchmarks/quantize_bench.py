"""int8 against fp32 on the built-in tasks: size, step latency, task metric, long-run drift.

    python benchmarks/quantize_bench.py [--horizon 100000] [--mode dynamic] [--json]

For each task's default model (and the keyword model with GRU and RNN cells, so every cell is
measured at the reference size 40->128x2->10) it trains with the default settings, exports a
step graph, quantizes it behind the gate and prints the ratios against the fp32 file measured
in the same run. --horizon is the streamed steps of the gate's drift check (100,000 = the
"no divergence" target).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CASES = [("keyword", "lstm"), ("keyword", "gru"), ("keyword", "rnn"), ("forecast", None),
         ("charlm", None)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizon", type=int, default=100_000)
    parser.add_argument("--mode", default="dynamic", choices=["dynamic", "static"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from edgernn.checkpoint import save_checkpoint
    from edgernn.exporters import export
    from edgernn.exporters.quantize import Gate, quantize
    from edgernn.tasks import get_task
    from edgernn.training import fit

    tmp = Path(tempfile.mkdtemp(prefix="edgernn-qbench-"))
    rows = []
    for task_name, cell in CASES:
        task = get_task(task_name)
        config = task.model.replace(cell=cell) if cell else task.model
        result = fit(task, config=config, verbose=False)
        name = f"{task_name}-{config.cell}"
        ckpt = save_checkpoint(tmp / f"{name}.pt", result.checkpoint())
        fp32 = export(ckpt, tmp / f"{name}.onnx").path
        r = quantize(fp32, tmp / f"{name}.int8.onnx", mode=args.mode, checkpoint=ckpt,
                     gate=Gate(horizon=args.horizon), force=True)
        rows.append({"case": name, "passed": r.passed, "size_ratio": r.size_ratio,
                     "bytes_fp32": r.bytes_fp32, "bytes_int8": r.bytes_out,
                     "latency_fp32_us": r.latency_fp32_us, "latency_int8_us": r.latency_out_us,
                     "latency_ratio": r.latency_out_us / r.latency_fp32_us,
                     "metric": r.metric.metric, "metric_fp32": r.metric.reference,
                     "metric_int8": r.metric.value, "metric_ok": r.metric_ok,
                     "worst_error_over_std": r.worst_error, "p99_error_over_std": r.error_p99,
                     "drift_first": r.drift_first,
                     "drift_last": r.drift_last, "recurrent": r.recurrent,
                     "mac_share_int8": r.coverage.mac_share_int8})
        print(f"done {name}", file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{args.mode} int8 vs fp32, {args.horizon} streamed steps per drift check")
    print(f"{'case':15} {'size':>6} {'latency':>8} {'metric fp32 -> int8':>26} {'p99/std':>8} "
          f"{'worst/std':>9} {'err first->last tenth':>22} gate")
    for r in rows:
        print(f"{r['case']:15} {r['size_ratio']:6.3f} {r['latency_ratio']:7.2f}x "
              f"{r['metric']:>6} {r['metric_fp32']:8.4f} -> {r['metric_int8']:8.4f} "
              f"{r['p99_error_over_std']:8.4f} {r['worst_error_over_std']:9.4f} "
              f"{r['drift_first']:10.4f} -> {r['drift_last']:.4f}"
              f" {'ok' if r['passed'] else 'FAIL'} ({r['recurrent']})")


if __name__ == "__main__":
    main()
