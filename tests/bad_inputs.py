"""The inputs :mod:`tests.test_failures` feeds every verb: real files, each wrong in one way."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
from pathlib import Path

import numpy as np

from tests.conftest import run_cli


def _mount(folder: Path, options: str) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                          capture_output=True)
    return done.returncode == 0


def _rehash(data: bytes) -> bytes:
    """``data`` with its checksum made valid again: damage a checksum cannot catch."""
    body = data[:-32]
    return body + hashlib.sha256(body).digest()


def _snapshot(state_of, data: bytes, mutate) -> bytes:
    """A real snapshot whose header or arrays are changed, with a valid checksum."""
    from edgernn.runtime import snapshot

    states, steps = snapshot.loads(data, state_of)
    header_fp, states, steps = mutate(state_of, states, steps)
    return snapshot.dumps(header_fp, states, steps)


def make_inputs(d: Path, forecast_checkpoint: Path) -> dict:
    """Every input the cases use, made once in ``d``; the cases only read them."""
    import onnx

    from edgernn.checkpoint import Checkpoint, save_checkpoint
    from edgernn.config import ModelConfig
    from edgernn.exporters import export
    from edgernn.exporters.artifact import contract_in, embed_contract
    from edgernn.models import build
    from edgernn.runtime import load, snapshot

    f = {"dir": d / "a_folder", "missing": d / "missing.file", "ckpt": forecast_checkpoint}
    f["dir"].mkdir()
    f["fp32"] = export(forecast_checkpoint, d / "fp32.onnx").path
    f["lean"] = export(forecast_checkpoint, d / "lean.onnx", ops="lean").path
    other = ModelConfig(cell="lstm", input_size=5, hidden_size=6, num_layers=1, output_size=2,
                        head="classify_step")
    f["other_ckpt"] = save_checkpoint(d / "other.pt", Checkpoint(
        config=other, state_dict=build(other, seed=0).state_dict(), task=""))
    f["other_onnx"] = export(f["other_ckpt"], d / "other.onnx").path
    rows = np.random.default_rng(0).normal(size=(200, 3))
    f["csv"] = d / "frames.csv"
    f["csv"].write_text("\n".join(",".join(f"{v:.4f}" for v in r) for r in rows) + "\n")
    f["wide_csv"] = d / "wide.csv"
    f["wide_csv"].write_text("\n".join("1,2,3,4,5" for _ in range(100)) + "\n")
    f["latin1"] = d / "latin1.csv"
    f["latin1"].write_bytes("temp\u00e9,x\n1,2\n".encode("latin-1") * 40)
    f["empty_csv"] = d / "empty.csv"
    f["empty_csv"].write_text("")
    f["empty_npy"] = d / "empty.npy"
    f["empty_npy"].write_bytes(b"")
    f["short_csv"] = d / "short.csv"
    f["short_csv"].write_text("1,2,3\n" * 20)
    f["bad_npz"] = d / "bad.npz"
    np.savez(f["bad_npz"], x_train=np.zeros((4, 5)), y_train=np.zeros(4, int))
    f["corrupt"] = d / "corrupt.onnx"
    f["corrupt"].write_bytes(b"\x08\x07 not an onnx file")
    f["corrupt_pt"] = d / "corrupt.pt"
    f["corrupt_pt"].write_bytes(b"PK\x03\x04 truncated")
    f["a_file"] = d / "plain.txt"
    f["a_file"].write_text("a file, not a folder")
    proto = onnx.load(f["fp32"])
    contract = contract_in(proto)
    wrong = contract.states[0]
    wrong = type(wrong)(**{**vars(wrong), "shape": [*wrong.shape[:-1], 99]})
    embed_contract(proto, contract.with_changes(states=[wrong]))
    f["tampered"] = d / "tampered.onnx"
    onnx.save(proto, f["tampered"])
    f["quantized"] = d / "fp32.int8.onnx"
    done = run_cli("quantize", f["fp32"], "--checkpoint", forecast_checkpoint, "-o",
                   f["quantized"], "--horizon", "200")
    assert done.returncode == 0, done.stderr
    model = load(f["fp32"])
    stream = model.stream()
    stream.feed(rows[:5].astype(np.float32))
    good = stream.snapshot()
    fp = model.fingerprint
    f["nan_state"] = d / "nan.state"
    f["nan_state"].write_bytes(_snapshot(fp, good, lambda m, s, n: (
        m, {k: np.full_like(v, np.nan) for k, v in s.items()}, n)))
    f["no_steps"] = d / "nosteps.state"
    assert b'"steps":5' in good                      # canonical JSON header
    f["no_steps"].write_bytes(_rehash(good.replace(b'"steps":5', b'"stepz":5')))
    f["loop"] = d / "loop.state"
    os.symlink(f["loop"].name, f["loop"])
    f["linked"] = d / "linked.state"
    f["linked"].write_bytes(good)
    os.link(f["linked"], d / "linked.again.state")
    f["other_state"] = d / "other.state"
    other_stream = load(f["other_onnx"]).stream()
    f["other_state"].write_bytes(other_stream.snapshot())
    del snapshot
    f["ro"] = d / "readonly"
    f["full"] = d / "full"
    mounted_ro = _mount(f["ro"], "size=4m")
    if mounted_ro:
        (f["ro"] / "fp32.onnx").write_bytes(f["fp32"].read_bytes())
        mounted_ro = subprocess.run(["mount", "-o", "remount,ro", str(f["ro"])],
                                    capture_output=True).returncode == 0
    mounted_full = _mount(f["full"], "size=2m")
    if mounted_full:                      # earlier outputs that a failed write must not touch
        for name, source in (("prev.onnx", f["fp32"]), ("prev.pt", forecast_checkpoint)):
            (f["full"] / name).write_bytes(Path(source).read_bytes())
        (f["full"] / "prev.state").write_bytes(good)
        room = os.statvfs(f["full"])
        (f["full"] / "filler").write_bytes(b"\0" * (room.f_bavail * room.f_frsize - 4096))
    f["mounts"] = {"ro": mounted_ro, "full": mounted_full}
    _lost_file_inputs(f, d, forecast_checkpoint)
    _data_inputs(f, d)
    _edited_int8(f, d, forecast_checkpoint)
    return f


def unmount(f: dict) -> None:
    for m in ("ro", "full"):
        if f["mounts"][m]:
            subprocess.run(["umount", str(f[m])], capture_output=True)


def _lost_file_inputs(f: dict, d: Path, forecast_checkpoint: Path) -> None:
    """Outputs that would destroy an input or another model's files."""
    import dataclasses

    import onnx

    from edgernn.checkpoint import load_checkpoint, save_checkpoint
    from edgernn.models import build

    f["with_model"] = d / "page_with_model"                 # a folder holding the model
    f["with_model"].mkdir()
    f["inside_model"] = f["with_model"] / "model.onnx"
    f["inside_model"].write_bytes(f["fp32"].read_bytes())
    f["old_page"] = d / "old_page"                          # an earlier page, not ours to drop
    f["old_page"].mkdir()
    (f["old_page"] / "index.html").write_text("<p>another model's page</p>")
    f["repo"] = d / "repo"                                  # a repository with model 'edgernn'
    (f["repo"] / "edgernn" / "1").mkdir(parents=True)
    (f["repo"] / "edgernn" / "config.pbtxt").write_text('name: "edgernn"\n')
    mine = load_checkpoint(forecast_checkpoint)             # same network, other weights
    f["retrained"] = save_checkpoint(d / "retrained.pt", dataclasses.replace(
        mine, state_dict=build(mine.config, seed=7).state_dict()))
    f["ext"] = d / "ext.onnx"                               # weights in a file that is gone
    onnx.save(onnx.load(f["fp32"]), f["ext"], save_as_external_data=True,
              location="ext.onnx.data", size_threshold=256)
    (d / "ext.onnx.data").unlink()
    f["listener"] = socket.socket()                         # a port another server holds
    f["listener"].bind(("127.0.0.1", 0))
    f["listener"].listen()
    f["busy_port"] = f["listener"].getsockname()[1]


