"""edgernn demo: the whole pipeline on a built-in task."""

from __future__ import annotations

from pathlib import Path

import click

from edgernn.cli.common import echo_json, json_option, table
from edgernn.cli.train import print_summary, run_training, train_options
from edgernn.cli.validate import print_report, raise_if_failed
from edgernn.progress import log


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
      edgernn demo                      # keyword spotting, LSTM 40->128x2->10
      edgernn demo --task charlm --out runs/charlm
      edgernn demo --profile arm64-cpu
    """
    from edgernn.cli.checks import folder_writable, readable
    from edgernn.devices import get_profile

    folder_writable(out, "--out")
    readable(options.get("data"), "--data")
    if profile:
        get_profile(profile)                       # an unknown profile stops here, not later

    from edgernn.checkpoint import save_checkpoint
    from edgernn.cli.export import resolve_form
    from edgernn.exporters import export, validate
    from edgernn.exporters.quantize import Gate, quantize
    from edgernn.exporters.validate import plot, record
    out.mkdir(parents=True, exist_ok=True)
    log(f"[1/5] train '{options['task_name']}'")
    result = run_training(**options)
    ckpt_path = save_checkpoint(out / "model.pt", result.checkpoint())
    graph, ops = resolve_form(profile, None, None)
    if not result.config.streamable:
        graph, ops = "sequence", "fused"
    log(f"[2/5] export a {graph} graph ({ops} ops)")
    exported = export(ckpt_path, out / "model.onnx", graph=graph, ops=ops)
    log(f"[3/5] validate against PyTorch ({horizon} streamed steps)")
    report = validate(ckpt_path, [exported.path], horizon=horizon)
    record(report)
    plot(report, out / "drift.png")
    streaming = None
    if graph != "sequence":
        log("[4/5] stream through edgernn.runtime, next to PyTorch eager")
        streaming = _stream_latency(exported.path, ckpt_path, result, profile)
    mode = (get_profile(profile).quantize_mode() if profile else None) or "dynamic"
    log(f"[5/5] quantize ({mode}) behind the quality gate")
    quant = quantize(exported.path, out / f"model.{'fp16' if mode == 'fp16' else 'int8'}.onnx",
                     mode=mode, checkpoint=ckpt_path, gate=Gate(horizon=max(horizon, 100)))
    if as_json:
        echo_json({"train": result.summary(), "checkpoint": str(ckpt_path),
                   "export": exported.to_dict(), "validate": report.to_dict(),
                   "streaming": streaming, "quantize": quant.to_dict()})
    else:
        print_summary(result)
        click.echo(f"\nexported {exported.path}: {exported.bytes:,} bytes, {graph} graph, "
                   f"opset {exported.opset}, {exported.seconds:.2f} s\n")
        print_report(report)
        if streaming:
            click.echo("\nstreaming one step per call, state carried, 1 thread (microseconds):")
            click.echo(table([[k, v["p50_us"], v["p99_us"]] for k, v in streaming.items()],
                             ["engine", "p50", "p99"]))
        q = "fp16" if mode == "fp16" else "int8"
        click.echo(f"\nfp32 against {q} ({mode}):")
        click.echo(table(_summary_rows(quant), ["figure", "fp32", q, f"{q} / fp32"]))
        for note in quant.notes:
            click.echo(f"note: {note}")
        click.echo(f"\nfiles in {out}: model.pt, model.onnx, model.{q}.onnx, drift.png")
    raise_if_failed(report)


def _stream_latency(onnx_path, ckpt_path, result, profile=None, steps: int = 2000) -> dict:
    """Stream the task's own frames through the runtime; time it next to PyTorch eager."""
    import numpy as np

    from edgernn.runtime import bench, load

    stream = load(onnx_path, profile=profile, threads=1).stream()
    frames = result.task.stream(steps, seed=7)
    it = iter(range(10**9))

    def step():
        stream.step(frames[next(it) % steps])

    name = f"edgernn.runtime stream.step ({', '.join(stream.model.providers)})"
    figures = {name: bench.interleaved({"s": step}, steps, rounds=2)["s"]}
    out = {k: {"p50_us": bench.median_of_medians(v) / 1e3,
               "p99_us": float(np.percentile(v, 99) / 1e3)}
           for k, v in figures.items()}
    torch_fig = bench.torch_step_latency(ckpt_path, steps=steps // 2)
    if torch_fig:
        out["pytorch eager"] = torch_fig
    return out


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
