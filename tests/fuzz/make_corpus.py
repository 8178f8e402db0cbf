"""Write the fuzz suite's seed corpus: real lean int8 step files (LSTM, GRU, RNN, and the RNN
with its default float recurrent product) and the lean fp32 LSTM file (Step nodes), made the
way a user makes them (``export`` then ``quantize``), from seeded small networks so that they
stay a few kilobytes each. Run from the repository root when the file format changes:

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
        # an RNN keeps its recurrent products fp32 unless asked (--recurrent int8): its default
        # file has the float-R cells (RNNCellF, RNNCellFQ)
        for cell, recurrent, name in (("lstm", "int8", "lstm"), ("gru", "int8", "gru"),
                                      ("rnn", "int8", "rnn"), ("rnn", "auto", "rnn-float-r")):
            cfg = ModelConfig(cell=cell, input_size=5, hidden_size=16, num_layers=2,
                              output_size=3, head="classify_step")
            ckpt = save_checkpoint(Path(tmp) / f"{cell}.pt", Checkpoint(
                config=cfg, state_dict=build(cfg, seed=7).state_dict()))
            fp32 = export(ckpt, Path(tmp) / f"{cell}.onnx", ops="lean").path
            quantize(fp32, CORPUS / f"{name}.int8.onnx", recurrent=recurrent,
                     gate=Gate(horizon=50, check_metric=False), measure_latency=False)
            print(CORPUS / f"{name}.int8.onnx")
            if name == "lstm":                      # the fp32 file: its layers are Step nodes
                (CORPUS / "lstm.fp32.onnx").write_bytes(fp32.read_bytes())
                print(CORPUS / "lstm.fp32.onnx")


if __name__ == "__main__":
    main()
