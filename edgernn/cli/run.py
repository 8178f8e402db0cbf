"""edgernn run: stream frames through a model, one output line per step, as they come.

With ``--state-file`` the stream's state is durable: it is saved every ``--save-every`` steps
and every ``--save-seconds`` seconds, when SIGTERM, SIGINT or SIGHUP arrives, at the end, and
after the last good line when a bad one stops the run. A snapshot records how many frames it
has consumed, so ``--resume`` skips exactly those in SOURCE and the run continues as if it had
never stopped.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import sys
from pathlib import Path

import click
import numpy as np

from edgernn.cli.common import Finite, foreign_kwargs, foreign_options
from edgernn.cli.frames import FORMATS, FrameReader, guess_format
from edgernn.csvio import BOM
from edgernn.errors import DataError, EdgeRNNError
from edgernn.runtime.durable import EXIT_CODES, Signals, Stop
from edgernn.runtime.events import Events

_HELD = contextlib.ExitStack()     # the state file's lock: held until the process ends
atexit.register(_HELD.close)


@click.command("run")
@click.argument("model_path", metavar="MODEL.onnx", type=click.Path(path_type=Path))
@click.argument("source", default="-", required=False)
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              help="Input format [default: from the file suffix; csv, or text for a language "
                   "model, on stdin].")
@click.option("--state-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Resume from this snapshot if it exists; keep the state there (see "
                   "--save-every, --save-seconds).")
@click.option("--save-every", type=click.IntRange(0), default=100, show_default=True,
              help="With --state-file: save after this many steps (0: not by count).")
@click.option("--save-seconds", type=Finite(0), default=5.0, show_default=True,
              help="With --state-file: save at least this often while frames come (0: not by "
                   "time).")
@click.option("--resume", is_flag=True,
              help="With --state-file: skip the frames of SOURCE the saved state has already "
                   "consumed (rerun the same file after a stop).")
@click.option("--raw", is_flag=True, help="Frames are already normalised: skip preprocessing.")
@click.option("--profile", help="Device profile name or file.")
@click.option("--threads", type=click.IntRange(1), help="Intra-op threads.")
@click.option("--temperature", type=Finite(0), default=0.0, show_default=True,
              help="Language models: 0 picks the likeliest next character, >0 samples.")
@click.option("--top-k", type=click.IntRange(1), help="Language models: sample from the k best.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--beam", type=click.IntRange(1), default=1, show_default=True,
              help="Encoder-decoder models: hypotheses kept per step (1: greedy).")
@click.option("--max-len", type=click.IntRange(1),
              help="Encoder-decoder models: the longest output [default: the model's].")
@click.option("--every-hop", is_flag=True,
              help="Audio models: print each hop's output, not events with start and end "
                   "times.")
@click.option("--hops", type=click.IntRange(1, 1000),
              help="Audio models with a chunk graph: hops of samples a call [default: 3, 30 ms "
                   "at 10 ms a hop; a step graph takes 1]. More is cheaper per second of "
                   "audio, fewer answers sooner.")
@click.option("--json", "probabilities", is_flag=True,
              help="Text classifiers: every label's probability on each line.")
@foreign_options
def command(model_path, source, fmt, state_file, save_every, save_seconds, resume, raw, profile,
            threads, temperature, top_k, seed, beam, max_len, every_hop, hops, probabilities,
            state_pairs, constant_values, dim_sizes):
    """Stream frames from SOURCE (a file, or - for stdin) and print one JSON line per step.

    Each line has the step number and the output; classifiers add the label, forecasters the
    forecast in data units, language models the next character. Output is flushed per step.
    An encoder-decoder (seq2seq) model reads one input text a line and prints its output,
    with its length-normalised score (--beam for beam search); a text classifier reads one
    text a line and prints its label (--json: and every label's probability). A model that
    takes audio prints events as they end, {"event": "speech", "start": 0.03, "end": 2.01} in
    seconds (runtime/events.py has the rules; --every-hop: a line a hop instead); such a model
    exported as a chunk graph takes 30 ms a call (--hops).

    \b
    Examples:
      edgernn run model.onnx frames.csv
      tail -f sensor.csv | edgernn run forecast.onnx --state-file sensor.state
      edgernn run forecast.onnx day.csv --state-file s.state --resume   # after a stop
      printf 'the quiet ' | edgernn run charlm.onnx --temperature 0.8
      edgernn run vad.onnx audio.npy --constant sr=16000 --dim 'input[1]=576'
    """
    from edgernn.runtime import load
    from edgernn.runtime.durable import Durable, state_file_lock, step_record

    from edgernn.cli.checks import readable, writable

    if resume and not state_file:
        raise click.UsageError("--resume needs --state-file (the state to resume from)")
    readable(model_path, "model")
    readable(source if source != "-" else None, "SOURCE")
    writable(state_file, "--state-file", inputs={"the model": model_path,
                                                 "SOURCE": source if source != "-" else None})
    if state_file:
        _HELD.enter_context(state_file_lock(state_file, what=f"--state-file {state_file}",
                                            who="another edgernn run"))
    model = load(model_path, profile=profile, threads=threads,
                 **foreign_kwargs(state_pairs, constant_values, dim_sizes))
    if hasattr(model, "translate"):
        if state_file or resume or raw or fmt:
            raise click.UsageError("an encoder-decoder model reads one text a line: --state-file"
                                   ", --resume, --raw and --format do not apply")
        return _text_lines(model, source, lambda text: model.translate(
            text, beam=beam, max_len=max_len).to_dict())
    if model.contract.tokenizer is not None:
        if state_file or resume or raw or fmt:
            raise click.UsageError("a text classifier reads one text a line: --state-file, "
                                   "--resume, --raw and --format do not apply")

        def label(text):
            out = model.classify(text).to_dict()
            return out if probabilities else {"label": out["label"]}
        return _text_lines(model, source, label)
    if probabilities:
        raise click.UsageError("--json is for text classifiers")
    if beam != 1 or max_len:
        raise click.UsageError("--beam and --max-len are for encoder-decoder (seq2seq) models")
    stream = model.stream(normalize=not raw)
    if state_file and state_file.exists():
        stream.load(state_file)
    text_model = bool(model.vocabulary) and model.input_dtype == np.int64
    audio = model.contract.audio
    fmt = guess_format(source, fmt, text_model, audio is not None)
    names = model.contract.dataset.feature_names if model.contract.dataset else None
    reader = FrameReader(source, fmt, names, audio)
    if every_hop and audio is None:
        raise click.UsageError("--every-hop is for models that take audio")
    found = None if audio is None or every_hop else Events(audio["hop_ms"] / 1000,
                                                           first_step=stream.steps)
    per_call = _hops_per_call(model, hops)
    skip = stream.steps if resume else 0
    durable = Durable(stream, state_file, save_every, save_seconds)
    rng = np.random.default_rng(seed)
    consumed, last_good, waiting = 0, 0, []

    def run_waiting():
        """The frames read and not yet run: one call (a chunk of hops) or one step."""
        nonlocal last_good
        if not waiting:
            return
        line = waiting[-1][0]
        try:
            if per_call == 1:
                ys = [stream.step(waiting[0][1])]
            else:
                ys = stream.feed(np.stack([frame for _, frame in waiting]))
        except EdgeRNNError as exc:
            raise DataError(f"line {line} of {reader.where}: {exc}") from None
        finally:
            waiting.clear()
        last_good = line
        first = stream.steps - len(ys)
        for i, y in enumerate(ys, start=1):
            if found is None:
                click.echo(json.dumps(step_record(stream, y, rng=rng, temperature=temperature,
                                                  top_k=top_k, step=first + i)))
            else:
                _echo_events(found.push(stream.label(y)))
        sys.stdout.flush()
        durable.maybe()

    with Signals() as signals:
        try:
            frames = iter(reader)
            while True:
                signals.reading = True
                try:
                    line, frame = next(frames)
                except StopIteration:
                    break
                finally:
                    signals.reading = False
                consumed += 1
                if consumed <= skip:
                    continue
                if fmt == "text":
                    frame = stream.encode(frame)[0]
                waiting.append((line, frame))
                if len(waiting) == per_call:
                    run_waiting()
                signals.check()
            run_waiting()
        except Stop as stop:
            run_waiting()                   # the hops already read of an unfinished call
            durable.save()
            _echo_events(found.close() if found else [])
            click.echo(f"stopped by signal {signal.Signals(stop.signum).name} after step "
                       f"{stream.steps}" + (f"; state saved to {state_file}" if state_file
                                            else ""), err=True)
            sys.exit(EXIT_CODES[stop.signum])
        except DataError as exc:
            durable.save()
            where = (f"The state after the last good line ({last_good}, step {stream.steps}) "
                     f"is saved in {state_file}: fix the line and rerun with --resume" if
                     state_file else "Fix the line and run again")
            raise DataError(f"{exc}. {where}") from None
        except BrokenPipeError:
            durable.save()              # the reader went away (| head): stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
    if consumed == 0 or consumed <= skip:
        raise DataError(f"no frames in {reader.where}" + (
            f" beyond the {skip} already consumed by {state_file}" if skip else "")
            + "; nothing was streamed" + (" and the state file was left as it was"
                                          if state_file else ""))
    durable.save()
    _echo_events(found.close() if found else [])


def _hops_per_call(model, hops: int | None) -> int:
    """Frames a call: ``--hops`` for an audio model's chunk graph (default CALL_HOPS), else 1."""
    from edgernn.frontend import CALL_HOPS

    chunked = model.contract.audio is not None and model.graph == "chunk"
    if hops is None:
        return CALL_HOPS if chunked else 1
    if not chunked and hops != 1:
        raise click.UsageError(
            "--hops is for audio models with a chunk graph; this file takes one frame a call "
            "(export the checkpoint with --graph chunk to take several hops a call)")
    return hops


def _echo_events(events) -> None:
    for event in events:
        click.echo(json.dumps(event.to_dict()))
    sys.stdout.flush()


def _text_lines(model, source: str, answer) -> None:
    """One JSON line per input line: its number, the input, and what ``answer`` says of it
    (flushed per line)."""
    stream = sys.stdin if source == "-" else open(source, encoding="utf-8-sig")
    where = "stdin" if source == "-" else source
    count = 0
    try:
        for n, line in enumerate(stream, start=1):
            text = line.rstrip("\r\n").removeprefix(BOM) if n == 1 else line.rstrip("\r\n")
            if not text.strip():
                continue
            try:
                out = answer(text)
            except EdgeRNNError as exc:
                raise DataError(f"line {n} of {where}: {exc}") from None
            click.echo(json.dumps({"line": n, "input": text, **out}, ensure_ascii=False))
            sys.stdout.flush()
            count += 1
    except UnicodeDecodeError as exc:
        raise DataError(f"{where} is not UTF-8 text ({exc.reason}); save it as UTF-8") from None
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    finally:
        if stream is not sys.stdin:
            stream.close()
    if count == 0:
        raise DataError(f"no input lines in {where}; nothing was read")
