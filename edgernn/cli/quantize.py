"""edgernn quantize"""

from __future__ import annotations

from pathlib import Path

import click

from edgernn.choices import (CALIBRATION_FRAMES, DEFAULT_QUANTIZE_MODE, GATE_HORIZON,
                             GATE_MAX_ERROR, QUANTIZE_INPUTS, QUANTIZE_MODES,
                             QUANTIZE_RECURRENT, quantized_path)
from edgernn.cli.common import Finite, echo_json, json_option, table
from edgernn.progress import log


def report_rows(r) -> list[list]:
    c = r.coverage
    q = "fp16" if r.mode == "fp16" else "int8"
    kinds = ", ".join(f"{v} {k}" for k, v in sorted(c.options.get("products", {}).items()))
    rows = [["mode", f"{r.mode} (recurrent products {r.recurrent})"],
            ["size", f"{r.bytes_out:,} bytes = {r.size_ratio:.3f} x fp32 ({r.bytes_fp32:,})"],
            [f"{q} products", f"{c.weight_tensors_int8} of {c.weight_tensors}"
                              + (f" ({kinds})" if kinds else "")],
            [f"{q} share of MACs per step", f"{c.mac_share_int8:.1%}"],
            ["p99 error / fp32 std", f"{r.error_p99:.4g} (gate {r.gate.max_error}); worst "
                                     f"{r.worst_error:.4g}"],
            ["error first -> last tenth", f"{r.drift_first:.3g} -> {r.drift_last:.3g} over "
                                          f"{r.drift_data}"]]
    if r.metric is not None:
        rows.append([f"task {r.metric.metric}", f"{r.metric.describe()} "
                                                f"({'ok' if r.metric_ok else 'FAIL'})"])
        rows.append(["test data", r.data.describe()])
    if r.latency_fp32_us:
        rows.append(["step latency", f"{r.latency_out_us:.1f} us vs fp32 {r.latency_fp32_us:.1f}"
                                     f" us = {r.latency_out_us / r.latency_fp32_us:.2f}x"])
    if c.calibration:
        rows.append(["calibration", c.calibration])
    return rows


