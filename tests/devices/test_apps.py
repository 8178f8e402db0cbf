"""The device apps, end to end, on models the tests make."""

import json
import subprocess
import sys

import numpy as np
import pytest
from tests.tolerances import PRINTED_FORECAST

torch = pytest.importorskip("torch")


def app(name, *args, input=None):
    return subprocess.run([sys.executable, "-m", f"edgernn.devices.apps.{name}", *map(str, args)],
                          capture_output=True, text=True, input=input, timeout=120)


@pytest.fixture(scope="module")
def forecaster(forecast_checkpoint, tmp_path_factory):
    from edgernn.exporters import export

    return export(forecast_checkpoint, tmp_path_factory.mktemp("fc") / "f.onnx").path


@pytest.fixture(scope="module")
def charlm(tmp_path_factory):
    from edgernn.checkpoint import save_checkpoint
    from edgernn.exporters import export
    from edgernn.tasks import get_task
    from edgernn.training import fit

    task = get_task("charlm")
    r = fit(task, task.generate(size=0.1), task.model.replace(hidden_size=48),
            task.training.replace(epochs=4), verbose=False)
    d = tmp_path_factory.mktemp("lm")
    return export(save_checkpoint(d / "lm.pt", r.checkpoint()), d / "lm.onnx").path


def sensor_rows(n, spike_at=None, seed=3):
    from edgernn.tasks import get_task

    s = get_task("forecast").stream(n, seed=seed)
    if spike_at is not None:
        s[spike_at, 1] += 10.0
    return ["a,b,c"] + [",".join(f"{v:.5f}" for v in row) for row in s]


def test_sensor_monitor_alerts_and_resumes(forecaster, tmp_path):
    rows = sensor_rows(300, spike_at=250)
    state = tmp_path / "m.state"
    first = app("sensor_monitor", forecaster, "--state", state, input="\n".join(rows[:151]))
    assert first.returncode == 0, first.stderr
    assert state.exists() and json.loads(first.stderr)["steps"] == 150
    # one file holds the stream and the detector: one atomic write, nothing to pair up
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.state"]
    assert set(json.loads(state.read_bytes())) == {"stream", "detector"}
    second = app("sensor_monitor", forecaster, "--state", state, input="\n".join(rows[151:]))
    alerts = [json.loads(v) for v in second.stdout.splitlines()]
    assert json.loads(second.stderr)["steps"] == 300
    assert alerts and alerts[0]["step"] == 251 and alerts[0]["channel"] == 1
    # resuming gives the same alerts as one uninterrupted run
    whole = app("sensor_monitor", forecaster, input="\n".join(rows))
    assert [json.loads(v) for v in whole.stdout.splitlines()] == alerts


def test_autocomplete_suggests_without_disturbing_the_stream(charlm):
    out = app("autocomplete", charlm, input="alert: pump battery at 4\nthe quiet \n")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(v) for v in out.stdout.splitlines()]
    assert [r["typed"] for r in rows] == ["alert: pump battery at 4", "the quiet "]
    assert all(isinstance(r["suggestion"], str) for r in rows)
    assert any(r["suggestion"] for r in rows)


def test_multi_sensor_pool_equals_single_streams(forecaster):
    from edgernn.runtime import load

    rows = [np.array([float(v) for v in r.split(",")]) for r in sensor_rows(12)[1:]]
    lines = []
    for t in range(4):
        for k in range(3):
            lines.append(f"s{k}," + ",".join(map(str, rows[t + 4 * k])))
    lines += ["s1,close", "s0," + ",".join(map(str, rows[4]))]
    out = app("multi_sensor", forecaster, input="\n".join(lines) + "\n")
    assert out.returncode == 0, out.stderr
    got = [json.loads(v) for v in out.stdout.splitlines()]
    assert json.loads(out.stderr) == {"ticks": 5, "open_sensors": 2}
    stream = load(forecaster).stream()
    expect = [stream.denormalize(stream.step(rows[t].astype(np.float32))) for t in range(5)]
    s0 = [g["forecast"] for g in got if g["sensor"] == "s0"]
    np.testing.assert_allclose(s0, expect, atol=PRINTED_FORECAST)


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    from tests import audiodata

    return audiodata.loudness_detector(tmp_path_factory.mktemp("loud"), seconds=12)


def test_listener_prints_events_of_a_wav_and_resumes_raw_samples_from_its_state(detector,
                                                                                tmp_path):
    from edgernn.runtime import load
    from edgernn.runtime.events import Events
    from tests import audiodata

    samples = audiodata.recording()                        # 12 s: 1200 hops of 10 ms
    model = load(detector)
    labels = [model.labels[i] for i in model.stream().feed(samples.reshape(-1, 160)).argmax(-1)]

    def found(part, first=0):
        e = Events(0.01, first_step=first)
        return [x.to_dict() for label in part for x in e.push(label)] + [
            x.to_dict() for x in e.close()]

    wav = app("listener", detector, audiodata.SPEECH)
    assert wav.returncode == 0, wav.stderr
    assert [json.loads(line) for line in wav.stdout.splitlines()] == found(labels)
    assert len(found(labels)) >= 3
    # raw 16-bit samples on stdin (arecord's), stopped after 5 s and resumed from --state: the
    # same events, with the one open at 5 s reported in two parts
    pcm, cut, state = audiodata.pcm16(samples), 500 * 160 * 2, tmp_path / "mic.state"
    runs = [subprocess.run([sys.executable, "-m", "edgernn.devices.apps.listener", str(detector),
                            "-", "--state", str(state)], input=part, capture_output=True,
                           timeout=120) for part in (pcm[:cut], pcm[cut:])]
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    got = [json.loads(line) for r in runs for line in r.stdout.decode().splitlines()]
    assert got == found(labels[:500]) + found(labels[500:], first=500)
    assert json.loads(runs[1].stderr.decode().splitlines()[-1]) == {"hops": 1200,
                                                                     "seconds": 12.0}


def test_listener_refuses_a_model_that_takes_frames_and_a_state_file_that_is_an_input(
        forecaster, detector):
    done = app("listener", forecaster, "-", input="")
    assert done.returncode == 1 and "takes frames of features, not audio" in done.stderr
    assert "Traceback" not in done.stderr
    before = detector.read_bytes()
    done = app("listener", detector, "-", "--state", detector, input="")
    assert done.returncode == 1 and "is one of the inputs" in done.stderr
    assert detector.read_bytes() == before
