"""Streaming state that survives a crash: `edgernn run --state-file`, killed at random moments.

The killed runs read frames from stdin (paced by the test, so a kill lands at a chosen step,
sometimes in the middle of a save); the resumed run reads the same frames from a file with
--resume, and must print exactly the lines an uninterrupted run prints from that step on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from edgernn.runtime import load

pytestmark = pytest.mark.slow

N, EVERY = 120, 10


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    d = tmp_path_factory.mktemp("durable")
    x = np.random.default_rng(0).normal(size=(N, 4))
    lines = [",".join(f"{v:.5f}" for v in r) for r in x]
    path = d / "frames.csv"
    path.write_text("\n".join(lines) + "\n")
    return path, lines


def _cmd(model, *args):
    return [sys.executable, "-m", "edgernn", "run", str(model), *map(str, args)]


def _uninterrupted(model, path) -> list[str]:
    out = subprocess.run(_cmd(model, path), capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def _killed_run(model, lines, state, k: int, sig, rng) -> tuple[list[str], int]:
    """Feed ``k`` frames on stdin, wait until they are printed, then send ``sig``."""
    proc = subprocess.Popen(_cmd(model, "-", "--state-file", state, "--save-every", EVERY,
                                 "--save-seconds", 0, "--resume"),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    printed = []
    try:
        proc.stdin.write("\n".join(lines[:k]) + "\n")
        proc.stdin.flush()
        while len(printed) < k:
            line = proc.stdout.readline()
            if not line:
                break
            printed.append(line.rstrip("\n"))
        time.sleep(rng.uniform(0, 0.004))                 # sometimes mid-save
        proc.send_signal(sig)
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    printed += [v for v in rest.splitlines() if v]
    return printed, proc.returncode


def _steps(model, state) -> int | None:
    """Steps in the saved state (it must load), None when nothing was saved yet."""
    if not state.exists():
        return None
    stream = model.stream()
    stream.load(state)
    return stream.steps


@pytest.mark.parametrize("sig, runs", [(signal.SIGKILL, 25), (signal.SIGTERM, 10)],
                         ids=["SIGKILL x25", "SIGTERM x10"])
def test_state_survives_kills_and_resuming_reproduces_the_run(models, frames, tmp_path, sig,
                                                              runs):
    path, lines = frames
    onnx = models / "lstm_step.onnx"
    model = load(onnx)
    whole = _uninterrupted(onnx, path)
    rng = np.random.default_rng(int(sig))
    for i in range(runs):
        state = tmp_path / f"s{i}.state"
        k = int(rng.integers(1, N))
        printed, code = _killed_run(onnx, lines, state, k, sig, rng)
        assert printed == whole[:len(printed)]
        saved = _steps(model, state)
        if sig == signal.SIGTERM:
            assert code == 143 and saved == len(printed)          # saved on the signal
        else:
            assert code == -9
            assert (saved or 0) >= len(printed) - EVERY, (k, saved, len(printed))
        assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == [] or \
            sig == signal.SIGKILL
        resumed = subprocess.run(_cmd(onnx, path, "--state-file", state, "--resume"),
                                 capture_output=True, text=True)
        assert resumed.returncode == 0, resumed.stderr
        assert resumed.stdout.splitlines() == whole[saved or 0:], (k, saved)
    # whatever temporary files the kills left behind, the saves above cleared them
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_bad_line_saves_the_state_after_the_last_good_one(models, frames, tmp_path):
    path, lines = frames
    onnx = models / "lstm_step.onnx"
    broken = tmp_path / "broken.csv"
    broken.write_text("\n".join(lines[:30] + ["1,2,oops,4"] + lines[30:]) + "\n")
    state = tmp_path / "s.state"
    out = subprocess.run(_cmd(onnx, broken, "--state-file", state), capture_output=True,
                         text=True)
    assert out.returncode == 1 and len(out.stdout.splitlines()) == 30
    assert "line 31 ('1,2,oops,4') is not a csv frame" in out.stderr
    assert "last good line (30, step 30)" in out.stderr and "--resume" in out.stderr
    assert _steps(load(onnx), state) == 30
    # the cleaned file, rerun with --resume, continues exactly where the good lines ended
    resumed = subprocess.run(_cmd(onnx, path, "--state-file", state, "--resume"),
                             capture_output=True, text=True)
    assert resumed.stdout.splitlines() == _uninterrupted(onnx, path)[30:]


def test_saves_come_on_a_cadence_while_frames_arrive(models, frames, tmp_path):
    path, lines = frames
    onnx = models / "lstm_step.onnx"
    state = tmp_path / "s.state"
    proc = subprocess.Popen(_cmd(onnx, "-", "--state-file", state, "--save-every", 0,
                                 "--save-seconds", 0.2), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        proc.stdin.write("\n".join(lines[:7]) + "\n")
        proc.stdin.flush()
        for _ in range(7):
            proc.stdout.readline()
        time.sleep(0.4)
        proc.stdin.write(lines[7] + "\n")                   # the next frame triggers the save
        proc.stdin.flush()
        proc.stdout.readline()
        deadline = time.monotonic() + 10
        while not state.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _steps(load(onnx), state) == 8               # saved while still running
    finally:
        proc.kill()
        proc.wait()


def test_leftover_temporary_files_go_and_permissions_follow_the_umask(tmp_path):
    from edgernn.files import atomic_write_bytes

    target = tmp_path / "model.onnx"
    dead = tmp_path / f".model.onnx.{2 ** 22 + 12345}.deadbeef.tmp"     # no such process
    dead.write_bytes(b"half")
    sleeper = subprocess.Popen(["sleep", "30"])
    alive = tmp_path / f".model.onnx.{sleeper.pid}.cafe.tmp"           # a writer still at work
    alive.write_bytes(b"busy")
    old = os.umask(0o022)
    try:
        atomic_write_bytes(target, b"one")
        assert oct(target.stat().st_mode & 0o777) == oct(0o644)
        os.umask(0o077)
        atomic_write_bytes(tmp_path / "private.bin", b"two")
        assert oct((tmp_path / "private.bin").stat().st_mode & 0o777) == oct(0o600)
        target.chmod(0o640)
        atomic_write_bytes(target, b"three")                 # an existing file keeps its mode
        assert oct(target.stat().st_mode & 0o777) == oct(0o640)
    finally:
        os.umask(old)
        sleeper.kill()
        sleeper.wait()
    assert target.read_bytes() == b"three" and not dead.exists() and alive.exists()


def test_a_device_app_gets_the_same_durable_stream_from_the_library(models, tmp_path):
    """runtime/durable.py is what `edgernn run` uses: a program streaming from its own source
    saves on the same cadence, holds the same lock and writes the same records."""
    from edgernn.runtime.durable import Durable, state_file_lock, step_record

    model = load(models / "lstm_step.onnx")
    state = tmp_path / "app.state"
    x = np.random.default_rng(0).normal(size=(25, 4)).astype(np.float32)
    with state_file_lock(state):
        holder = subprocess.run(
            [sys.executable, "-c", "import sys; from edgernn.runtime.durable import "
             "state_file_lock\ntry:\n with state_file_lock(sys.argv[1]): pass\nexcept "
             "Exception as e: print(type(e).__name__, e)", str(state)],
            capture_output=True, text=True, timeout=60)
        assert holder.stdout.startswith(f"SnapshotError state file {state} is in use by "
                                        f"another process (pid {os.getpid()})"), holder
        stream = model.stream()
        saver = Durable(stream, state, every=10, seconds=0)
        records = []
        for frame in x[:15]:
            records.append(step_record(stream, stream.step(frame)))
            saver.maybe()
        assert saver.saved_steps == 10                   # the cadence, not every step
    resumed = model.stream()
    resumed.load(state)
    assert resumed.steps == 10
    whole = model.stream().feed(x[:11])
    np.testing.assert_allclose(resumed.step(x[10]), whole[-1], rtol=0, atol=1e-6)
    assert records[0]["step"] == 1 and records[0]["y"] == np.round(
        whole[0].astype(float), 6).tolist()
    with state_file_lock(state):                         # released: taken again
        pass


def test_the_lock_holds_for_every_writer_of_a_state_file(models, tmp_path):
    """Issue 27: the lock was bypassed through a hard link and by Stream.save() from the API,
    and a symbolic link to itself was turned into a regular file."""
    from edgernn.errors import SnapshotError
    from edgernn.runtime.durable import state_file_lock

    model = load(models / "lstm_step.onnx")
    stream = model.stream()
    stream.step(np.ones(4, np.float32))
    state = tmp_path / "held.state"
    stream.save(state)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from edgernn.runtime.durable import "
         "state_file_lock\nwith state_file_lock(sys.argv[1]):\n print('held', flush=True)\n "
         "time.sleep(60)", str(state)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        before = state.read_bytes()
        with pytest.raises(SnapshotError, match=f"is in use by another process \\(pid "
                                                f"{holder.pid}\\)"):
            stream.save(state)                           # the API's save respects the lock
        assert state.read_bytes() == before
    finally:
        holder.kill()
        holder.wait()
    with state_file_lock(state):                         # this process's own lock: its saves go
        stream.save(state)
    twin = tmp_path / "twin.state"
    os.link(state, twin)
    for name in (state, twin):
        with pytest.raises(SnapshotError, match="has 2 names \\(hard links\\)"):
            with state_file_lock(name):
                pass
    loop = tmp_path / "loop.state"
    os.symlink(loop.name, loop)
    with pytest.raises(SnapshotError, match="leads back to itself"):
        stream.save(loop)
    assert loop.is_symlink() and os.readlink(loop) == loop.name
