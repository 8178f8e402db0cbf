"""A web page that streams an edgernn step graph in the browser (``edgernn web``).

The folder holds the page (``index.html``, ``page.js``), the JavaScript runtime
(``edgernn.js`` and its modules), the model, a signal to stream (``signal.json``: frames from
the model's own data when its contract records it, the built-in stream of its task otherwise,
noise in the data's units for a model that names no task) and onnxruntime-web's WebAssembly
build in ``ort/`` (from ``--ort``, ``EDGERNN_ORT_WEB``, or the copy ``npm ci`` put beside the
runtime; without one the page loads the pinned version from a CDN). Serve the folder over HTTP
(browsers do not run modules from file://): :func:`serve_folder`, or any static server.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from edgernn.errors import ConfigError

WEB = Path(__file__).resolve().parent / "web"
RUNTIME = ("edgernn.js", "contract.js", "errors.js", "snapshot.js", "sha256.js", "seq2seq.js",
           "events.js", "listen.js", "hops.worklet.js")
PAGE = ("index.html", "page.js")
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
ORT_VERSION = "1.30.0"
CDN = f"https://cdn.jsdelivr.net/npm/onnxruntime-web@{ORT_VERSION}/dist/ort.wasm.min.mjs"
LOCAL = "./ort/ort.wasm.min.mjs"


@dataclass
class Written:
    folder: Path
    kind: str
    steps: int
    description: str
    ort: str                       # where the page gets onnxruntime-web: a folder, or the CDN


def find_ort(given: str | os.PathLike | None = None) -> Path | None:
    """A folder with onnxruntime-web's WebAssembly build, or None."""
    candidates = [given] if given else [os.environ.get("EDGERNN_ORT_WEB"),
                                        WEB / "node_modules" / "onnxruntime-web" / "dist"]
    for c in candidates:
        if c and all((Path(c) / f).is_file() for f in ORT_FILES):
            return Path(c)
    if given:
        raise ConfigError(f"{given} does not hold onnxruntime-web's WebAssembly build "
                          f"({', '.join(ORT_FILES)}); pass its dist folder "
                          f"(node_modules/onnxruntime-web/dist)")
    return None


def _kind(contract) -> str:
    if contract.head == "lm" or contract.vocabulary:
        return "charlm"
    if contract.head.startswith("classify"):
        return "classify"
    if contract.task == "forecast" or contract.head == "regress":
        return "forecast"
    return "generic"


def signal_for(contract, data_path=None, steps: int = 600) -> dict:
    """What the page streams: frames (or token ids), where the state resets, in words."""
    from edgernn.tasks import get_task
    from edgernn.tasks.resolve import data_for_contract

    kind = _kind(contract)
    names = contract.dataset.feature_names if contract.dataset else None
    if contract.task or data_path is not None:
        builtin = data_path is None and (contract.dataset is None or
                                         contract.dataset.kind == "builtin")
        task = get_task(contract.task) if contract.task else None
        data = None if builtin else data_for_contract(contract, data_path, stage="the web page",
                                                      model="the model")
        if task is None:
            raise ConfigError("the model names no task, so --data cannot be read for it; "
                              "leave --data out to stream noise in the data's units")
        segments, lengths = task.drift_input(data, steps)
        description = task.drift_description(data)
    else:
        width = contract.inputs[0].shape[-1]
        pre = contract.preprocessing
        rng = np.random.default_rng(0)
        noise = rng.normal(size=(1, steps, width))
        segments, lengths = (pre.invert(noise) if pre else noise), None
        description = "noise in the data's units (the model names no task)"
    frames, resets = [], []
    for k, segment in enumerate(segments):
        n = segment.shape[0] if lengths is None else int(lengths[k])
        if len(frames) >= steps:
            break
        resets.append(len(frames))
        frames.extend(segment[:n])
    frames = np.asarray(frames[:steps])
    listed = ([int(v) for v in frames] if frames.dtype.kind in "iu"
              else np.round(frames.astype(np.float64), 5).tolist())
    return {"kind": kind, "task": contract.task, "description": description,
            "frames": listed, "resets": resets, "feature_names": names,
            "rate": 100 if kind != "charlm" else 20}