@click.command("quantize")
@click.argument("model_path", metavar="MODEL.onnx", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Quantized file [default: MODEL.int8.onnx, or MODEL.fp16.onnx].")
@click.option("--mode", type=click.Choice(QUANTIZE_MODES),
              help="[default: the profile's precision, else dynamic]")
@click.option("--profile", help="Device profile whose preferred precision to produce.")
@click.option("--checkpoint", type=click.Path(path_type=Path),
              help="The checkpoint the model came from, checked to hold the file's weights "
                   "(quantize needs none: fused operators are written out from the file).")
@click.option("--data", type=click.Path(path_type=Path),
              help="The data to gate and calibrate on (the format 'edgernn train --data' "
                   "takes) [default: the data the model was trained on].")
@click.option("--calibration", type=click.Path(path_type=Path),
              help="static, for a model that names no task: an .npz with 'x' frames shaped "
                   "(N, T, features) in the data's own units.")
@click.option("--calibration-frames", type=click.IntRange(1), default=CALIBRATION_FRAMES,
              show_default=True,
              help="static: (frame, state) points drawn from across the training split.")
@click.option("--inputs", type=click.Choice(QUANTIZE_INPUTS), default=QUANTIZE_INPUTS[0],
              show_default=True,
              help="The products that read the input frames: kept fp32 (their range is the "
                   "data's; a small share of the work), or int8 too.")
@click.option("--recurrent", type=click.Choice(QUANTIZE_RECURRENT),
              default=QUANTIZE_RECURRENT[0],
              show_default=True, help="Hidden-to-hidden products: int8, kept fp32, or int8 "
                                      "falling back to fp32 when the gate fails.")
@click.option("--horizon", type=click.IntRange(100), default=GATE_HORIZON, show_default=True,
              help="Streamed steps the gate checks for drift.")
@click.option("--max-error", type=Finite(0, min_open=True), default=GATE_MAX_ERROR,
              show_default=True,
              help="Gate: 99th percentile of the per-step |quantized - fp32|, in units of the "
                   "fp32 output std.")
@click.option("--max-drop", type=Finite(0),
              help="Gate: how much worse the task metric may be, beyond two standard errors of "
                   "the test set: accuracy points (0.01), a share of the MAE (0.05), bits per "
                   "character [default: the task's].")
@click.option("--force", is_flag=True, help="Write the file even if it fails the gate.")
@json_option
def command(model_path, output, mode, profile, checkpoint, data, calibration, calibration_frames,
            inputs, recurrent, horizon, max_error, max_drop, force, as_json):
    """Quantize an exported model and check it against the fp32 original.

    Over the gate's tolerance it exits 1 and writes nothing (unless --force); otherwise it
    records mode, coverage, calibration and measured parity in the contract.

    \b
    Examples:
      edgernn quantize model.onnx -o model.int8.onnx
      edgernn quantize gru.onnx --data sensors.csv -o gru.int8.onnx
      edgernn quantize model.onnx --mode static --calibration-frames 4096
    """
    from edgernn.cli.checks import readable, writable
    from edgernn.errors import ConfigError, ParityError

    if mode is None and profile:
        from edgernn.devices import get_profile

        mode = get_profile(profile).quantize_mode()
        if mode is None:
            raise ConfigError(f"profile {profile!r} prefers fp32 artifacts: there is nothing to "
                              f"quantize for it. Pass --mode to quantize anyway")
    mode = mode or DEFAULT_QUANTIZE_MODE
    explicit_output = output is not None
    output = output or quantized_path(model_path, mode)
    readable(model_path, "model")
    for path, what in ((checkpoint, "--checkpoint"), (data, "--data"),
                       (calibration, "--calibration")):
        readable(path, what)
    writable(output, "--output", inputs={"the model": model_path, "the checkpoint": checkpoint,
                                         "the data": data, "the calibration file": calibration})
    encoder = _pair_encoder(model_path)
    if encoder is not None:
        return _pair(model_path, encoder, output if explicit_output else None, mode, data,
                     max_drop, force, as_json)
    log(f"quantize {model_path} ({mode}): convert, then the gate on the model's own data")
    try:
        report = _run(model_path, output, mode, checkpoint, data, calibration,
                      calibration_frames, inputs, recurrent, force, horizon, max_error, max_drop)
    except ParityError as exc:
        if as_json and exc.report is not None:
            echo_json(exc.report.to_dict())          # the failing report, then the error
        raise
    if as_json:
        echo_json(report.to_dict())
        return
    click.echo(f"wrote {output}" + ("" if report.passed else " (FAILED the gate; --force)"))
    click.echo(table(report_rows(report), ["figure", "value"]))
    for note in report.notes:
        click.echo(f"note: {note}")


def _run(model_path, output, mode, checkpoint, data, calibration, calibration_frames, inputs,
         recurrent, force, horizon, max_error, max_drop):
    from edgernn.exporters.quant.quantize import Gate, quantize

    return quantize(model_path, output, mode=mode, checkpoint=checkpoint, data=data,
                    calibration=calibration, calibration_frames=calibration_frames,
                    inputs=inputs, recurrent=recurrent, force=force,
                    gate=Gate(horizon=horizon, max_error=max_error, max_drop=max_drop))


def _pair_encoder(path) -> Path | None:
    """The encoder's path when ``path`` is either file of an encoder-decoder pair."""
    from edgernn.exporters.artifact import contract_in, read_proto

    try:
        spec = contract_in(read_proto(path), str(path)).seq2seq
    except Exception:          # not readable or no contract: quantize() says so in its terms
        return None
    if spec is None:
        return None
    return Path(path) if spec.role == "encoder" else Path(path).parent / spec.partner


def _pair(model_path, encoder, output, mode, data, max_drop, force, as_json) -> None:
    """An encoder-decoder pair: both graphs int8, judged on the held-out pairs."""
    from edgernn.cli.checks import writable
    from edgernn.errors import ConfigError, ParityError
    from edgernn.exporters.from_torch.seq2seq import decoder_path
    from edgernn.exporters.quant.seq2seq import quantize_pair

    if mode != "dynamic":
        raise ConfigError("an encoder-decoder pair is quantized dynamic (row-independent int8); "
                          "--mode static and fp16 do not take it yet")
    out = output or quantized_path(encoder, "dynamic")
    for path in (out, decoder_path(out)):
        writable(path, "--output", inputs={"the model": model_path,
                                           "its decoder": decoder_path(model_path),
                                           "the data": data})
    log(f"quantize {model_path} and its decoder (int8): convert, then decode the held-out "
        f"pairs with both")
    try:
        report = quantize_pair(model_path, out, data=data, max_drop=max_drop, force=force)
    except ParityError as exc:
        if as_json and exc.report is not None:
            echo_json(exc.report.to_dict())
        raise
    if as_json:
        echo_json(report.to_dict())
        return
    click.echo(f"wrote {report.encoder} and {report.decoder}"
               + ("" if report.passed else " (FAILED the gate; --force)"))
    c = report.check
    click.echo(table([
        ["exact match (greedy)", f"{c.value:.4f} vs fp32 {c.reference:.4f} "
                                 f"({'ok' if c.passed else 'FAIL'}: {c.describe()})"],
        ["token error rate", f"{report.token_error_int8:.4f} vs fp32 "
                             f"{report.token_error_fp32:.4f}"],
        ["outputs changed", f"{report.changed} of {c.items}"],
        ["size", f"{report.bytes_int8:,} bytes = {report.size_ratio:.3f} x fp32"],
        ["int8 share of products", ", ".join(f"{k} {v:.1%}"
                                              for k, v in report.mac_share.items())]],
        ["figure", "value"]))
    for note in report.notes:
        click.echo(f"note: {note}")
