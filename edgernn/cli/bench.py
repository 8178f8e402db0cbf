"""edgernn bench"""

from __future__ import annotations

from pathlib import Path

import click

from edgernn.cli.common import echo_json, foreign_kwargs, foreign_options, json_option, table
from edgernn.errors import EdgeRNNError
from edgernn.progress import log


def _frame(model, data_path):
    """A real frame from the model's own data, normalised as the graph takes it (None: the
    model names no task and no --data was given, so frames are random)."""
    from edgernn.tasks.base import apply_normalization
    from edgernn.tasks.resolve import data_for_contract

    data = data_for_contract(model.contract, data_path, stage="bench", model=str(model.source))
    if data is None:
        return None, "random frames"
    split, ref = data.part("test")
    x = apply_normalization(split.x[:1, :1], model.contract.preprocessing)
    return x.reshape(x.shape[2:] if x.ndim > 2 else ()), ref.describe()


def _part(doc: dict, key: str, fn):
    """One figure of the report; a part that cannot be measured says why instead."""
    try:
        doc[key] = fn()
    except EdgeRNNError as exc:
        doc.setdefault("skipped", {})[key] = str(exc)


@click.command("bench")
@click.argument("model_path", metavar="MODEL.onnx", type=click.Path(path_type=Path))
@click.option("--checkpoint", type=click.Path(path_type=Path),
              help="Also time PyTorch eager on this checkpoint (needs torch).")
@click.option("--data", type=click.Path(path_type=Path),
              help="Frames from this data [default: the data the model was trained on; random "
                   "frames for a model that names no task].")
@click.option("--steps", type=click.IntRange(100), default=3000, show_default=True,
              help="Calls per latency figure.")
@click.option("--streams", default="1,16,64,256", show_default=True,
              help="Stream counts for the pool throughput.")
@click.option("--threads", type=click.IntRange(1), default=1, show_default=True)
@foreign_options
@json_option
def command(model_path, checkpoint, data, steps, streams, threads, state_pairs, constant_values,
            dim_sizes, as_json):
    """Step latency, pool throughput and peak memory, each next to plain ONNX Runtime.

    Every figure is measured in this run on this file; alternatives are interleaved so that a
    noisy machine affects them alike. Latency is one step per call, state carried. A part that
    cannot be measured (a model that cannot be pooled) is reported with the reason.

    \b
    Examples:
      edgernn bench model.onnx
      edgernn bench model.onnx --checkpoint model.pt --json
      edgernn bench vad.onnx --constant sr=16000 --dim 'input[1]=576'
    """
    from edgernn.cli.checks import readable
    from edgernn.errors import ConfigError
    from edgernn.runtime import bench, load

    for path, what in ((model_path, "model"), (checkpoint, "--checkpoint"), (data, "--data")):
        readable(path, what)
    try:
        counts = [int(v) for v in streams.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--streams takes comma-separated counts, got {streams!r}") from None
    if not counts or min(counts) < 1:
        raise ConfigError(f"--streams takes counts of at least 1, got {streams!r}")
    kwargs = foreign_kwargs(state_pairs, constant_values, dim_sizes)
    model = load(model_path, threads=threads, **kwargs)
    model.stream(normalize=False)                 # a model that cannot stream stops here
    frame, frames_from = _frame(model, data)
    doc = {"model": str(model_path), "threads": threads, "frames": frames_from}
    log(f"bench {model_path}: step latency ({steps} calls per path)")
    doc["latency"] = bench.step_latency(model_path, steps=steps, threads=threads, frame=frame,
                                        **kwargs)
    log(f"pool throughput at {', '.join(map(str, counts))} streams")
    _part(doc, "pool_us_per_stream_step", lambda: bench.pool_throughput(
        model_path, counts, steps=max(100, steps // 10), threads=threads, frame=frame, **kwargs))
    log("peak memory and import time (fresh processes)")
    doc["peak_rss_mb"] = {"stream": bench.peak_rss_mb(model_path, "stream", **kwargs),
                          "plain": bench.peak_rss_mb(model_path, "plain", **kwargs)}
    doc["import_runtime_s"] = bench.import_seconds()
    if checkpoint:
        log("PyTorch eager")
        doc["torch_eager"] = bench.torch_step_latency(checkpoint, steps=max(200, steps // 3))
    if as_json:
        echo_json(doc)
        return
    _print(doc, model_path, threads)


def _print(doc, model_path, threads) -> None:
    lat = doc["latency"]
    rows = [[f"step latency {k}", v["p50_us"], v["p99_us"]] for k, v in lat.items()
            if isinstance(v, dict)]
    if doc.get("torch_eager"):
        rows.append(["step latency torch eager", doc["torch_eager"]["p50_us"],
                     doc["torch_eager"]["p99_us"]])
    click.echo(f"{model_path}: one step per call, {threads} thread(s), {doc['frames']}; "
               f"microseconds")
    click.echo(table(rows, ["figure", "p50 us", "p99 us"]))
    click.echo(f"stream overhead vs fastest plain call: "
               f"{lat['stream_overhead_vs_fastest_plain']:+.1%}\n")
    if "pool_us_per_stream_step" in doc:
        pool_rows = [[n, v["pool.step"], v["pool.step_many"], v["plain batched session.run"],
                      v["pool.step"] / lat["stream.step"]["p50_us"]]
                     for n, v in doc["pool_us_per_stream_step"].items()]
        click.echo(table(pool_rows, ["streams", "pool.step us/stream-step", "step_many",
                                     "plain batched", "x lone stream step"]))
    for part, why in doc.get("skipped", {}).items():
        click.echo(f"skipped {part}: {why}")
    m = doc["peak_rss_mb"]
    click.echo(f"\npeak RSS streaming 500 steps: edgernn {m['stream']:.1f} MB, plain onnxruntime "
               f"{m['plain']:.1f} MB; import edgernn.runtime {doc['import_runtime_s']:.3f} s")
