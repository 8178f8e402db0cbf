"""Beam search cost against beam width and lengths, inside edgernn's limits (edgernn/limits.py).

    python benchmarks/beam_bench.py [--rounds 3]

A dates model (Luong attention, GRU 128; trained one epoch: it rarely ends early, so every call
runs its max_len steps) decodes inputs of 16, 256 and 2,048 characters with beams 1, 4, 16 and
64, max_len 64. For each it prints the decoder steps run, the time per hypothesis-step
(time / (beam x steps), median of rounds; flat along a row = linear in beam x length, the
attention over the input adding a part that grows with the input), and the peak of the arrays
Python allocated in the call (tracemalloc sees numpy's buffers; ONNX Runtime's own are not
counted). Then one batch of 8 inputs of 2,048 characters at beam 64: decoded in groups within
DECODE_BUDGET, its peak stays that of a group (the single input's row above), not 8 times it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def model(folder: Path):
    from edgernn.checkpoint import load_seq2seq
    from edgernn.exporters.from_torch.seq2seq import export_seq2seq
    from edgernn.runtime import load
    from edgernn.seq2seq import Seq2SeqConfig, fit
    from edgernn.tasks.seq2seq import load as load_data

    data = load_data(size=0.3, seed=0)
    config = Seq2SeqConfig(len(data.source_vocab), len(data.target_vocab), hidden_size=128,
                           embedding_dim=32)
    ckpt = fit(data, config, epochs=1, verbose=False).save(folder / "dates.pt")
    return load(export_seq2seq(load_seq2seq(ckpt), folder / "dates.onnx").encoder)


def measure(pair, texts, beam: int, rounds: int) -> tuple[int, float, float]:
    """(decoder steps, seconds per call (median), peak MB of Python-side arrays)."""
    from edgernn.runtime import engine

    steps = 0
    run = engine.Engine.run

    def counted(self, *a, **k):
        nonlocal steps
        steps += 1
        return run(self, *a, **k)

    engine.Engine.run = counted
    try:
        times = []
        for _ in range(rounds):
            t = time.perf_counter()
            pair.translate_batch(texts, beam=beam, max_len=64)
            times.append(time.perf_counter() - t)
        calls = steps // rounds
        tracemalloc.start()
        pair.translate_batch(texts, beam=beam, max_len=64)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    finally:
        engine.Engine.run = run
    return calls, float(np.median(times)), peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from edgernn.limits import DECODE_BUDGET, MAX_BEAM, MAX_TOKENS

    with tempfile.TemporaryDirectory() as tmp:
        pair = model(Path(tmp))
        print(f"limits: beam <= {MAX_BEAM}, input and max_len <= {MAX_TOKENS} tokens, "
              f"hypotheses x input tokens per decoder call <= {DECODE_BUDGET}")
        print(f"{'input chars':>11} {'beam':>5} {'steps':>6} {'ms/call':>9} "
              f"{'us/(beam*step)':>15} {'peak MB':>8}")
        for chars in (16, 256, 2048):
            text = ("12 March 2021 " * (chars // 14 + 1))[:chars]
            for beam in (1, 4, 16, MAX_BEAM):
                steps, sec, peak = measure(pair, [text], beam, args.rounds)
                print(f"{chars:11d} {beam:5d} {steps:6d} {sec * 1e3:9.1f} "
                      f"{sec / (beam * max(steps, 1)) * 1e6:15.1f} {peak:8.1f}")
        text = ("12 March 2021 " * 150)[:2048]
        steps, sec, peak = measure(pair, [text] * 8, MAX_BEAM, 1)
        print(f"batch of 8 inputs of 2048 chars, beam {MAX_BEAM}: {steps} decoder calls, "
              f"{sec:.1f} s, peak {peak:.1f} MB (groups within the budget)")


if __name__ == "__main__":
    main()
