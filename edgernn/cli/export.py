"""edgernn export"""

from __future__ import annotations

from pathlib import Path

import click

from edgernn.choices import (DEFAULT_EXPORTER, DEFAULT_OPSET, EXPORT_TOLERANCE,
                             EXPORTERS, GRAPH_KINDS, MIN_OPSET, OP_FORMS, RTOL)
from edgernn.cli.common import Finite, echo_json, json_option, table


def export_options(f):
    for option in reversed([
        click.option("--graph", type=click.Choice(GRAPH_KINDS),
                     help="One step per call, T steps per call (T dynamic), or whole sequences "
                     "without state (the only kind for bidirectional models) [default: the "
                     "profile's, else the task's (chunk for vad), else step; sequence for a "
                     "bidirectional model]."),
        click.option("--ops", type=click.Choice(OP_FORMS),
                     help="How a step graph writes the cell: edgernn's compact graph (one "
                          "product per layer; state (batch, layers x hidden)), edgernn's lean "
                          "graph (one ONNX Runtime kernel per layer, which quantize makes one "
                          "int8 kernel node; state per layer), torch's export with ONNX "
                          "LSTM/GRU/RNN operators, or torch's with MatMul and element-wise ops "
                          "[default: the profile's; else lean for edgernn's networks, fused for "
                          "other modules and for chunk graphs]."),
        click.option("--profile", help="Device profile whose preferred graph and ops to "
                                       "export (see 'edgernn devices')."),
        click.option("--opset", type=click.IntRange(MIN_OPSET), default=DEFAULT_OPSET,
                     show_default=True,
                     help="ONNX opset (dynamo writes 18 or newer)."),
        click.option("--exporter", type=click.Choice(EXPORTERS),
                     default=DEFAULT_EXPORTER, show_default=True, help="Which torch exporter."),
    ]):
        f = option(f)
    return f


@click.command("export")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="ONNX file to write [default: CHECKPOINT with .onnx].")
@export_options
@click.option("--atol", type=Finite(0), default=EXPORT_TOLERANCE, show_default=True,
              help="Parity with PyTorch: max abs error per output and state element...")
@click.option("--rtol", type=Finite(0), default=RTOL, show_default=True,
              help="...plus this share of the element's magnitude (|onnx - torch| <= atol + "
                   "rtol x |torch|): float32 rounding of outputs in large units.")
@json_option
def command(checkpoint, output, graph, ops, profile, opset, exporter, atol, rtol, as_json):
    """Export a checkpoint to ONNX with explicit state and an embedded contract.

    The file is checked against PyTorch in ONNX Runtime first; one that fails is not written.

    \b
    Examples:
      edgernn export model.pt -o model.onnx
      edgernn export model.pt --graph chunk -o model.chunk.onnx
      edgernn export model.pt --ops decomposed --exporter dynamo -o model.dec.onnx
      edgernn export model.pt --profile arm64-cpu -o model.arm64.onnx
    """
    from edgernn.checkpoint import checkpoint_kind, load_checkpoint
    from edgernn.cli.checks import readable, writable
    from edgernn.pipeline import form_for

    output = output or checkpoint.with_suffix(".onnx")
    readable(checkpoint, "checkpoint")
    writable(output, "--output", inputs={"the checkpoint": checkpoint})
    if checkpoint_kind(checkpoint) == "seq2seq":
        return _seq2seq(checkpoint, output, graph, ops, profile, opset, atol, as_json)
    ckpt = load_checkpoint(checkpoint)
    asked = graph or profile
    graph, ops = form_for(profile, graph, ops, ckpt.config.streamable, ckpt.task)

    from edgernn.exporters import export
    result = export(checkpoint, output, graph=graph, ops=ops, opset=opset, exporter=exporter,
                    tolerance=atol, rtol=rtol)
    if as_json:
        echo_json(result.to_dict())
        return
    click.echo(f"wrote {output}")
    click.echo(table([["graph", f"{graph} ({result.ops} ops)"], ["exporter", result.exporter],
                      ["opset", result.opset], ["size", f"{result.bytes:,} bytes"],
                      ["states", ", ".join(s.name for s in result.contract.states) or "none"],
                      ["max abs error vs torch", result.max_abs_error],
                      ["export time", f"{result.seconds:.2f} s"],
                      ["ops", " ".join(result.op_types)]], ["field", "value"]))
    for note in result.notes:
        click.echo(f"note: {note}")
    if not asked and graph == "chunk":
        click.echo(f"note: a chunk graph, the '{ckpt.task}' task's default: it takes any number "
                   f"of hops a call (edgernn run feeds 30 ms); --graph step writes one hop a "
                   f"call, for Triton and int8")


def _seq2seq(checkpoint, output, graph, ops, profile, opset, atol, as_json):
    """An encoder-decoder checkpoint: the encoder to OUTPUT, the decoder beside it."""
    from edgernn.checkpoint import load_seq2seq
    from edgernn.cli.checks import writable
    from edgernn.errors import ConfigError
    from edgernn.exporters.from_torch.seq2seq import decoder_path, export_seq2seq

    if graph or ops or profile:
        raise ConfigError("a seq2seq model exports as an encoder graph and a step decoder "
                          "graph; --graph, --ops and --profile do not apply to it")
    writable(decoder_path(output), "the decoder file (beside --output)",
             inputs={"the checkpoint": checkpoint})
    result = export_seq2seq(load_seq2seq(checkpoint), output, opset=opset, tolerance=atol)
    if as_json:
        echo_json(result.to_dict())
        return
    click.echo(f"wrote {result.encoder} (encoder) and {result.decoder} (step decoder); load "
               f"either with edgernn.runtime.load()")
    click.echo(table([["size", f"{result.bytes:,} bytes (both files)"],
                      ["greedy tokens equal to PyTorch", f"{result.tokens_equal} of "
                                                          f"{result.sources} sources"],
                      ["max |score - torch|", result.max_logp_error]], ["field", "value"]))
