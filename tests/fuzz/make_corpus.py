"""Write the fuzz suite's seed corpus: real lean int8 step files (LSTM, GRU, RNN), made the way
a user makes them (``export --ops lean`` then ``quantize --recurrent int8``), from seeded small
networks so that they stay a few kilobytes each. Run from the repository root when the file format changes:

    python -m tests.fuzz.make_corpus

The files are committed (tests/fuzz/corpus): the suite mutates them without torch.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

CORPUS = Path(__file__).parent / "corpus"


def main() -> None:
    from edgernn.checkpoint import Checkpoint, save_checkpoint
    from edgernn.config import ModelConfig
    from edgernn.exporters import export
    from edgernn.exporters.quant.quantize import Gate, quantize
    from edgernn.models import build

    CORPUS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for cell in ("lstm", "gru", "rnn"):
            cfg = ModelConfig(cell=cell, input_size=5, hidden_size=16, num_layers=2,
                              output_size=3, head="classify_step")
            ckpt = save_checkpoint(Path(tmp) / f"{cell}.pt", Checkpoint(
                config=cfg, state_dict=build(cfg, seed=7).state_dict()))
            fp32 = export(ckpt, Path(tmp) / f"{cell}.onnx", ops="lean").path
            # an RNN keeps its recurrent products fp32 unless asked (--recurrent int8)
            quantize(fp32, CORPUS / f"{cell}.int8.onnx", recurrent="int8",
                     gate=Gate(horizon=50, check_metric=False), measure_latency=False)
            print(CORPUS / f"{cell}.int8.onnx")


if __name__ == "__main__":
    main()
