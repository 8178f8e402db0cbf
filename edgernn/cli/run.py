"""edgernn run: stream frames through a model, one output line per step, as they come."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np

from edgernn.errors import DataError


def _frames(source, fmt: str):
    """Yield frames one at a time from a file or stdin."""
    if fmt == "npy":
        try:
            array = np.load(source, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read {source} as .npy: {exc}") from None
        yield from array
        return
    stream = sys.stdin if source == "-" else open(source, encoding="utf-8")
    try:
        if fmt == "text":
            while True:
                ch = stream.read(1)
                if not ch:
                    return
                yield ch
        for n, line in enumerate(stream, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                if fmt == "jsonl":
                    yield np.asarray(json.loads(line))
                else:
                    yield np.asarray([float(v) for v in line.split(",")])
            except (ValueError, json.JSONDecodeError):
                raise DataError(f"line {n} ({line[:50]!r}) is not a {fmt} frame; "
                                f"{'comma-separated numbers' if fmt == 'csv' else 'a JSON array'}"
                                f" expected") from None
    finally:
        if stream is not sys.stdin:
            stream.close()


def _format(source: str, explicit: str | None, text_model: bool) -> str:
    if explicit:
        return explicit
    if source != "-":
        suffix = Path(source).suffix.lower()
        return {".npy": "npy", ".jsonl": "jsonl", ".json": "jsonl", ".txt": "text"}.get(
            suffix, "text" if text_model else "csv")
    return "text" if text_model else "csv"


@click.command("run")
@click.argument("model_path", metavar="MODEL.onnx", type=click.Path(path_type=Path))
@click.argument("source", default="-", required=False)
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "npy", "text"]),
              help="Input format [default: from the file suffix; csv, or text for a language "
                   "model, on stdin].")
@click.option("--state-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Resume from this snapshot if it exists; save the state there at the end.")
@click.option("--raw", is_flag=True, help="Frames are already normalised: skip preprocessing.")
@click.option("--profile", help="Device profile name or file.")
@click.option("--threads", type=click.IntRange(1), help="Intra-op threads.")
@click.option("--temperature", type=click.FloatRange(0), default=0.0, show_default=True,
              help="Language models: 0 picks the likeliest next character, >0 samples.")
@click.option("--top-k", type=click.IntRange(1), help="Language models: sample from the k best.")
@click.option("--seed", type=int, default=0, show_default=True)
def command(model_path, source, fmt, state_file, raw, profile, threads, temperature, top_k,
            seed):
    """Stream frames from SOURCE (a file, or - for stdin) and print one JSON line per step.

    Each line has the step number and the output; classifiers add the label, forecasters the
    forecast in data units, language models the next character. Output is flushed per step.

    \b
    Examples:
      edgernn run model.onnx frames.csv
      tail -f sensor.csv | edgernn run forecast.onnx --state-file sensor.state
      printf 'the quiet ' | edgernn run charlm.onnx --temperature 0.8
    """
    from edgernn.runtime import load

    model = load(model_path, profile=profile, threads=threads)
    stream = model.stream(normalize=not raw)
    if state_file and state_file.exists():
        stream.load(state_file)
    text_model = bool(model.vocabulary) and model.input_dtype == np.int64
    fmt = _format(source, fmt, text_model)
    rng = np.random.default_rng(seed)
    head = model.contract.head
    try:
        for frame in _frames(source, fmt):
            if fmt == "text":
                frame = stream.encode(frame)[0]
            y = stream.step(frame)
            record = {"step": stream.steps, "y": np.round(y.astype(float), 6).tolist()}
            if head in ("classify_last", "classify_step") or model.labels:
                record["label"] = stream.label(y)
            elif head == "regress":
                record["forecast"] = np.round(stream.denormalize(y).astype(float), 6).tolist()
            elif text_model:
                record["next"] = stream.sample(y, temperature=temperature, top_k=top_k, rng=rng)
                del record["y"]
            click.echo(json.dumps(record))
            sys.stdout.flush()
    finally:
        if state_file:
            stream.save(state_file)
