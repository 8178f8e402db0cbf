"""Files the user already has are never lost or left stale: an output that would replace an
input is refused (tests/test_failures.py), a state file behind a symbolic link stays a link, one
state file serves one run at a time, folders a verb owns are replaced whole and only on purpose,
and what a killed process leaves behind is cleaned up by the next one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from tests.conftest import run_cli  # noqa: E402


def _csv(rows: np.ndarray) -> str:
    return "\n".join(",".join(f"{v:.5f}" for v in r) for r in rows) + "\n"


def test_a_byte_order_mark_is_not_part_of_the_first_column_name(tmp_path):
    """Spreadsheets save UTF-8 CSV with a BOM; it used to become part of the first name, so a
    model trained on one file refused the next ('a, b, c' vs 'a, b, c': the same to the eye)."""
    t = np.arange(900)[:, None]
    series = np.sin(t / np.array([7.0, 11.0, 13.0])) + 0.01 * t / 900
    data = tmp_path / "bom.csv"
    data.write_bytes(b"\xef\xbb\xbf" + ("a,b,c\n" + _csv(series)).encode())
    trained = run_cli("train", "--task", "forecast", "--data", data, "--epochs", "1",
                      "--hidden", "8", "-o", tmp_path / "m.pt")
    assert trained.returncode == 0, trained.stderr
    assert run_cli("export", tmp_path / "m.pt", "-o", tmp_path / "m.onnx").returncode == 0
    info = json.loads(run_cli("info", tmp_path / "m.onnx", "--json").stdout)
    assert info["contract"]["dataset"]["feature_names"] == ["a", "b", "c"]
    from_file = run_cli("run", tmp_path / "m.onnx", data)
    from_stdin = run_cli("run", tmp_path / "m.onnx", input="\ufeffa,b,c\n" + _csv(series[:5]))
    assert from_file.returncode == from_stdin.returncode == 0, from_file.stderr
    assert len(from_file.stdout.splitlines()) == 900
    assert from_stdin.stdout.splitlines() == from_file.stdout.splitlines()[:5]


def test_a_state_file_behind_a_link_is_updated_and_stays_a_link(models, tmp_path):
    x = np.random.default_rng(0).normal(size=(6, 4))
    target = tmp_path / "real" / "s.state"
    target.parent.mkdir()
    link = tmp_path / "link.state"
    link.symlink_to(target)
    model = models / "lstm_step.onnx"
    first = run_cli("run", model, "--state-file", link, input=_csv(x[:4]))
    assert first.returncode == 0, first.stderr
    assert link.is_symlink() and target.is_file()          # was: the link replaced by a file
    second = run_cli("run", model, "--state-file", link, input=_csv(x[4:]))
    whole = run_cli("run", model, input=_csv(x))
    assert [json.loads(v)["step"] for v in second.stdout.splitlines()] == [5, 6]
    assert second.stdout.splitlines()[-1] == whole.stdout.splitlines()[-1]
    assert [p.name for p in target.parent.iterdir()] == ["s.state"]      # no lock file left


def test_one_state_file_serves_one_run_at_a_time(models, tmp_path):
    """Two runs on one state file each saved over the other's steps and both exited 0."""
    state, model = tmp_path / "s.state", models / "lstm_step.onnx"
    first = subprocess.Popen([sys.executable, "-m", "edgernn", "run", str(model), "-",
                              "--state-file", str(state)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first.stdin.write("1,2,3,4\n")
        first.stdin.flush()
        assert json.loads(first.stdout.readline())["step"] == 1     # it holds the lock now
        second = run_cli("run", model, "--state-file", state, input="1,2,3,4\n")
        assert second.returncode == 1 and "Traceback" not in second.stderr
        assert (f"--state-file {state} is in use by another edgernn run (pid {first.pid})"
                in second.stderr), second.stderr
        _, err = first.communicate("5,6,7,8\n", timeout=60)
        assert first.returncode == 0, err
    finally:
        if first.poll() is None:
            first.kill()
    third = run_cli("run", model, "--state-file", state, input="1,2,3,4\n")
    assert third.returncode == 0 and json.loads(third.stdout)["step"] == 3


def test_a_lock_dies_with_its_process(tmp_path):
    """kill -9 runs no handler; the kernel drops the lock with the process."""
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time\nfrom edgernn.files import exclusive\n"
                               f"with exclusive({str(tmp_path / 's.state')!r}):\n"
                               "    print('held', flush=True); time.sleep(600)\n"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    from edgernn.files import FileLockedError, exclusive

    with pytest.raises(FileLockedError, match=f"pid {holder.pid}"):
        with exclusive(tmp_path / "s.state"):
            pass
    holder.kill()
    holder.wait()
    with exclusive(tmp_path / "s.state"):
        pass


def test_a_page_folder_is_replaced_whole_and_only_with_force(models, tmp_path):
    model, page = models / "gru_step_decomposed.onnx", tmp_path / "page"
    assert run_cli("web", model, "-o", page).returncode == 0
    (page / "stale.js").write_text("// from an earlier page")
    again = run_cli("web", model, "-o", page)
    assert again.returncode == 2 and "pass --force" in again.stderr
    assert (page / "stale.js").exists()
    forced = run_cli("web", model, "-o", page, "--force")
    assert forced.returncode == 0, forced.stderr
    assert not (page / "stale.js").exists() and (page / "model.onnx").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["page"]         # no temporary folder left


def test_a_repository_model_is_replaced_whole_and_others_are_kept(models, tmp_path):
    """A stale 1/load.json from an earlier foreign model broke loading the new one."""
    repo, model = tmp_path / "repo", models / "lstm_step.onnx"
    (repo / "other" / "1").mkdir(parents=True)
    (repo / "other" / "config.pbtxt").write_text('name: "other"\n')
    assert run_cli("triton", model, "-o", repo).returncode == 0
    (repo / "edgernn" / "1" / "load.json").write_text('{"states": {"a": "b"}}')
    refused = run_cli("triton", model, "-o", repo)
    assert refused.returncode == 2 and "already holds a model; pass --force" in refused.stderr
    forced = run_cli("triton", model, "-o", repo, "--force", "--json")
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["files"] == ["edgernn/1/model.onnx", "edgernn/1/model.py",
                                                  "edgernn/config.pbtxt"]
    assert (repo / "other" / "config.pbtxt").read_text() == 'name: "other"\n'
    assert sorted(p.name for p in repo.iterdir()) == ["edgernn", "other"]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_a_new_file_gets_the_umask_without_touching_it(tmp_path, umask, mode):
    """Reading the umask meant setting it, which races with other threads' file creation."""
    code = ("import os, sys\nfrom edgernn.files import atomic_write_bytes\n"
            f"os.umask({umask})\natomic_write_bytes(sys.argv[1], b'x')\n"
            f"assert os.umask(0) == {umask}\n")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "f")])
    assert done.returncode == 0
    assert os.stat(tmp_path / "f").st_mode & 0o777 == mode
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_scratch_folders_of_dead_processes_are_removed(tmp_path, monkeypatch):
    import tempfile

    from edgernn.files import scratch_folder

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (tmp_path / f"edgernn-repo-{dead}-abc" / "m").mkdir(parents=True)
    (tmp_path / f"edgernn-repo-{os.getppid()}-abc").mkdir()        # alive: kept
    (tmp_path / f"edgernn-triton-{dead}-abc").mkdir()              # another kind: not ours
    scratch = scratch_folder("repo")
    assert Path(scratch.name).name.startswith(f"edgernn-repo-{os.getpid()}-")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([
        f"edgernn-repo-{os.getppid()}-abc", f"edgernn-triton-{dead}-abc", Path(scratch.name).name])
    scratch.cleanup()


def test_weights_in_a_separate_file_load_from_any_working_directory(models, tmp_path,
                                                                      monkeypatch):
    """ONNX Runtime finds external data beside the model only when the model is opened by its
    path; opened from its bytes, it looked in the working directory."""
    import onnx

    from edgernn.runtime import load

    onnx.save(onnx.load(models / "lstm_step.onnx"), tmp_path / "ext.onnx",
              save_as_external_data=True, location="ext.onnx.data", size_threshold=256)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_array_equal(load(tmp_path / "ext.onnx").stream().feed(x),
                                  load(models / "lstm_step.onnx").stream().feed(x))
