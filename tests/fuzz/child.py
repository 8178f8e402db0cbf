"""Run the fuzz cases against a kernel library, in a process of their own.

    python -m tests.fuzz.child LIBRARY --crafted N --progress FILE

Every case runs twice in ONNX Runtime: with LIBRARY registered (the kernels) and without it
(the file's plain-ONNX functions: what the browser and Triton run). The parent
(:mod:`tests.fuzz.test_fuzz`) starts this under AddressSanitizer and UBSan with LIBRARY built
with them, so a read or write outside a tensor, or undefined behaviour, kills this process; the
case then being run is in FILE. Otherwise one JSON document on stdout counts how the cases ended
and lists those that broke a rule:

- refused at load: the kernels' session is not created, with a message (ours names the node,
  the tensor and both shapes);
- same result: both sessions run, and the outputs agree to ONE_STEP (one step from the same
  inputs: the integer sums are exact; the kernels' exp-based gates and float input product
  round differently by a few 1e-7, and ONNX Runtime's sigmoid is 0 below -18 where the kernels'
  is not, so the bound is relative to the largest state value fed, which a gate multiplies;
  NaN where NaN);
- refused at the call, by the kernels, naming the node: only for what the load could not see:
  inputs that the file's declared shapes let through but that do not fit the weights (an axis
  left symbolic; a declared scalar, which ONNX Runtime shows the kernels at load as an input
  with no shape), or weights fed as inputs that hold NaN or values beyond the kernels' bound;
- anything else (an answer where the functions fail, another answer, an error that is not ours)
  is a broken rule.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import onnxruntime as ort

ONE_STEP = 1e-5


def _options(library: str | None) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.log_severity_level = 4
    options.enable_cpu_mem_arena = False          # each tensor its own allocation: ASan sees edges
    if library:
        options.register_custom_ops_library(library)
    return options


def _outcome(data: bytes, feed: dict, library: str | None):
    try:
        session = ort.InferenceSession(data, _options(library), providers=["CPUExecutionProvider"])
    except Exception as exc:                      # noqa: BLE001 - every refusal is an outcome
        return "load", str(exc)
    names = {i.name for i in session.get_inputs()}
    try:
        return "ok", session.run(None, {k: v for k, v in feed.items() if k in names})
    except Exception as exc:                      # noqa: BLE001
        return "run", str(exc)


def _same(got: list, want: list, scale: float) -> str:
    if len(got) != len(want):
        return f"{len(got)} outputs, the functions give {len(want)}"
    for g, w in zip(got, want):
        if g.shape != w.shape:
            return f"shape {g.shape}, the functions give {w.shape}"
        if not np.array_equal(np.isnan(g), np.isnan(w)):
            return "NaN where the functions give a number, or the other way"
        finite = ~np.isnan(w)
        g, w = g[finite].astype(np.float64), w[finite].astype(np.float64)
        both_inf = np.isinf(g) & np.isinf(w) & (np.sign(g) == np.sign(w))
        with np.errstate(invalid="ignore"):                    # inf - inf where both_inf
            err = np.where(both_inf, 0.0, np.abs(g - w) - ONE_STEP * (1 + np.abs(w) + scale))
        if err.size and float(np.nanmax(err)) > 0:
            return f"differs by {float(np.max(np.abs(g - w)[~both_inf])):.3g}"
    return ""


def judge(name: str, data: bytes, feed: dict, library: str) -> tuple[str, str]:
    """(how the case ended, what was wrong or '')."""
    kernel = _outcome(data, feed, library)
    plain = _outcome(data, feed, None)
    if kernel[0] == "load":
        return "refused at load", "" if kernel[1].strip() else "refused with no message"
    if kernel[0] == "run":
        if "ai.edgernn" not in kernel[1]:
            return "broken", f"an error that does not name the node: {kernel[1][:300]}"
        return "refused at the call", ""
    if plain[0] == "load":                        # (a declared scalar reads as "no shape" at load)
        return "broken", f"the kernels answer a file the functions refuse ({plain[1][:200]})"
    if plain[0] == "run":
        return "broken", f"the kernels answer where the functions fail ({plain[1][:200]})"
    states = [np.abs(v[np.isfinite(v)]) for k, v in feed.items() if k in ("h", "c") or
              k.startswith(("h", "c")) and v.dtype == np.float32]
    wrong = _same(kernel[1], plain[1], max((float(s.max()) for s in states if s.size), default=0))
    return ("broken", wrong) if wrong else ("same result", "")


def main(argv=None) -> int:
    from hypothesis import HealthCheck, Phase, given, settings

    from tests.fuzz import cases

    parser = argparse.ArgumentParser()
    parser.add_argument("library")
    parser.add_argument("--crafted", type=int, default=600)
    parser.add_argument("--progress", required=True)
    args = parser.parse_args(argv)
    progress = Path(args.progress)
    counts: Counter = Counter()
    broken: list = []

    def one(source: str, case) -> None:
        name, data, feed = case
        progress.write_text(f"{source}: {name}\n")
        how, wrong = judge(name, data, feed, args.library)
        counts[f"{source}: {how}"] += 1
        if wrong:
            broken.append(f"{source}: {name}: {wrong}")

    @settings(max_examples=args.crafted, derandomize=True, database=None, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(cases.crafted())
    def crafted(case):
        one("crafted", case)

    crafted()
    for case in cases.mutated():
        one("mutated", case)
    progress.write_text("done\n")
    json.dump({"counts": dict(sorted(counts.items())), "broken": broken}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
