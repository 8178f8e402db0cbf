"""LiteRT as the benchmarks' reference: the files LiteRT's own tools write, run by its interpreter.

The files come from litert-torch's converter and ai-edge-quantizer (benchmarks/litert_build.py),
which run in the benchmark-only install ``make bench-env`` sets up (build/bench-venv; another
Python with them: ``EDGERNN_LITERT_PYTHON``). The interpreter is ``ai-edge-litert``, the same
version in both installs, run here with its default XNNPACK delegate on one thread, fed the way a
streaming LiteRT app feeds it: the frame and the state in, the output and the new state out,
the state copied back before the next call. It is benchmark code, not part of edgernn.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PYTHON = os.environ.get("EDGERNN_LITERT_PYTHON", str(ROOT / "build" / "bench-venv" / "bin" /
                                                     "python"))


def available() -> str | None:
    """None when the converter's install is there, else what to run to make it."""
    if Path(PYTHON).exists():
        return None
    return (f"LiteRT's converter install is missing ({PYTHON}): run `make bench-env` (or set "
            f"EDGERNN_LITERT_PYTHON to a Python with litert-torch and ai-edge-quantizer)")


def convert(net, folder: Path, batches=(1,)) -> dict[tuple[str, int], Path]:
    """The converter's fp32 file and ai-edge-quantizer's int8 file of ``net`` for each batch
    size: {("fp32" | "int8", batch): path}."""
    import torch

    if (missing := available()) is not None:
        raise SystemExit(missing)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(net, folder / "net.pt")
    done = subprocess.run([PYTHON, str(ROOT / "benchmarks" / "litert_build.py"),
                           str(folder / "net.pt"), str(folder), "--batch",
                           *map(str, batches)], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"litert_build.py failed:\n{done.stderr[-3000:]}")
    return {(kind, b): folder / f"{kind}-{b}.tflite" for kind in ("fp32", "int8")
            for b in batches}


def _number(name: str, word: str) -> int:
    found = re.search(rf"{word}_(\d+)", name)
    if not found:
        raise ValueError(f"unexpected LiteRT tensor name {name!r}")
    return int(found.group(1))


class Stream:
    """One LiteRT model on one thread: ``step(frame)`` for batch 1, ``step_many(frames)`` for a
    batched file; the state is carried between calls as the app would carry it."""

    def __init__(self, path: Path, threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        self.interp = Interpreter(model_path=str(path), num_threads=threads)
        self.interp.allocate_tensors()
        ins = sorted(self.interp.get_input_details(), key=lambda d: _number(d["name"], "args"))
        outs = sorted(self.interp.get_output_details(),
                      key=lambda d: _number(d["name"], "output"))
        self._x, self._y = self.interp.tensor(ins[0]["index"]), self.interp.tensor(outs[0]["index"])
        self._back = [(self.interp.tensor(i["index"]), self.interp.tensor(o["index"]))
                      for i, o in zip(ins[1:], outs[1:])]
        self.reset()

    def reset(self) -> None:
        for i, _ in self._back:
            i()[...] = 0

    def step(self, frame: np.ndarray) -> np.ndarray:
        """One step of one stream (batch 1): its output."""
        self._x()[0] = frame
        self.interp.invoke()
        for i, o in self._back:
            i()[...] = o()
        return self._y()[0].copy()

    def step_many(self, frames: np.ndarray) -> np.ndarray:
        """One step of every stream of a batched file: frames (B, F) -> outputs (B, O)."""
        self._x()[...] = frames
        self.interp.invoke()
        for i, o in self._back:
            i()[...] = o()
        return self._y().copy()


if __name__ == "__main__":
    sys.exit(available())