def write_page(model_path, out_dir, *, data_path=None, steps: int = 600, ort=None,
               force: bool = False) -> Written:
    """Write the page folder for ``model_path`` (an edgernn step graph). The folder is written
    whole and swapped in at once; one that already holds files is replaced only with
    ``force``."""
    from edgernn.files import atomic_folder, holds_files
    from edgernn.runtime import load
    from edgernn.runtime.seq2seq import Seq2SeqModel

    if steps < 1:
        raise ConfigError("--steps must be at least 1")
    if holds_files(out_dir) and not force:
        raise ConfigError(f"{out_dir} already holds files (another page or model?); pass "
                          f"--force to replace the folder whole, or choose an empty or new one")
    model = load(model_path)
    if isinstance(model, Seq2SeqModel):
        return _write_seq2seq_page(model, Path(out_dir), data_path, ort)
    contract = model.contract
    if model.inferred:
        raise ConfigError(f"{model_path} has no edgernn contract; the web runtime reads the "
                          f"states, normalisation and labels from it. Export the model with "
                          f"edgernn export")
    if contract.graph == "sequence" and contract.tokenizer is not None:
        return _write_whole_text_page(model_path, contract, Path(out_dir), data_path, ort)
    if contract.graph not in ("step", "chunk"):
        raise ConfigError(f"{model_path} is a '{contract.graph}' graph; the page streams its "
                          f"state from call to call: export a step or chunk graph (edgernn "
                          f"export --graph step)")
    bad = [s.name for s in contract.states if s.dtype != "float32"]
    if bad:
        raise ConfigError(f"state {bad[0]} is not float32; the web runtime keeps float32 state "
                          f"(quantize with --mode dynamic or static, not fp16)")
    signal = signal_for(contract, data_path, steps)
    ort_dir = find_ort(ort)
    out = Path(out_dir)
    with atomic_folder(out) as new:
        _write_runtime(new, ort_dir)
        (new / "model.onnx").write_bytes(_portable(Path(model_path).read_bytes()))
        (new / "signal.json").write_text(json.dumps(signal))
    return Written(out, signal["kind"], len(signal["frames"]), signal["description"],
                   str(ort_dir) if ort_dir else CDN)


def _write_seq2seq_page(pair, out: Path, data_path, ort) -> Written:
    """A page with a text box decoding with the pair (both files beside it), and examples: the
    held-out sources of the data it was trained on when they can be had."""
    from edgernn.exporters.quant.seq2seq import held_out

    return _text_box_page(
        out, "seq2seq", lambda: (held_out(pair, data_path)[0], "held-out inputs of "
                                 f"{pair.contract.dataset.describe()}"), "type an input",
        {"model.onnx": pair.encoder.source, pair.spec.partner: pair.decoder.source},
        data_path, ort)


def _write_whole_text_page(model_path, contract, out: Path, data_path, ort) -> Written:
    """A page with a text box for a classifier that reads whole texts (bidirectional), and
    examples: held-out texts of the file it was trained on when they can be had."""
    from edgernn.tasks.text import held_out_texts

    return _text_box_page(
        out, "text", lambda: (held_out_texts(contract.dataset, data_path), "held-out texts of "
                              f"{contract.dataset.describe()}"), "type a text",
        {"model.onnx": model_path}, data_path, ort)


def _text_box_page(out: Path, kind: str, held, fallback: str, files: dict, data_path,
                   ort) -> Written:
    """A page whose input is typed (``kind`` seq2seq or text), with up to 12 examples from
    ``held()`` (examples, description) when they can be had, and ``files`` (name in the folder
    -> path) written portable beside the runtime."""
    from edgernn.errors import EdgeRNNError
    from edgernn.files import atomic_folder

    try:
        examples, description = held()
        examples = examples[:12]
    except EdgeRNNError:
        if data_path is not None:
            raise
        examples, description = [], fallback
    signal = {"kind": kind, "description": description, "examples": examples,
              "frames": [], "resets": []}
    ort_dir = find_ort(ort)
    with atomic_folder(out) as new:
        _write_runtime(new, ort_dir)
        for name, path in files.items():
            (new / name).write_bytes(_portable(Path(path).read_bytes()))
        (new / "signal.json").write_text(json.dumps(signal))
    return Written(out, kind, len(examples), description, str(ort_dir) if ort_dir else CDN)


def _write_runtime(folder: Path, ort_dir: Path | None) -> None:
    """The page, the JavaScript runtime and onnxruntime-web's build (or the CDN's) into
    ``folder``."""
    for name in RUNTIME + PAGE:
        text = (WEB / name).read_text()
        if name == "index.html" and ort_dir is None:
            text = text.replace(LOCAL, CDN)
        (folder / name).write_text(text)
    if ort_dir is not None:
        (folder / "ort").mkdir()
        for f in ORT_FILES:
            shutil.copyfile(ort_dir / f, folder / "ort" / f)


def _portable(data: bytes) -> bytes:
    """The file with the lowest IR version its opsets need: onnxruntime-web 1.30 reads IR 13 at
    most, and earlier exports were written as IR 14 (the weights, and so snapshots, are the
    same)."""
    try:
        import onnx

        from edgernn.exporters.graph import portable_ir
    except ImportError:                              # a device install: copy it as it is
        return data
    proto = onnx.load_from_string(data)
    before = proto.ir_version
    portable_ir(proto)
    return data if proto.ir_version == before else proto.SerializeToString()


class _Handler(SimpleHTTPRequestHandler):
    """Static files, with the headers that let onnxruntime-web use threads
    (cross-origin isolation) and the right type for modules and WebAssembly."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript",
                      ".js": "text/javascript", ".wasm": "application/wasm",
                      ".onnx": "application/octet-stream"}

    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, *args):          # quiet: the page reports its own errors
        pass


def serve_folder(folder, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """A static HTTP server for ``folder`` (not started: call serve_forever, in a thread)."""
    handler = functools.partial(_Handler, directory=str(folder))
    return ThreadingHTTPServer((host, port), handler)
