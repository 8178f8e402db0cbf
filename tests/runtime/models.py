"""Small ONNX models for the runtime tests, made here from seeded tiny networks.

Runs on the host (needs torch and onnx). The runtime tests use these files and nothing else, so
they also run in a device install: ``python -m tests.runtime.models DIR`` writes the files,
and ``EDGERNN_TEST_MODELS=DIR pytest tests/runtime`` runs the tests without torch.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from tests.runtime.shapes import NAMES as SHAPE_NAMES

NAMES = ("lstm_step", "lstm_step_fused", "lstm_step_lean", "lstm_step_int8", "lstm_chunk",
         "gru_step_decomposed", "lm_step", "bidi_sequence",
         "no_contract", "not_recurrent", "other_weights", "silero_vad", "lstm_step_ortq",
         *SHAPE_NAMES)


def published_vad() -> Path | None:
    """Silero VAD's published stateful ONNX model, as its package ships it (no download);
    found without importing the package (which imports torch). None when not installed."""
    import importlib.util

    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "silero_vad.onnx"
    return path if path.is_file() else None


def build_models(folder: str | Path) -> Path:
    import onnx
    import torch

    from edgernn.config import ModelConfig
    from edgernn.contract import Normalization
    from edgernn.checkpoint import Checkpoint
    from edgernn.exporters import export
    from edgernn.models import build

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lstm = ModelConfig(cell="lstm", input_size=4, hidden_size=8, num_layers=2, output_size=3,
                       head="classify_step")
    ckpt = Checkpoint(config=lstm, state_dict=build(lstm, seed=0).state_dict(), task="",
                      preprocessing=Normalization([0.5, -1.0, 0.0, 2.0], [2.0, 1.0, 0.5, 3.0]),
                      labels=["low", "mid", "high"])
    export(ckpt, folder / "lstm_step.onnx", graph="step", ops="compact")
    export(ckpt, folder / "lstm_step_fused.onnx", graph="step", ops="fused")
    export(ckpt, folder / "lstm_step_lean.onnx", graph="step", ops="lean")
    export(ckpt, folder / "lstm_chunk.onnx", graph="chunk")
    # edgernn's int8 of the lean file: one ai.edgernn node per layer (runtime/cells8's kernels)
    from edgernn.exporters.quant.quantize import Gate, quantize

    quantize(folder / "lstm_step_lean.onnx", folder / "lstm_step_int8.onnx",
             gate=Gate(horizon=100, check_metric=False), measure_latency=False)
    other = Checkpoint(config=lstm, state_dict=build(lstm, seed=1).state_dict())
    export(other, folder / "other_weights.onnx", graph="step", ops="compact")
    gru = ModelConfig(cell="gru", input_size=4, hidden_size=8, num_layers=1, output_size=2,
                      head="regress")
    export(build(gru, seed=0), folder / "gru_step_decomposed.onnx", ops="decomposed")
    lm = ModelConfig(cell="gru", input_size=12, hidden_size=8, num_layers=1, output_size=12,
                     head="lm", embedding_dim=4)
    export(Checkpoint(config=lm, state_dict=build(lm, seed=0).state_dict(),
                      vocabulary="abcdefgh .,\n"), folder / "lm_step.onnx")
    bidi = lstm.replace(bidirectional=True, head="classify_last")
    export(build(bidi, seed=0), folder / "bidi_sequence.onnx", graph="sequence")

    # A stateful model someone else exported: a bare GRU, names h0 -> hn, no contract.
    rnn = torch.nn.GRU(4, 6, batch_first=True).eval()
    torch.manual_seed(0)
    torch.onnx.export(rnn, (torch.randn(1, 1, 4), torch.zeros(1, 1, 6)),
                      str(folder / "no_contract.onnx"), input_names=["input", "h0"],
                      output_names=["output", "hn"], dynamic_axes={"input": {1: "time"}},
                      opset_version=17, dynamo=False)
    proto = onnx.load(folder / "no_contract.onnx")
    del proto.metadata_props[:]
    onnx.save(proto, folder / "no_contract.onnx")
    # A published model: Silero VAD (inputs input [?, ?], state [2, ?, 128], sr scalar).
    vad = published_vad()
    if vad is not None:
        shutil.copyfile(vad, folder / "silero_vad.onnx")
    # Not recurrent at all.
    torch.onnx.export(torch.nn.Linear(4, 2).eval(), (torch.randn(1, 4),),
                      str(folder / "not_recurrent.onnx"), input_names=["x"], output_names=["y"],
                      opset_version=17, dynamo=False)
    # The edgernn file quantized by ONNX Runtime's own quantize_dynamic: it keeps the fp32
    # file's contract (quantization None) while its activations are scaled per call.
    from onnxruntime.quantization import quantize_dynamic

    quantize_dynamic(folder / "lstm_step.onnx", folder / "lstm_step_ortq.onnx")
    # Foreign files of output ranks and dtypes edgernn never exports (onnx alone).
    from tests.runtime.shapes import build as build_shapes

    build_shapes(folder)
    build_seq2seq(folder)
    return folder


# Encoder-decoder pairs: a GRU with Luong attention trained briefly on the built-in dates (10
# epochs: about 0.85 exact match, and '3 March 2021' decodes right, so its outputs mean
# something), and untrained ones covering the other forms: a 2-layer LSTM with Bahdanau
# attention, and a unidirectional GRU without attention handing its last state over.
SEQ2SEQ = {"s2s_luong": dict(cell="gru", attention="luong", hidden_size=48, embedding_dim=24),
           "s2s_bahdanau": dict(cell="lstm", attention="bahdanau", num_layers=2, hidden_size=16,
                                embedding_dim=8),
           "s2s_none": dict(cell="gru", attention="none", bidirectional=False, bridge="none",
                            hidden_size=16, embedding_dim=8)}
SEQ2SEQ_SOURCES = ["3 March 2021", "June 26, 1953", "12/25/1999", "Tue, May 20 2014",
                   "1st of January 2000", "19700101"]


def build_seq2seq(folder: Path) -> None:
    """The pairs, and what PyTorch's greedy decoding gives for SEQ2SEQ_SOURCES
    (seq2seq_reference.json), so a device install checks its decoding without torch."""
    import json

    from edgernn.checkpoint import load_seq2seq
    from edgernn.exporters.from_torch.seq2seq import export_seq2seq
    from edgernn.seq2seq import Seq2Seq, Seq2SeqConfig, fit, save_checkpoint
    from edgernn.tasks.seq2seq import load

    data = load(size=0.5, seed=0)
    reference = {}
    for name, options in SEQ2SEQ.items():
        config = Seq2SeqConfig(len(data.source_vocab), len(data.target_vocab), **options)
        if name == "s2s_luong":
            trained = fit(data, config, epochs=10, verbose=False)
            model, max_len = trained.model, trained.max_len
        else:
            import torch

            torch.manual_seed(1)
            model, max_len = Seq2Seq(config).eval(), 14
        ckpt_path = save_checkpoint(folder / f"{name}.pt", model, data.source_vocab,
                                    data.target_vocab, max_len, data.ref)
        ckpt = load_seq2seq(ckpt_path)
        export_seq2seq(ckpt, folder / f"{name}.onnx")
        bos, eos = data.target_vocab.specials["bos"], data.target_vocab.specials["eos"]
        reference[name] = []
        for text in SEQ2SEQ_SOURCES:
            tokens, logps = ckpt.model.greedy(data.source_vocab.encode(text), bos, eos, max_len)
            ended = tokens + ([eos] if len(tokens) < max_len else [])
            reference[name].append({"source": text, "tokens": tokens, "log_prob": float(sum(
                lp[t] for lp, t in zip(logps, ended)))})
    (folder / "seq2seq_reference.json").write_text(json.dumps(reference))


if __name__ == "__main__":
    build_models(sys.argv[1])
    print(sys.argv[1])
