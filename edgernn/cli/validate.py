"""edgernn validate"""

from __future__ import annotations

from pathlib import Path

import click

from edgernn.cli.common import Finite, echo_json, json_option, table
from edgernn.errors import ParityError

HEADER = ["artifact", "check", "tensor", "max abs", "max rel", "tolerance", ""]


def print_report(report) -> None:
    click.echo(f"parity against PyTorch ({report.reference})"
               + (f"; task data: {report.data.describe()}" if report.data else ""))
    click.echo(table(report.rows(), HEADER))


def raise_if_failed(report) -> None:
    if report.passed:
        return
    failed = [f"{Path(a.path).name}: " + ", ".join(
        [f"{c.name}/{e.describe()}" for c in a.checks for e in c.errors if not e.passed]
        + (["drift"] if a.drift and not a.drift.passed else [])
        + (["task metric"] if not a.metric_ok else []))
        for a in report.artifacts if not a.passed]
    raise ParityError("parity exceeds tolerance in " + "; ".join(failed) +
                      ". Check that the checkpoint is the one the file was exported from; "
                      "re-export (try --ops or --exporter); or loosen --atol/--rtol if the "
                      "difference is expected (e.g. quantized files)", report)


@click.command("validate")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.argument("artifacts", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--atol", type=Finite(0), default=1e-4, show_default=True,
              help="Max abs error per output and state (random, split and task inputs).")
@click.option("--rtol", type=Finite(0), default=1e-5, show_default=True,
              help="Plus this share of each value's magnitude: an element passes when |onnx "
                   "- torch| <= atol + rtol x |torch| (float32 keeps ~7 digits, so outputs "
                   "in large units differ by more than atol from rounding alone).")
@click.option("--drift-tol", type=Finite(0), default=1e-3, show_default=True,
              help="Max per-step output error over the long horizon (+ rtol x |value|).")
@click.option("--horizon", type=click.IntRange(0), default=10_000, show_default=True,
              help="Steps of a realistic stream for the drift curve (0 to skip).")
@click.option("--batch", type=click.IntRange(1), default=4, show_default=True)
@click.option("--steps", type=click.IntRange(1), default=50, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--data", type=click.Path(path_type=Path),
              help="The data to check on (the format 'edgernn train --data' takes) [default: "
                   "the data the checkpoint was trained on].")
@click.option("--max-drop", type=Finite(0),
              help="How much worse the artifact's task metric may be, beyond two standard "
                   "errors of the test set: accuracy points (0.01), a share of the MAE (0.05), "
                   "bits per character [default: the task's: 0.01, 0.05, 0.05].")
@click.option("--no-metric", is_flag=True, help="Do not require the task metric to match.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a PNG of the drift curves.")
@click.option("--record", is_flag=True,
              help="Write the measured parity into each passing artifact's contract.")
@json_option
def command(checkpoint, artifacts, atol, rtol, drift_tol, horizon, batch, steps, seed, data,
            max_drop, no_metric, plot, record, as_json):
    """Compare ONNX artifacts with the PyTorch checkpoint they came from.

    Every output and state on random and task inputs, streamed step by step and in random
    chunk splits, drift over a long horizon, ONNX's reference evaluator as a third opinion, and
    the task metric. Exits 1 when a tolerance is exceeded.

    \b
    Examples:
      edgernn validate model.pt model.onnx
      edgernn validate model.pt step.onnx chunk.onnx --json --plot drift.png --record
    """
    from edgernn.cli.checks import readable, writable

    readable(checkpoint, "checkpoint")
    readable(data, "--data", folder=True)
    for artifact in artifacts:
        readable(artifact, "artifact")
        if record:
            writable(artifact, "--record: artifact")
    writable(plot, "--plot", inputs={"the checkpoint": checkpoint, "the data": data,
                                     **{f"the artifact {a}": a for a in artifacts}})

    from edgernn.exporters import Tolerances, validate
    from edgernn.exporters.checks.validate import plot as plot_drift
    from edgernn.exporters.checks.validate import record as record_parity

    tolerances = Tolerances(atol=atol, drift=drift_tol, evaluator=atol, rtol=rtol,
                            check_metric=not no_metric, max_drop=max_drop)
    report = validate(checkpoint, list(artifacts), tolerances=tolerances, batch=batch,
                      steps=steps, horizon=horizon, seed=seed, data=data)
    if plot:
        plot_drift(report, plot)
    if as_json:
        echo_json(report.to_dict())
    else:
        print_report(report)
        if plot:
            click.echo(f"drift plot: {plot}")
    if record:
        record_parity(report)
    raise_if_failed(report)
