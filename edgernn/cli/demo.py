"""edgernn demo: the whole pipeline on a built-in task."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import click

from edgernn.cli.common import echo_json, json_option, table
from edgernn.cli.train import print_summary, train_options
from edgernn.cli.validate import print_report, raise_if_failed


@click.command("demo")
@train_options
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("runs/demo"), show_default=True,
              help="Folder for the checkpoint and artifacts.")
@click.option("--horizon", type=click.IntRange(0), default=10_000, show_default=True,
              help="Streamed steps for the drift check.")
@click.option("--profile", help="Device profile: its preferred graph, ops and precision, and "
                                "its providers for streaming (see 'edgernn devices').")
@json_option
def command(out, horizon, profile, as_json, **options):
    """The whole pipeline: train a built-in task's default model, export it to ONNX, validate
    it against PyTorch, stream it through the runtime and quantize it behind the gate.

    \b
    Examples:
      edgernn demo                      # keyword spotting on spoken clips, GRU 128
      edgernn demo --task charlm --out runs/charlm
      edgernn demo --profile arm64-cpu
    """
    from edgernn.cli.checks import folder_writable, readable
    from edgernn.devices import get_profile

    folder_writable(out, "--out")
    readable(options.get("data"), "--data", folder=True)
    if profile:
        get_profile(profile)                       # an unknown profile stops here, not later

    if options.get("task_name") == "seq2seq":
        with _own_folder(out):
            return _seq2seq(out, profile, as_json, options)
    from edgernn.pipeline import demo

    with _own_folder(out):
        result = demo(out, horizon=horizon, profile=profile, **options)
    report, quant, mode = result.validate, result.quantize, result.mode
    exported, streaming = result.export, result.streaming
    if as_json:
        echo_json(result.to_dict())
    else:
        print_summary(result.train)
        click.echo(f"\nexported {exported.path}: {exported.bytes:,} bytes, "
                   f"{exported.contract.graph} graph, "
                   f"opset {exported.opset}, {exported.seconds:.2f} s\n")
        print_report(report)
        if streaming:
            click.echo("\nstreaming one step per call, state carried, 1 thread (microseconds):")
            click.echo(table([[k, v["p50_us"], v["p99_us"]] for k, v in streaming.items()],
                             ["engine", "p50", "p99"]))
        if quant is not None:
            q = "fp16" if mode == "fp16" else "int8"
            click.echo(f"\nfp32 against {q} ({mode}):")
            click.echo(table(_summary_rows(quant), ["figure", "fp32", q, f"{q} / fp32"]))
            for note in quant.notes:
                click.echo(f"note: {note}")
        files = ["model.pt", "model.onnx", *([Path(quant.path).name] if quant else []),
                 "drift.png"]
        click.echo(f"\nfiles in {out}: {', '.join(files)}")
    raise_if_failed(report)


def _summary_rows(q) -> list[list]:
    rows = [["size (bytes)", q.bytes_fp32, q.bytes_out, q.size_ratio]]
    if q.latency_fp32_us:
        rows.append(["step latency (us)", q.latency_fp32_us, q.latency_out_us,
                     q.latency_out_us / q.latency_fp32_us])
    if q.metric is not None:
        rows.append([f"task {q.metric.metric}", q.metric.reference, q.metric.value,
                     "ok" if q.metric_ok else "FAIL"])
    rows.append(["p99 error / fp32 std", 0.0, q.error_p99,
                 f"{q.coverage.mac_share_int8:.0%} MACs {'fp16' if q.mode == 'fp16' else 'int8'}"])
    return rows


@contextlib.contextmanager
def _own_folder(out: Path):
    """A demo that fails (a full disk, Ctrl-C) leaves no folder it created behind: each file in
    it is written whole, but a half-run pipeline's set of files is not a demo."""
    created = not out.exists()
    try:
        yield
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise


def _seq2seq(out, profile, as_json, options) -> None:
    from edgernn.errors import ConfigError
    from edgernn.pipeline import demo_seq2seq

    if profile:
        raise ConfigError("--profile picks a streaming graph form; a seq2seq demo exports an "
                          "encoder and a step decoder and decodes on the CPU")
    doc = demo_seq2seq(out, **options)
    result = doc.pop("result")
    if as_json:
        echo_json(doc)
        return
    print_summary(result)
    e = doc["export"]
    click.echo(f"\nexported {e['encoder']} and {e['decoder']}: greedy tokens equal to PyTorch "
               f"on {e['parity']['tokens_equal']} of {e['parity']['sources']} sources\n")
    click.echo("held-out split decoded by edgernn.runtime:")
    click.echo(table([[k, f"{v['exact_match']:.4f}", f"{v['token_error_rate']:.4f}"]
                      for k, v in doc["runtime"].items()],
                     ["decoding", "exact match", "token error rate"]))
    click.echo(f"\nfiles in {out}: model.pt, model.onnx, model.decoder.onnx; try: edgernn run "
               f"{out}/model.onnx - --beam 4")
