"""Export time and file size of the default model, for each exporter and op form.

    python benchmarks/export_bench.py [--repeat 3] [--json]

The default model is the keyword task's LSTM 40->128x2->10 (weights seeded, untrained: export
time and size do not depend on training). Times are medians over --repeat runs and include
edgernn's own checks (ONNX checker, shape inference, parity check in ONNX Runtime).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from edgernn.exporters import export
    from edgernn.models import build
    from edgernn.tasks import get_task

    model = build(get_task("classify").model, seed=0)
    rows = []
    for exporter in ("torchscript", "dynamo"):
        for graph, ops in (("step", "fused"), ("step", "decomposed"), ("chunk", "fused")):
            times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                result = export(model, None, graph=graph, ops=ops, exporter=exporter)
                times.append(time.perf_counter() - t0)
            rows.append({"exporter": exporter, "graph": graph, "ops": ops,
                         "seconds_median": statistics.median(times), "bytes": result.bytes,
                         "max_abs_error": result.max_abs_error, "opset": result.opset})
    base = next(r for r in rows if r["exporter"] == "torchscript" and r["ops"] == "fused")
    for r in rows:
        r["time_vs_torchscript_step_fused"] = r["seconds_median"] / base["seconds_median"]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'exporter':12} {'graph':6} {'ops':11} {'time (s)':>9} {'x base':>7} "
          f"{'bytes':>10} {'max abs err':>12} opset")
    for r in rows:
        print(f"{r['exporter']:12} {r['graph']:6} {r['ops']:11} {r['seconds_median']:9.3f} "
              f"{r['time_vs_torchscript_step_fused']:7.1f} {r['bytes']:10,d} "
              f"{r['max_abs_error']:12.2e} {r['opset']}")


if __name__ == "__main__":
    main()
