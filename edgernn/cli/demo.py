"""edgernn demo: the whole pipeline on a built-in task."""

from __future__ import annotations

from pathlib import Path

import click

from edgernn.cli.common import echo_json, json_option
from edgernn.cli.train import print_summary, run_training, train_options
from edgernn.progress import log


@click.command("demo")
@train_options
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("runs/demo"), show_default=True,
              help="Folder for the checkpoint and artifacts.")
@json_option
def command(out, as_json, **options):
    """Train the default model of a built-in task and report what it reached.

    \b
    Examples:
      edgernn demo                      # keyword spotting, LSTM 40->128x2->10
      edgernn demo --task charlm --out runs/charlm
    """
    from edgernn.checkpoint import save_checkpoint

    out.mkdir(parents=True, exist_ok=True)
    log(f"[1/1] train '{options['task_name']}'")
    result = run_training(**options)
    ckpt_path = save_checkpoint(out / "model.pt", result.checkpoint())
    if as_json:
        echo_json({"train": result.summary(), "checkpoint": str(ckpt_path)})
        return
    print_summary(result)
    click.echo(f"checkpoint: {ckpt_path}")
