"""Many sensors, one model: a server-style loop that steps every sensor through one pool.

    python -m edgernn.devices.apps.multi_sensor forecast.onnx < readings.csv

Input lines are ``sensor_id,v1,v2,...`` (any interleaving) or ``sensor_id,close``. Readings are
collected into ticks (a tick ends when a sensor reports twice, or on a blank line) and each
tick is one batched ``pool.step``: sensors join on their first reading and leave on close.
One JSON line per sensor per tick with its forecast for the next reading.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from edgernn.csvio import fields
from edgernn.runtime import load


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    args = ap.parse_args(argv)

    model = load(args.model, threads=1)
    pool = model.pool()
    helper = model.stream()          # for denormalising outputs: the contract's postprocessing
    ids: dict[str, int] = {}
    pending: dict[str, np.ndarray] = {}
    ticks = 0

    def flush():
        nonlocal ticks
        if not pending:
            return
        out = pool.step({ids[s]: frame for s, frame in pending.items()})
        ticks += 1
        for sensor in pending:
            forecast = helper.denormalize(out[ids[sensor]])
            print(json.dumps({"tick": ticks, "sensor": sensor,
                              "forecast": np.round(forecast.astype(float), 4).tolist()}),
                  flush=True)
        pending.clear()

    for line in sys.stdin:
        line = line.strip().lstrip("\ufeff")
        if not line:
            flush()
            continue
        sensor, *values = fields(line)
        if values == ["close"]:
            flush()
            if sensor in ids:
                pool.close(ids.pop(sensor))
            continue
        if sensor in pending:
            flush()
        if sensor not in ids:
            ids[sensor] = pool.open()
        pending[sensor] = np.array([float(v) for v in values], np.float32)
    flush()
    print(json.dumps({"ticks": ticks, "open_sensors": len(pool)}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
