"""Why edgernn's int8 multiplies u8 x u8: the two schemes that never saturate, side by side.

    python benchmarks/int8_scheme_bench.py [--cells lstm,gru] [--folder DIR]

- **u8 x s8, 7-bit activations** (edgernn before issue 20): activations u8 around 64 (1..127),
  weights s8; 127 * 127 * 2 < 2^15, so AVX2's saturating pair-add never clips;
- **u8 x u8, 8-bit activations** (now): activations u8 around 128 (1..255), weights stored u8
  around 128; ONNX Runtime widens u8 x u8 to 16 bits before multiplying.

For the keyword model with each cell (trained on its defaults, cached in ``--folder``): the
error against PyTorch over 50 fed-back steps on 20 streams (as benchmarks/int8_error.py), and
per stream-step time of one stream and of pools of 64 and 256 (``pool.step_many``) against
fp32, all paths alternating in rounds (medians of round medians), one thread.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


@contextmanager
def before():
    """The rewrite as it was: 7-bit activations around 64, s8 weights without a zero point."""
    from edgernn.exporters.quant import int8 as q8

    from onnx import TensorProto

    def product(wr, q, wq):                      # u8 x s8, no zero point for the weights
        return wr.one("Cast", [wr.one("MatMulInteger", [q, wr.const("w", wq), wr.const(
            "zp", np.array(q8.ZERO, np.uint8))])], to=TensorProto.FLOAT)

    saved = q8.ACT_TOP, q8.ZERO, q8._product
    q8.ACT_TOP, q8.ZERO, q8._product = 63, 64, product
    try:
        yield
    finally:
        q8.ACT_TOP, q8.ZERO, q8._product = saved


def files(ckpt_path: Path, folder: Path) -> dict:
    from contextlib import nullcontext

    from edgernn.exporters import export
    from edgernn.exporters.quant.quantize import Gate, quantize

    fp32 = export(ckpt_path, folder / "compact.onnx").path
    out = {"fp32": fp32}
    for name, scheme in (("u8 x s8, 7-bit (before)", before), ("u8 x u8, 8-bit (now)",
                                                                  nullcontext)):
        path = folder / f"{name.split(',')[0].replace(' ', '')}.onnx"
        with scheme():
            quantize(fp32, path, gate=Gate(horizon=300, check_metric=False), force=True,
                     measure_latency=False)
        out[name] = path
    return out


def main() -> None:
    import int8_error

    from edgernn.runtime import bench, load
    from edgernn.tasks import get_task

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", default="lstm,gru")
    ap.add_argument("--folder", type=Path)
    args = ap.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="edgernn-scheme-"))
    task = get_task("classify")
    frames = [task.stream(50, s) for s in range(20)]
    for cell in args.cells.split(","):
        ckpt_path, ckpt = int8_error.trained(cell, folder)
        net = ckpt.build_model().eval()
        where = folder / f"scheme-{cell}"
        where.mkdir(exist_ok=True)
        made = files(ckpt_path, where)
        print(f"{cell}: max |y - torch| over 50 fed-back steps, 20 streams (median)")
        for name, path in made.items():
            e = int8_error.fed_back_error(net, load(path, threads=1).stream, frames,
                                          ckpt.preprocessing)
            print(f"   {name:26s} {e.max():.4f} ({np.median(e):.4f})")
        print(f"{cell}: per stream-step, x fp32")
        for n in (1, 64, 256):
            x = np.random.default_rng(n).normal(size=(n, task.model.input_size))
            x = x.astype(np.float32)
            fns = {}
            for name, path in made.items():
                pool = load(path, threads=1).pool(normalize=False)
                ids = [pool.open() for _ in range(n)]
                fns[name] = (lambda p=pool, i=ids: p.step_many(i, x))
            t = bench.interleaved(fns, 1800 if n == 1 else 600, rounds=6)
            base = bench.median_of_medians(t["fp32"])
            print(f"   {n:3d} streams: " + "; ".join(
                f"{k} {bench.median_of_medians(v) / 1e3 / n:.2f} us "
                f"({bench.median_of_medians(v) / base:.2f}x)" for k, v in t.items()))


if __name__ == "__main__":
    main()
