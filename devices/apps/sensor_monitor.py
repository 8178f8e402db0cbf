"""Sensor monitor: forecast each next reading, alert when a reading is far from its forecast.

    python -m edgernn.devices.apps.sensor_monitor forecast.onnx [FILE|-] [--state monitor.state]

Reads one CSV row of channel values per line from FILE or stdin, as it arrives. After a warm-up
it prints an alert (one JSON line, flushed) whenever a channel's reading differs from the
model's forecast by more than --k times that channel's running mean absolute error. With
--state it resumes across restarts: the stream's snapshot and the detector's statistics are
saved together, in one atomic write, on exit and loaded on start (a crash can never pair one
run's stream with another run's statistics).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path

import numpy as np

from edgernn.csvio import numbers
from edgernn.files import atomic_write_bytes
from edgernn.runtime import load


class Detector:
    def __init__(self, channels: int, k: float, warmup: int):
        self.k, self.warmup = k, warmup
        self.mae = np.zeros(channels)
        self.seen = 0
        self.forecast: np.ndarray | None = None

    def check(self, reading: np.ndarray) -> list[int]:
        """Channels whose reading is anomalous given the last forecast; updates statistics."""
        if self.forecast is None:
            return []
        err = np.abs(reading - self.forecast)
        alarm = [] if self.seen < self.warmup else [int(c) for c in np.flatnonzero(
            err > self.k * np.maximum(self.mae, 1e-6))]
        normal = np.ones_like(err, bool)
        normal[alarm] = False
        rate = 1.0 / min(self.seen + 1, 200)
        self.mae[normal] += rate * (err[normal] - self.mae[normal])
        self.seen += 1
        return alarm

    def to_json(self) -> dict:
        return {"mae": self.mae.tolist(), "seen": self.seen,
                "forecast": None if self.forecast is None else self.forecast.tolist()}

    def restore(self, d: dict) -> None:
        self.mae, self.seen = np.asarray(d["mae"]), int(d["seen"])
        self.forecast = None if d["forecast"] is None else np.asarray(d["forecast"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("source", nargs="?", default="-")
    ap.add_argument("--state", type=Path, help="resume from / save to this file")
    ap.add_argument("--k", type=float, default=6.0, help="alert threshold, x running MAE")
    ap.add_argument("--warmup", type=int, default=50, help="steps before alerts start")
    args = ap.parse_args(argv)

    model = load(args.model, threads=1)
    stream = model.stream()
    detector = Detector(stream.frame_shape[0], args.k, args.warmup)
    if args.state and args.state.exists():
        try:
            saved = json.loads(args.state.read_bytes())
            stream.restore(base64.b64decode(saved["stream"]))
            detector.restore(saved["detector"])
        except (ValueError, KeyError, TypeError) as exc:
            sys.exit(f"error: {args.state} is not this monitor's saved state ({exc}); remove it "
                     f"to start afresh")
    source = sys.stdin if args.source == "-" else open(args.source, encoding="utf-8-sig")
    try:
        for line in source:
            try:
                reading = numbers(line).astype(np.float32)
            except ValueError:
                continue                                    # blank lines and headers
            for channel in detector.check(reading):
                print(json.dumps({"step": stream.steps + 1, "alert": "anomaly",
                                  "channel": channel, "reading": float(reading[channel]),
                                  "forecast": round(float(detector.forecast[channel]), 4)}),
                      flush=True)
            detector.forecast = stream.denormalize(stream.step(reading))
    finally:
        if source is not sys.stdin:
            source.close()
        if args.state:
            both = {"stream": base64.b64encode(stream.snapshot()).decode(),
                    "detector": detector.to_json()}
            atomic_write_bytes(args.state, json.dumps(both).encode())
    print(json.dumps({"steps": stream.steps, "mae": np.round(detector.mae, 4).tolist()}),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
