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

NOT_FINITE = "is not a finite number"
DESTROY = "this command reads; writing there would destroy it"


@pytest.fixture(scope="module")
def files(tmp_path_factory, forecast_checkpoint):
    """Every input the cases use (tests/bad_inputs.py), made once; the cases only read them."""
    from tests.bad_inputs import make_inputs, unmount

    f = make_inputs(tmp_path_factory.mktemp("bad"), forecast_checkpoint)
    yield f
    f["listener"].close()
    unmount(f)


# (id, arguments with {placeholders}, exit code, what the message must say, needs a mount)
CASES = [
    ("train: data missing", "train --task forecast --data {missing}", 1, "does not exist", None),
    ("train: data is a folder with no label folders", "train --data {dir}", 1,
     "a classifier needs at least two, one sub-folder of .wav files per label", None),
    ("train: forecast data is a folder", "train --task forecast --data {dir}", 1,
     "is a directory", None),
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
    # outputs that would destroy an input or another model's files
    ("export: output is its checkpoint", "export {retrained} -o {retrained}", 2, DESTROY, None),
    ("train: output is its data", "train --task forecast --data {csv} -o {csv}", 2, DESTROY,
     None),
    ("quantize: output is its model", "quantize {fp32} -o {fp32}", 2, DESTROY, None),
    ("validate: plot over the artifact", "validate {ckpt} {fp32} --plot {fp32}", 2, DESTROY,
     None),
    ("run: state file is the source", "run {fp32} {csv} --state-file {csv}", 2, DESTROY, None),
    ("run: state file is the model", "run {fp32} {csv} --state-file {fp32}", 2, DESTROY, None),
    ("web: folder holds the model", "web {inside_model} -o {with_model}", 2,
     "is replaced whole; choose another output folder", None),
    ("web: folder holds another page", "web {fp32} -o {old_page}", 2,
     "already holds files (another page or model?); pass --force", None),
    ("triton: model folder in use", "triton {fp32} -o {repo}", 2,
     "already holds a model; pass --force", None),
    ("triton: folder holds the model", "triton {inside_model} -o {dir}/.. --name "
     "page_with_model --force", 2, "is replaced whole", None),
    # numbers that are not numbers, and limits
    ("triton: idle nan", "triton {fp32} -o {dir}/repo --idle nan", 2, NOT_FINITE, None),
    ("triton: idle inf", "triton {fp32} -o {dir}/repo --idle inf", 2, NOT_FINITE, None),
    ("run: save-seconds nan", "run {fp32} {csv} --save-seconds nan", 2, NOT_FINITE, None),
    ("validate: atol nan", "validate {ckpt} {fp32} --atol nan", 2, NOT_FINITE, None),
    ("train: lr inf", "train --lr inf", 2, NOT_FINITE, None),
    ("run: thousands of threads", "run {fp32} {csv} --threads 5000", 2,
     "far more than this machine's", None),
    ("export: opset 99", "export {ckpt} --opset 99 -o {dir}/x.onnx", 1,
     "outside what the torchscript exporter writes", None),
    # class ids and label names
    ("train: a negative class id", "train --task classify --data {neg_ids}", 1,
     "class ids must be 0, 1, 2, ...; found -1", None),
    ("train: a class id of a billion", "train --task classify --data {huge_ids}", 1,
     "would have 1,000,000,001 outputs for 4 classes", None),
    ("train: fewer label names than classes", "train --task classify --data {few_names}", 1,
     "labels has 2 names but the data uses class id 2", None),
    # files of another kind than their name says, and files that are gone or busy
    ("train: CSV text named .npz", "train --task classify --data {csv_as_npz}", 1,
     "is not an .npz file (it holds text, starting", None),
    ("run: CSV text named .npy", "run {fp32} {csv_as_npy}", 1,
     "it holds text, starting", None),
    ("run: external weights missing", "run {ext} {csv}", 1,
     "keeps weights in a separate data file it cannot read", None),
    ("web: port in use", "web {fp32} -o {dir}/page --serve {busy_port}", 2,
     "cannot serve on 127.0.0.1:", None),
    ("validate: another model's weights", "validate {retrained} {fp32}", 2,
     "does not hold the weights of", None),
    ("demo: unknown profile", "demo --profile nosuch --out {dir}/demo", 2,
     "unknown device profile 'nosuch'", None),
    ("demo: out is a file", "demo --out {a_file}", 2, "is a file", None),
    ("demo: out read-only", "demo --out {ro}/demo", 2, "not writable", "ro"),
    # a full disk under every verb that writes: one message, the earlier file untouched
    ("train: disk full over a checkpoint", "train --task forecast --epochs 1 --hidden 4 --size "
     "0.2 -o {full}/prev.pt", 1, "disk is full while writing", "full"),
    ("export: disk full over a model", "export {ckpt} -o {full}/prev.onnx", 1,
     "disk is full while writing", "full"),
    ("validate: plot on a full disk", "validate {ckpt} {fp32} --plot {full}/d.png", 1,
     "disk is full while writing", "full"),
    ("validate: --record on a full disk", "validate {ckpt} {full}/prev.onnx --record", 1,
     "disk is full while writing", "full"),
    ("run: state file on a full disk", "run {fp32} {csv} --state-file {full}/prev.state "
     "--resume", 1, "disk is full while writing", "full"),
    ("triton: disk full", "triton {fp32} -o {full}/repo", 1, "disk is full while writing",
     "full"),
    ("web: disk full", "web {fp32} -o {full}/page", 1, "disk is full while writing", "full"),
    ("demo: disk full", "demo --task forecast --epochs 1 --hidden 4 --size 0.2 --out "
     "{full}/demo", 1, "disk is full while writing", "full"),
    # a state file that is a symbolic link to itself, or one file under two names
    ("run: state file is a link loop", "run {fp32} {csv} --state-file {loop}", 1,
     "leads back to itself", None),
    ("run: state file has two names", "run {fp32} {csv} --state-file {linked} --resume", 1,
     "has 2 names (hard links)", None),
    # a model file is untrusted: edgernn's int8 kernels refuse one whose parts do not fit
    ("bench: int8 file with an edited head", "bench {edited_int8}", 1, "{head_cut}", None),
    ("run: int8 file with an edited head", "run {edited_int8} {csv}", 1, "{head_cut}", None),
]


# Failures found by the checks that run before any work: these must stop before torch loads.
PRE_CHECKS = ("not writable", "is a file", "is a directory", "unknown device profile",
              "Invalid value", "does not exist", "is not UTF-8")


def _tree(root: Path) -> dict[str, str]:
    """Every file's hash and every folder under ``root``: a failed command leaves neither a
    changed file nor an empty folder behind."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            if p.is_file() else "folder"
            for p in sorted(root.rglob("*")) if p.is_file() or p.is_dir()}


def test_the_table_is_big_enough():
    assert len(CASES) >= 60
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
    assert message.format(**{k: v for k, v in files.items() if isinstance(v, str)}) in err[-1], \
        (name, err[-1])
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
