"""Real public data through the whole pipeline, as a user runs it: the table in docs/data.md.

    python benchmarks/realdata_bench.py [--json] [--keep DIR]

For each data set (tests/realdata.py: ItalyPowerDemand, JapaneseVowels, airline passengers,
bundled in the sktime package; Mauna Loa CO2 and US real GDP, bundled in statsmodels; no
download) it runs the commands below in subprocesses:

    edgernn train --data FILE RECIPE -o m.pt --json
    edgernn export m.pt -o m.onnx
    edgernn validate m.pt m.onnx --json
    edgernn quantize m.onnx --checkpoint m.pt --json

and prints the test metric of PyTorch, the fp32 ONNX file and the int8 file on the whole test
split, next to simple baselines computed on the same split (logistic regression and 1-NN on
per-sequence features; the last value for forecasting).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import realdata  # noqa: E402


def _cli(*args) -> dict:
    out = subprocess.run([sys.executable, "-m", "edgernn", *map(str, args)], capture_output=True,
                         text=True)
    if out.returncode != 0:
        raise SystemExit(f"edgernn {' '.join(map(str, args))} failed:\n{out.stderr}")
    return json.loads(out.stdout)


def run(name: str, folder: Path) -> dict:
    make, recipe = realdata.RECIPES[name]
    data = make(folder)
    ckpt, onnx = folder / f"{name}.pt", folder / f"{name}.onnx"
    train = _cli("train", "--data", data, *recipe, "-o", ckpt, "--json")
    _cli("export", ckpt, "-o", onnx, "--json")
    validate = _cli("validate", ckpt, onnx, "--json")
    quant = _cli("quantize", onnx, "--checkpoint", ckpt, "--json")
    if train["metric"] == "mae":
        import numpy as np

        series = np.loadtxt(data, skiprows=1)
        baselines = {"last_value": realdata.last_value_mae(series, int(len(series) * 0.9))}
    else:
        baselines = realdata.classification_baselines(data)
    fp32 = validate["artifacts"][0]["metric"]
    return {"data": name, "task": train["task"], "metric": train["metric"],
            "model": f"{train['model']['cell']} {train['model']['hidden_size']}x"
                     f"{train['model']['num_layers']}",
            "train_seconds": train["seconds"], "test_items": fp32["items"],
            "torch": train["test"], "onnx_fp32": fp32["value"], "int8": quant["metric"]["value"],
            "int8_changed": quant["metric"]["changed"], "int8_passed": quant["passed"],
            "int8_size": quant["size_ratio"], "validated": validate["passed"],
            "baselines": baselines, "recipe": " ".join(recipe)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keep", type=Path, help="Keep the files in this folder.")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for name in realdata.RECIPES:
            print(f"running {name}...", file=sys.stderr)
            rows.append(run(name, folder))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| data | task | model | test items | torch | ONNX fp32 | int8 (changed) | "
          "baselines |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        base = ", ".join(f"{k.replace('_', ' ')} {v:.4g}" for k, v in r["baselines"].items())
        changed = f" ({r['int8_changed']})" if r["int8_changed"] is not None else ""
        print(f"| {r['data']} | {r['task']} ({r['metric']}) | {r['model']} | {r['test_items']} | "
              f"{r['torch']:.4g} | {r['onnx_fp32']:.4g} | {r['int8']:.4g}{changed} | {base} |")
    print()
    for r in rows:
        print(f"{r['data']}: edgernn train --data FILE {r['recipe']}   "
              f"(trained in {r['train_seconds']:.1f} s; int8 {r['int8_size']:.2f}x the size, "
              f"gate {'passed' if r['int8_passed'] else 'FAILED'})")


if __name__ == "__main__":
    main()
