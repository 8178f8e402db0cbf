"""Every CLI verb, fed bad input: one clear message, the right exit code, no traceback, and
nothing that was on disk before is changed (no new file either).

Exit codes: 1 an operational failure (a bad or missing file, a failed check), 2 a usage error
(a bad option, an output that cannot be written, data the command needs and was not given).
A read-only and a full file system are real tmpfs mounts when the tests may mount (root);
those cases skip otherwise.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from tests.conftest import run_cli  # noqa: E402


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


@pytest.fixture(scope="module")
def files(tmp_path_factory, forecast_checkpoint):
    """Every input the cases use, made once; the cases run in a copy-free, read-only way."""
    import onnx

    from edgernn.checkpoint import Checkpoint, save_checkpoint
    from edgernn.config import ModelConfig
    from edgernn.exporters import export
    from edgernn.exporters.artifact import contract_in, embed_contract
    from edgernn.models import build
    from edgernn.runtime import load, snapshot

    d = tmp_path_factory.mktemp("bad")
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
    wrong = type(wrong)(**{**vars(wrong), "shape": ["batch", 99]})
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
    f["no_steps"].write_bytes(_rehash(good.replace(b'"steps": 5', b'"stepz": 5')))
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
    mounted_full = _mount(f["full"], "size=16k")
    if mounted_full:
        (f["full"] / "filler").write_bytes(b"\0" * 12_000)
    f["mounts"] = {"ro": mounted_ro, "full": mounted_full}
    yield f
    for m in ("ro", "full"):
        if f["mounts"][m]:
            subprocess.run(["umount", str(f[m])], capture_output=True)


# (id, arguments with {placeholders}, exit code, what the message must say, needs a mount)
CASES = [
    ("train: data missing", "train --task forecast --data {missing}", 1, "does not exist", None),
    ("train: data is a folder", "train --data {dir}", 1, "is a directory", None),
    ("train: CSV not UTF-8", "train --task forecast --data {latin1}", 1, "is not UTF-8", None),
    ("train: empty CSV", "train --task forecast --data {empty_csv}", 1, "holds no data rows",
     None),
    ("train: series too short", "train --task forecast --data {short_csv}", 1, "too short",
     None),
    ("train: npz of the wrong shape", "train --task classify --data {bad_npz}", 1,
     "expected 3 dimensions", None),
    ("train: output in a read-only folder", "train -o {ro}/m.pt", 2, "not writable", "ro"),
    ("train: output's parent is a file", "train -o {a_file}/m.pt", 2, "is a file, not a folder",
     None),
    ("train: output is a folder", "train -o {dir}", 2, "is a directory", None),
    ("train: zero epochs", "train --epochs 0", 2, "Invalid value for '--epochs'", None),
    ("export: checkpoint missing", "export {missing} -o {dir}/x.onnx", 1, "does not exist",
     None),
    ("export: checkpoint corrupt", "export {corrupt_pt} -o {dir}/x.onnx", 1,
     "not a readable edgernn checkpoint", None),
    ("export: output read-only", "export {ckpt} -o {ro}/x.onnx", 2, "not writable", "ro"),
    ("export: output's parent is a file", "export {ckpt} -o {a_file}/x.onnx", 2,
     "is a file, not a folder", None),
    ("export: disk full", "export {ckpt} -o {full}/x.onnx", 1, "disk is full", "full"),
    ("export: chunk with decomposed ops", "export {ckpt} --graph chunk --ops decomposed -o "
     "{dir}/x.onnx", 1, "applies to step graphs", None),
    ("quantize: model missing", "quantize {missing}", 1, "does not exist", None),
    ("quantize: model corrupt", "quantize {corrupt} -o {dir}/q.onnx", 1,
     "not a readable ONNX file", None),
    ("quantize: another model's checkpoint", "quantize {fp32} --checkpoint {other_ckpt} -o "
     "{dir}/q.onnx", 2, "does not hold the weights of", None),
    ("quantize: output read-only", "quantize {fp32} -o {ro}/q.onnx", 2, "not writable", "ro"),
    ("quantize: already quantized", "quantize {quantized} -o {dir}/q.onnx", 2,
     "is already quantized", None),
    ("quantize: unknown profile", "quantize {fp32} --profile nosuch", 2,
     "unknown device profile 'nosuch'", None),
    ("quantize: data of another width", "quantize {fp32} --data {wide_csv} -o {dir}/q.onnx", 1,
     "has 5 features per frame but", None),
    ("quantize: disk full", "quantize {fp32} --checkpoint {ckpt} -o {full}/q.onnx --horizon 200",
     1,
     "disk is full", "full"),
    ("validate: plot read-only", "validate {ckpt} {fp32} --plot {ro}/d.png", 2, "not writable",
     "ro"),
    ("validate: plot's parent is a file", "validate {ckpt} {fp32} --plot {a_file}/d.png", 2,
     "is a file, not a folder", None),
    ("validate: another architecture", "validate {other_ckpt} {fp32}", 1,
     "is not the model of", None),
    ("validate: artifact missing", "validate {ckpt} {missing}", 1, "does not exist", None),
    ("validate: contract disagrees with its graph", "validate {ckpt} {tampered}", 1,
     "does not match its graph", None),
    ("validate: --record on a read-only artifact", "validate {ckpt} {ro}/fp32.onnx --record",
     2, "is not writable", "ro"),
    ("run: source missing", "run {fp32} {missing}", 1, "does not exist", None),
    ("run: source is a folder", "run {fp32} {dir}", 1, "is a directory", None),
    ("run: CSV not UTF-8", "run {fp32} {latin1}", 1, "is not UTF-8", None),
    ("run: empty .npy", "run {fp32} {empty_npy}", 1, "cannot read", None),
    ("run: empty CSV", "run {fp32} {empty_csv} --state-file {dir}/new.state", 1,
     "no frames in", None),
    ("run: NaN state", "run {fp32} {csv} --state-file {nan_state}", 1, "holds NaN or inf",
     None),
    ("run: state with a broken header", "run {fp32} {csv} --state-file {no_steps}", 1,
     "the snapshot is damaged", None),
    ("run: another model's state", "run {fp32} {csv} --state-file {other_state}", 1,
     "belongs to another model", None),
    ("run: state file under a file", "run {fp32} {csv} --state-file {a_file}/s.state", 2,
     "is a file, not a folder", None),
    ("run: resume without a state file", "run {fp32} {csv} --resume", 2,
     "--resume needs --state-file", None),
    ("run: a tampered contract", "run {tampered} {csv}", 1, "does not match its graph", None),
    ("run: dims on an edgernn model", "run {fp32} {csv} --dim x=3", 1,
     "constants and dims are for models without", None),
    ("run: frames of another width", "run {fp32} {wide_csv}", 1,
     "takes one frame of shape (3,)", None),
    ("run: state file read-only", "run {fp32} {csv} --state-file {ro}/s.state", 2,
     "not writable", "ro"),
    ("bench: no streams", "bench {fp32} --streams 0", 2, "counts of at least 1", None),
    ("bench: streams not numbers", "bench {fp32} --streams a,b", 2, "comma-separated counts",
     None),
    ("bench: model missing", "bench {missing}", 1, "does not exist", None),
    ("bench: zero threads", "bench {fp32} --threads 0", 2, "Invalid value for '--threads'",
     None),
    ("info: missing", "info {missing}", 1, "does not exist", None),
    ("info: a folder", "info {dir}", 1, "does not exist or is not a file", None),
    ("info: corrupt ONNX", "info {corrupt}", 1, "not a valid ONNX model", None),
    ("triton: model missing", "triton {missing} -o {dir}/repo", 1, "does not exist", None),
    ("triton: lean state for implicit state", "triton {lean} --backend onnxruntime -o "
     "{dir}/repo", 2, "keeps its batch on axis 1", None),
    ("triton: output is a file", "triton {fp32} -o {a_file}", 2, "is a file", None),
    ("triton: output read-only", "triton {fp32} -o {ro}/repo", 2, "not writable", "ro"),
    ("triton: zero idle timeout", "triton {fp32} -o {dir}/repo --idle 0", 2,
     "Invalid value for '--idle'", None),
    ("serve: model missing", "serve {missing}", 1, "does not exist", None),
    ("serve: not a port", "serve {fp32} --grpc-port 70000", 2,
     "Invalid value for '--grpc-port'", None),
    ("web: model missing", "web {missing} -o {dir}/page", 1, "does not exist", None),
    ("web: corrupt model", "web {corrupt} -o {dir}/page", 1, "not a valid ONNX model", None),
    ("web: ort folder without onnxruntime-web", "web {fp32} -o {dir}/page --ort {dir}", 2,
     "does not hold onnxruntime-web", None),
    ("web: output is a file", "web {fp32} -o {a_file}", 2, "is a file", None),
    ("web: output read-only", "web {fp32} -o {ro}/page", 2, "not writable", "ro"),
    ("web: data of another width", "web {fp32} -o {dir}/page --data {wide_csv}", 1,
     "has 5 features per frame but", None),
    ("demo: unknown profile", "demo --profile nosuch --out {dir}/demo", 2,
     "unknown device profile 'nosuch'", None),
    ("demo: out is a file", "demo --out {a_file}", 2, "is a file", None),
    ("demo: out read-only", "demo --out {ro}/demo", 2, "not writable", "ro"),
]


# Failures found by the checks that run before any work: these must stop before torch loads.
PRE_CHECKS = ("not writable", "is a file", "is a directory", "unknown device profile",
              "Invalid value", "does not exist", "is not UTF-8")


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_table_is_big_enough():
    assert len(CASES) >= 40
    assert {c[1].split()[0] for c in CASES} >= {"train", "export", "quantize", "validate", "run",
                                                "triton", "serve", "web",
                                                "bench", "info", "demo"}


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_one_clear_message(files, case, tmp_path):
    name, args, code, message, mount = case
    if mount and not files["mounts"][mount]:
        pytest.skip(f"cannot mount a {mount} tmpfs here (needs root)")
    argv = args.format(**{k: v for k, v in files.items() if not isinstance(v, dict)}).split()
    root = files["dir"].parent
    before = _tree(root)
    # a torch that cannot be imported: a bad argument must be caught before any heavy work
    fake = tmp_path / "fake"
    (fake / "torch").mkdir(parents=True)
    (fake / "torch" / "__init__.py").write_text("raise RuntimeError('torch was imported')\n")
    early = argv[0] in ("train", "demo", "quantize", "validate", "export") and any(
        m in message for m in PRE_CHECKS)
    env = {"PYTHONPATH": str(fake)} if early else None
    out = run_cli(*argv, env=env, timeout=600)
    err = out.stderr.strip().splitlines()
    assert out.returncode == code, (name, out.returncode, out.stderr[-1500:])
    assert "Traceback" not in out.stderr and "torch was imported" not in out.stderr
    assert err and err[-1].startswith("Error: ") and sum(e.startswith("Error") for e in err) == 1
    assert message in err[-1], (name, err[-1])
    assert _tree(root) == before, f"{name} changed files on disk"
    if "--json" in argv and out.stdout.strip():
        json.loads(out.stdout)


def test_an_unexpected_error_is_one_line_naming_the_bug_and_debug_shows_it(tmp_path):
    fake = tmp_path / "fake"
    (fake / "edgernn_boom").mkdir(parents=True)
    script = ("import sys, edgernn.cli as c\n"
              "import edgernn.cli.info as i\n"
              "def boom(*a, **k): raise ZeroDivisionError('a bug')\n"
              "i.describe_onnx = boom\n"
              "sys.argv = ['edgernn'] + sys.argv[1:]\n"
              "c.main()\n")
    (tmp_path / "t.onnx").write_bytes(b"x")
    for extra, traced in (([], False), (["--debug"], True)):
        out = subprocess.run([__import__("sys").executable, "-c", script, *extra, "info",
                              str(tmp_path / "t.onnx")], capture_output=True, text=True)
        assert out.returncode == 1
        if traced:
            assert "Traceback" in out.stderr and "ZeroDivisionError: a bug" in out.stderr
        else:
            assert out.stderr.strip().splitlines() == [
                "Error: internal error (ZeroDivisionError: a bug). This is a bug in edgernn: "
                "rerun with --debug (or EDGERNN_DEBUG=1) to see the full trace, and report it"]


def test_json_output_parses_on_the_failure_paths_too(files, tmp_path):
    """A failing check still prints its report as one JSON document on stdout; everything else
    (progress, the ONNX Runtime quantizer's own prints, the error) goes to stderr."""
    out = run_cli("validate", files["ckpt"], files["fp32"], "--atol", "1e-12", "--horizon",
                  "100", "--json")
    assert out.returncode == 1 and json.loads(out.stdout)["passed"] is False
    calib = tmp_path / "c.npz"
    np.savez(calib, x=np.random.default_rng(0).normal(size=(4, 20, 3)).astype(np.float32) * 1e4)
    out = run_cli("quantize", files["fp32"], "--mode", "static", "--inputs", "int8",
                  "--recurrent", "int8", "--calibration", calib, "--horizon", "200", "-o",
                  tmp_path / "q.onnx", "--json")
    assert out.returncode == 1 and json.loads(out.stdout)["passed"] is False
    assert "fails the quality gate" in out.stderr and not (tmp_path / "q.onnx").exists()
    ok = run_cli("quantize", files["fp32"], "--checkpoint", files["ckpt"], "--mode", "static",
                 "--horizon", "200", "-o", tmp_path / "s.onnx", "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["mode"] == "static"
