"""Per-step latency in a real browser (onnxruntime-web, WebAssembly) next to the Python runtime.

    python benchmarks/web_bench.py [--rounds 7] [--per 300] [--json]

Reference model: the keyword LSTM 40->128x2 + Linear(10) (random weights), compact step graph,
fp32 and int8 (edgernn quantize). Headless Chromium (the system's, driven by Playwright) opens
the page folder `edgernn web` writes, served from 127.0.0.1 with cross-origin isolation, in two
tabs: onnxruntime-web with 1 thread and with 2 threads (its WebAssembly build is SIMD; the
threaded one needs the isolation). Each step is timed inside the page with performance.now()
(5 µs resolution when isolated) around `await stream.step(frame)`; the Python runtime's
`stream.step` on the same file is timed with perf_counter_ns. The paths alternate every
``--per`` steps over ``--rounds`` rounds; figures are medians of the round medians (p99: median
of round p99s). Also printed: the largest difference between the browser's and Python's
outputs over 500 fed-back steps.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SETUP = """async ([threads]) => {
  const m = await import("./edgernn.js");
  m.ort.env.wasm.numThreads = threads;
  window.models = { fp32: await m.load("./fp32.onnx"), int8: await m.load("./int8.onnx") };
  window.streams = { fp32: window.models.fp32.stream(), int8: window.models.int8.stream() };
  return { threads: m.ort.env.wasm.numThreads, isolated: crossOriginIsolated };
}"""

BLOCK = """async ([which, xs]) => {
  const s = window.streams[which], ts = [];
  for (const x of xs) { const t0 = performance.now(); await s.step(x); ts.push(performance.now() - t0); }
  return ts;
}"""

PARITY = """async ([which, xs]) => {
  const s = window.models[which].stream(), ys = [];
  for (const x of xs) ys.push(Array.from(await s.step(x)));
  return ys;
}"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--per", type=int, default=300)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    doc = run(args)
    print(json.dumps(doc, indent=2) if args.json else render(doc))


def run(args) -> dict:
    from playwright.sync_api import sync_playwright

    from edgernn.devices.web_page import serve_folder, write_page
    from edgernn.exporters import export
    from edgernn.exporters.quant.quantize import Gate, quantize
    from edgernn.models import build
    from edgernn.runtime import load
    from edgernn.tasks import get_task

    config = get_task("classify").model
    tmp = Path(tempfile.mkdtemp(prefix="edgernn-wbench-"))
    fp32 = export(build(config, seed=0), tmp / "fp32.onnx").path
    int8 = tmp / "int8.onnx"
    quantize(fp32, int8, gate=Gate(horizon=300, check_metric=False), force=True,
             measure_latency=False)
    site = tmp / "site"
    write_page(fp32, site, steps=10)
    (site / "int8.onnx").write_bytes(int8.read_bytes())
    (site / "fp32.onnx").write_bytes(fp32.read_bytes())
    importmap = re.search(r'<script type="importmap">.*?</script>',
                          (site / "index.html").read_text()).group(0)
    (site / "bench.html").write_text(f"<!doctype html><html><head><link rel='icon' "
                                     f"href='data:,'>{importmap}</head><body></body></html>")
    server = serve_folder(site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/bench.html"
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(args.per, config.input_size)).astype(np.float32)
    py = {k: load(p, threads=1).stream() for k, p in (("fp32", fp32), ("int8", int8))}
    paths = [(k, where) for k in ("fp32", "int8") for where in ("python", "wasm-1", "wasm-2")]
    rounds = {p: {"p50": [], "p99": [], "mean": []} for p in paths}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-background-networking", "--disable-component-update"])
        tabs, setup = {}, {}
        for n in (1, 2):
            tab = browser.new_page()
            tab.goto(url)
            setup[n] = tab.evaluate(SETUP, [n])
            tabs[f"wasm-{n}"] = tab
        parity = {}
        for k in ("fp32", "int8"):
            xs500 = rng.normal(size=(500, config.input_size)).astype(np.float32)
            got = np.array(tabs["wasm-1"].evaluate(PARITY, [k, xs500.tolist()]))
            want = load(fp32 if k == "fp32" else int8).stream().feed(xs500)
            parity[k] = float(np.abs(got - want).max())
        for tab in tabs.values():                                  # warm up
            for k in ("fp32", "int8"):
                tab.evaluate(BLOCK, [k, xs[:50].tolist()])
        frames = xs.tolist()
        for _ in range(args.rounds):
            for k, where in paths:
                if where == "python":
                    s, ts = py[k], []
                    for x in xs:
                        t0 = time.perf_counter_ns()
                        s.step(x)
                        ts.append((time.perf_counter_ns() - t0) / 1e3)
                else:
                    ts = [t * 1e3 for t in tabs[where].evaluate(BLOCK, [k, frames])]
                r = rounds[(k, where)]
                r["p50"].append(np.median(ts))
                r["p99"].append(np.percentile(ts, 99))
                r["mean"].append(np.mean(ts))
        browser.close()
    server.shutdown()
    med = lambda v: float(np.median(v))                                  # noqa: E731
    rows = [{"model": k, "path": where, "p50_us": med(r["p50"]), "p99_us": med(r["p99"]),
             "mean_us": med(r["mean"])} for (k, where), r in rounds.items()]
    for row in rows:
        base = next(r for r in rows if r["model"] == row["model"] and r["path"] == "python")
        row["vs_python"] = row["mean_us"] / base["mean_us"]
    import platform

    return {"model": "LSTM 40->128x2 + Linear(10), compact step graph",
            "browser": browser_version(), "onnxruntime_web": "1.30.0 (WebAssembly, SIMD)",
            "threads": {k: v["threads"] for k, v in setup.items()},
            "cross_origin_isolated": all(v["isolated"] for v in setup.values()),
            "cpu": platform.processor() or platform.machine(), "rounds": args.rounds,
            "steps_per_round": args.per, "rows": rows, "max_abs_diff_500_steps": parity}


def browser_version() -> str:
    import subprocess

    out = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True)
    return out.stdout.strip() or "chromium"


def render(doc) -> str:
    lines = [f"{doc['model']}; {doc['browser']}, onnxruntime-web {doc['onnxruntime_web']}, "
             f"cross-origin isolated: {doc['cross_origin_isolated']}",
             f"{doc['rounds']} rounds x {doc['steps_per_round']} steps per path, medians of "
             f"round medians", "",
             f"{'model':<6}{'path':<26}{'p50 us':>9}{'p99 us':>9}{'mean us':>9}{'vs Python':>11}"]
    names = {"python": "Python edgernn.runtime", "wasm-1": "browser, wasm 1 thread",
             "wasm-2": "browser, wasm 2 threads"}
    for r in doc["rows"]:
        lines.append(f"{r['model']:<6}{names[r['path']]:<26}{r['p50_us']:>9.1f}{r['p99_us']:>9.1f}"
                     f"{r['mean_us']:>9.1f}{r['vs_python']:>10.2f}x")
    d = doc["max_abs_diff_500_steps"]
    lines += ["", f"browser vs Python over 500 fed-back steps: max |diff| fp32 {d['fp32']:.1e}, "
              f"int8 {d['int8']:.1e}"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
