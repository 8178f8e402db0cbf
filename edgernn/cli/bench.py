"""edgernn bench"""

from __future__ import annotations

from pathlib import Path

import click

from edgernn.cli.common import echo_json, json_option, table


@click.command("bench")
@click.argument("model_path", metavar="MODEL.onnx", type=click.Path(path_type=Path))
@click.option("--checkpoint", type=click.Path(path_type=Path),
              help="Also time PyTorch eager on this checkpoint (needs torch).")
@click.option("--steps", type=click.IntRange(100), default=3000, show_default=True,
              help="Calls per latency figure.")
@click.option("--streams", default="1,16,64,256", show_default=True,
              help="Stream counts for the pool throughput.")
@click.option("--threads", type=click.IntRange(1), default=1, show_default=True)
@json_option
def command(model_path, checkpoint, steps, streams, threads, as_json):
    """Step latency, pool throughput and peak memory, each next to plain ONNX Runtime.

    Every figure is measured in this run on this file; alternatives are interleaved so that a
    noisy machine affects them alike. Latency is one step per call, state carried.

    \b
    Examples:
      edgernn bench model.onnx
      edgernn bench model.onnx --checkpoint model.pt --json
    """
    from edgernn.errors import ConfigError
    from edgernn.runtime import bench

    try:
        counts = [int(v) for v in streams.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--streams takes comma-separated counts, got {streams!r}") from None
    if not model_path.is_file():
        raise ConfigError(f"{model_path} does not exist")
    doc = {"model": str(model_path), "threads": threads}
    doc["latency"] = bench.step_latency(model_path, steps=steps, threads=threads)
    doc["pool_us_per_stream_step"] = bench.pool_throughput(model_path, counts,
                                                           steps=max(100, steps // 10),
                                                           threads=threads)
    doc["peak_rss_mb"] = {"stream": bench.peak_rss_mb(model_path, "stream"),
                          "plain": bench.peak_rss_mb(model_path, "plain")}
    doc["import_runtime_s"] = bench.import_seconds()
    if checkpoint:
        doc["torch_eager"] = bench.torch_step_latency(checkpoint, steps=max(200, steps // 3))
    if as_json:
        echo_json(doc)
        return
    lat = doc["latency"]
    rows = [[f"step latency {k}", v["p50_us"], v["p99_us"]] for k, v in lat.items()
            if isinstance(v, dict)]
    if doc.get("torch_eager"):
        rows.append(["step latency torch eager", doc["torch_eager"]["p50_us"],
                     doc["torch_eager"]["p99_us"]])
    click.echo(f"{model_path}: one step per call, {threads} thread(s); microseconds")
    click.echo(table(rows, ["figure", "p50 us", "p99 us"]))
    click.echo(f"stream overhead vs fastest plain call: "
               f"{lat['stream_overhead_vs_fastest_plain']:+.1%}\n")
    pool_rows = [[n, v["pool.step"], v["pool.step_many"], v["plain batched session.run"],
                  v["pool.step"] / lat["stream.step"]["p50_us"]]
                 for n, v in doc["pool_us_per_stream_step"].items()]
    click.echo(table(pool_rows, ["streams", "pool.step us/stream-step", "step_many",
                                 "plain batched", "x lone stream step"]))
    m = doc["peak_rss_mb"]
    click.echo(f"\npeak RSS streaming 500 steps: edgernn {m['stream']:.1f} MB, plain onnxruntime "
               f"{m['plain']:.1f} MB; import edgernn.runtime {doc['import_runtime_s']:.3f} s")