def _data_inputs(f: dict, d: Path) -> None:
    """Data files that are wrong in their classes or their format."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 8, 3)).astype(np.float32)
    for name, y, extra in (("neg_ids", np.r_[np.arange(23) % 3, -1], {}),
                           ("huge_ids", np.r_[np.arange(23) % 3, 10**9], {}),
                           ("few_names", np.arange(24) % 3, {"labels": np.array(["a", "b"])})):
        f[name] = d / f"{name}.npz"
        np.savez(f[name], x_train=x, y_train=y.astype(np.int64), **extra)
    f["csv_as_npz"] = d / "frames_as.npz"
    f["csv_as_npz"].write_text(f["csv"].read_text())
    f["csv_as_npy"] = d / "frames_as.npy"
    f["csv_as_npy"].write_text(f["csv"].read_text())


def _edited_int8(f: dict, d: Path, forecast_checkpoint: Path) -> None:
    """A real lean int8 file (one ai.edgernn node per layer, run by edgernn's kernels) whose head
    weight was cut from (3, H) to (3, H/2): issue 27's file, which once wrote past its output."""
    import onnx
    from onnx import numpy_helper

    lean8 = d / "lean.int8.onnx"
    done = run_cli("quantize", f["lean"], "--checkpoint", forecast_checkpoint, "-o", lean8,
                   "--horizon", "200")
    assert done.returncode == 0, done.stderr
    proto = onnx.load(lean8)
    head = next(n for n in proto.graph.node if n.op_type == "Dense8")
    t = next(t for t in proto.graph.initializer if t.name == head.input[1])
    w = numpy_helper.to_array(t)
    f["head_cut"] = f"W (3, {w.shape[1] // 2}) takes {w.shape[1] // 2} inputs"
    t.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(w[:, : w.shape[1] // 2]), t.name))
    f["edited_int8"] = d / "edited.int8.onnx"
    onnx.save(proto, f["edited_int8"])
