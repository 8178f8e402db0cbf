"""edgernn triton, edgernn serve"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import click

from edgernn.cli.common import Finite, echo_json, foreign_kwargs, foreign_options, json_option


def repo_options(f):
    for option in reversed([
        click.option("--name", default="edgernn", show_default=True, help="Model name."),
        click.option("--backend", type=click.Choice(["python", "onnxruntime"]),
                     default="python", show_default=True,
                     help="python: edgernn.runtime inside Triton's Python backend (keeps each "
                          "sequence's state itself); onnxruntime: Triton's ONNX Runtime "
                          "backend with implicit state (a production Triton container)."),
        click.option("--max-batch", "max_batch", type=click.IntRange(1), default=64,
                     show_default=True, help="Sequences stepped in one call."),
        click.option("--strategy", type=click.Choice(["oldest", "direct"]), default="oldest",
                     show_default=True, help="The sequence batcher's strategy."),
        click.option("--idle", type=Finite(0, min_open=True), default=60.0,
                     show_default=True, help="Seconds a sequence may stay idle before it is "
                                             "released."),
        click.option("--instances", type=click.IntRange(1), default=1, show_default=True,
                     help="Model instances (each keeps the state of its own sequences)."),
        click.option("--kind", type=click.Choice(["cpu", "gpu"]), default="cpu",
                     show_default=True, help="Where instances run."),
    ]):
        f = option(f)
    return f


def _options(name, backend, max_batch, strategy, idle, instances, kind):
    from edgernn.serving import Options

    return Options(name=name, backend=backend, max_batch_size=max_batch, strategy=strategy,
                   idle_seconds=idle, instances=instances, kind=kind)


@click.command("triton")
@click.argument("model_path", metavar="MODEL.onnx", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="The model repository folder to write into.")
@click.option("--force", is_flag=True,
              help="Replace the model's folder (REPOSITORY/NAME) whole when it already holds "
                   "files; other models in the repository are left alone.")
@repo_options
@foreign_options
@json_option
def triton_command(model_path, output, force, name, backend, max_batch, strategy, idle, instances,
                   kind, state_pairs, constant_values, dim_sizes, as_json):
    """Write a Triton Inference Server model repository for a step graph.

    \b
    Examples:
      edgernn triton model.onnx -o repo                       # Python backend
      edgernn triton model.onnx -o repo --backend onnxruntime --kind gpu --instances 2
    """
    from edgernn.cli.checks import folder_writable, not_inside, readable
    from edgernn.serving import write_repository

    readable(model_path, "model")
    folder_writable(output, "--output")
    options = _options(name, backend, max_batch, strategy, idle, instances, kind)
    not_inside(output / name, {"the model": model_path})
    folder = write_repository(model_path, output, options, force=force,
                              load_kwargs=_kwargs(state_pairs, constant_values, dim_sizes))
    doc = {"repository": str(output), "model": name, "backend": backend,
           "files": sorted(str(p.relative_to(output)) for p in folder.rglob("*") if p.is_file())}
    if as_json:
        echo_json(doc)
        return
    click.echo(f"wrote {folder} ({backend} backend)")
    for f in doc["files"]:
        click.echo(f"  {f}")


def _kwargs(state_pairs, constant_values, dim_sizes) -> dict | None:
    kw = {k: v for k, v in foreign_kwargs(state_pairs, constant_values, dim_sizes).items() if v}
    return kw or None


@click.command("serve")
@click.argument("target", metavar="MODEL.onnx|REPOSITORY", type=click.Path(path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 for every interface).")
@click.option("--grpc-port", type=click.IntRange(1, 65535), help="[default: a free port]")
@click.option("--http-port", type=click.IntRange(1, 65535), help="[default: a free port]")
@click.option("--metrics-port", type=click.IntRange(1, 65535), help="[default: a free port]")
@repo_options
@foreign_options
def serve_command(target, host, grpc_port, http_port, metrics_port, name, backend, max_batch,
                  strategy, idle, instances, kind, state_pairs, constant_values, dim_sizes):
    """Serve a model on a real tritonserver until Ctrl-C or SIGTERM.

    Given an ONNX file, it writes a repository (Python backend) in a temporary folder first.
    The server's log goes to stderr; the endpoints are printed when the model is ready.

    \b
    Examples:
      edgernn serve model.onnx
      edgernn serve repo --grpc-port 8001 --http-port 8000
    """
    from edgernn.cli.checks import readable
    from edgernn.files import scratch_folder
    from edgernn.serving import Server, find_server, write_repository

    readable(target if target.suffix == ".onnx" else None, "model")
    if not target.exists():
        raise click.ClickException(f"{target} does not exist; pass an ONNX file or a "
                                   f"repository folder")
    find_server()                                   # a missing binary is one message, now
    scratch = None
    if target.is_dir():
        repository = target
    else:
        scratch = scratch_folder("repo")
        repository = Path(scratch.name)
        write_repository(target, repository,
                         _options(name, backend, max_batch, strategy, idle, instances, kind),
                         load_kwargs=_kwargs(state_pairs, constant_values, dim_sizes))
    server = Server(repository, host=host, grpc_port=grpc_port or 0,
                    http_port=http_port or 0, metrics_port=metrics_port or 0)
    stop = {"signal": None}

    def handle(signum, frame):
        stop["signal"] = signum

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, handle)
    try:
        server.start()
        click.echo(f"serving {repository}\n  grpc    {server.grpc_url}\n  http    "
                   f"{server.http_url}\n  metrics {host}:{server.metrics_port}")
        sys.stdout.flush()
        while stop["signal"] is None and server.process.poll() is None:
            time.sleep(0.2)
    finally:
        server.stop()
        if scratch is not None:
            scratch.cleanup()
    if stop["signal"] is None:
        raise click.ClickException(f"tritonserver stopped by itself (exit code "
                                   f"{server.process.returncode}); its log above says why")
    click.echo("stopped", err=True)
