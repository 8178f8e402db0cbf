"""Character autocomplete: stream typed text through a character model, suggest continuations.

    python -m edgernn.devices.apps.autocomplete charlm.onnx [--length 12] [--temperature 0]

Each line read from stdin is what was typed next; the model consumes it character by character
(state kept across lines), then proposes a continuation from a snapshot, so the suggestion
never disturbs the typed stream. One JSON line per input line: {"typed": ..., "suggestion": ...}.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from edgernn.runtime import load


def suggest(stream, y, length: int, temperature: float, rng, stop: str = "\n.") -> str:
    """Continue from the stream's current state without changing it."""
    saved = stream.snapshot()
    out = []
    try:
        for _ in range(length):
            ch = stream.sample(y, temperature=temperature, top_k=5, rng=rng)
            if ch in stop:
                break
            out.append(ch)
            y = stream.step(stream.encode(ch)[0])
    finally:
        stream.restore(saved)
    return "".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--length", type=int, default=12)
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    stream = load(args.model, threads=1).stream()
    vocab = set(stream.model.vocabulary or "")
    rng = np.random.default_rng(args.seed)
    y = None
    for line in sys.stdin:
        typed = "".join(ch for ch in line.rstrip("\n").lstrip("\ufeff").lower() if ch in vocab)
        if not typed:
            continue
        y = stream.feed(stream.encode(typed))[-1]
        print(json.dumps({"typed": typed, "suggestion": suggest(stream, y, args.length,
                                                                args.temperature, rng)}),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
