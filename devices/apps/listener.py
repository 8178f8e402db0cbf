"""Listener: a model that hears (voice activity, keywords) on a microphone or a WAV file,
printing each event as it ends.

    arecord -f S16_LE -r 16000 -c 1 -t raw | python -m edgernn.devices.apps.listener vad.onnx -
    python -m edgernn.devices.apps.listener vad.onnx meeting.wav --state meeting.state

Reads raw 16-bit little-endian mono samples at the model's rate from stdin, or a WAV file (any
rate; resampled). A chunk graph (voice activity's default) takes CALL_HOPS hops a call, a step
graph one. Each event is one JSON line, flushed: ``{"event": "speech", "start": 0.03, "end":
2.01}``, seconds from the stream's first sample (runtime/events.py's rules).

With ``--state`` the stream is durable: its state is saved every 5 seconds, when the input
ends, and on SIGTERM, SIGINT or SIGHUP (after the call in progress), atomically and by one
writer at a time; the next start resumes from it, its times counting on. An event open at a
stop is reported in two parts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

import numpy as np

from edgernn.errors import EdgeRNNError
from edgernn.frontend import CALL_HOPS, Fbank
from edgernn.runtime import load
from edgernn.runtime.durable import Durable, Signals, Stop, state_file_lock
from edgernn.runtime.events import Events


def calls(source: str, rate: int, size: int):
    """``size`` samples at a time (the last call shorter, zero-padded to whole hops by the
    caller): a WAV file read whole, or raw samples from stdin as they come."""
    if source != "-":
        from edgernn.wav import read

        samples = read(source, rate=rate)[0]
        for start in range(0, len(samples), size):
            yield samples[start:start + size]
        return
    while True:
        data = sys.stdin.buffer.read(2 * size)
        if len(data) < 2:
            return
        yield np.frombuffer(data[:len(data) // 2 * 2], "<i2").astype(np.float32) / 32768


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("source", nargs="?", default="-", help="a WAV file, or - for raw samples")
    ap.add_argument("--state", type=Path, help="resume from / save to this file")
    args = ap.parse_args(argv)
    inputs = [Path(args.model)] + ([Path(args.source)] if args.source != "-" else [])
    if args.state and any(args.state.resolve() == p.resolve() for p in inputs):
        sys.exit(f"error: --state {args.state} is one of the inputs; saving the stream there "
                 f"would overwrite it. Give the state a file of its own")
    try:
        model = load(args.model, threads=1)
        audio = model.contract.audio
        if audio is None:
            sys.exit(f"error: {args.model} takes frames of features, not audio; the listener "
                     f"needs a model exported with the audio front end")
        hop = Fbank.from_dict(audio).hop
        hops = CALL_HOPS if model.graph == "chunk" else 1
        with state_file_lock(args.state) if args.state else contextlib.nullcontext():
            stream = model.stream()
            if args.state and args.state.exists():
                stream.load(args.state)
            saver = Durable(stream, args.state, every=0, seconds=5.0)
            found = Events(audio["hop_ms"] / 1000, first_step=stream.steps)
            source = calls(args.source, audio["sample_rate"], hops * hop)
            with Signals() as signals:
                try:
                    while True:
                        signals.reading = True        # blocked on stdin: a signal stops now
                        samples = next(source, None)
                        signals.reading = False
                        if samples is None:
                            break
                        pad = -len(samples) % hop
                        x = np.concatenate([samples, np.zeros(pad, np.float32)])
                        x = x.reshape(-1, hop)
                        ys = stream.feed(x) if hops > 1 else [stream.step(x[0])]
                        for y in ys:
                            _print(found.push(stream.label(y)))
                        saver.maybe()
                        signals.check()               # a signal during the call: now
                except Stop:
                    pass
            saver.save()
            _print(found.close())
    except EdgeRNNError as exc:
        sys.exit(f"error: {exc}")
    print(json.dumps({"hops": stream.steps, "seconds": round(stream.steps * hop / audio[
        "sample_rate"], 3)}), file=sys.stderr)
    return 0


def _print(events) -> None:
    for e in events:
        print(json.dumps(e.to_dict()), flush=True)


if __name__ == "__main__":
    sys.exit(main())
