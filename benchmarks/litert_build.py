"""LiteRT files as LiteRT's users build them: litert-torch's converter, ai-edge-quantizer's int8.

    build/bench-venv/bin/python benchmarks/litert_build.py NET.pt OUT_DIR [--batch 1 64 256]

Runs in the benchmark-only install (``make bench-env``: torch, litert-torch 0.10 and
ai-edge-quantizer 0.10, pinned in benchmarks/constraints-litert.txt; they need a newer protobuf
than the main install's onnx, so they live in their own venv). ``NET.pt`` is an edgernn
``RecurrentNet`` saved whole with ``torch.save`` by benchmarks/litert_ref.py. For every batch size
it writes ``fp32-B.tflite`` (the converter's file) and ``int8-B.tflite`` (that file through
ai-edge-quantizer's dynamic-range recipe, ``dynamic_wi8_afp32``: int8 weights per channel,
activations quantized per call, the recipe its docs give for a smaller, faster CPU model).

The converted module is what a LiteRT user writes to stream a recurrent model: one step, the
state as inputs and outputs, ``(y, *state) = step(x, *state)``, the torch layers themselves
(``nn.LSTM``/``nn.GRU``/``nn.RNN`` over one time step and the head).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def step_module(net):
    import torch

    class Step(torch.nn.Module):
        """One streamed step: x (B, I) and the state (layers, B, H) per tensor -> y and state."""

        def __init__(self):
            super().__init__()
            self.rnn, self.head = net.rnn, net.head
            self.pair = isinstance(net.rnn, torch.nn.LSTM)

        def forward(self, x, *state):
            out, new = self.rnn(x[:, None, :], tuple(state) if self.pair else state[0])
            y = self.head(out[:, 0])
            return (y, *new) if self.pair else (y, new)

    return Step().eval()


def sample(net, batch: int):
    import torch

    c = net.config
    states = 2 if c.cell == "lstm" else 1
    return (torch.zeros(batch, c.input_size),
            *(torch.zeros(c.num_layers, batch, c.hidden_size) for _ in range(states)))


def build(net_path: Path, out: Path, batches) -> None:
    import litert_torch
    import torch
    from ai_edge_quantizer import quantizer, recipe

    net = torch.load(net_path, weights_only=False).eval()
    out.mkdir(parents=True, exist_ok=True)
    for batch in batches:
        fp32 = out / f"fp32-{batch}.tflite"
        litert_torch.convert(step_module(net), sample(net, batch)).export(str(fp32))
        q = quantizer.Quantizer(str(fp32))
        q.load_quantization_recipe(recipe.dynamic_wi8_afp32())
        q.quantize().export_model(str(out / f"int8-{batch}.tflite"), overwrite=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("net", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--batch", type=int, nargs="+", default=[1])
    args = ap.parse_args()
    build(args.net, args.out, args.batch)


if __name__ == "__main__":
    main()
