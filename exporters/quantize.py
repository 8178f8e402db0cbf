"""Quantization for every recurrent cell, behind a quality gate, on the model's own data.

``quantize(in_path, out_path, mode=...)`` makes the smaller artifact and refuses to hand over
one that drifted from its fp32 original:

- ``dynamic``: int8 weights, activations quantized at run time (``quantize_dynamic``).
- ``static``: int8 weights and activations (QDQ), calibrated on (frame, state) pairs drawn from
  across the whole training split (:mod:`edgernn.exporters.calibrate`).
- ``fp16``: half-precision weights for GPU providers.

The gate (:mod:`edgernn.exporters.gate`) and the calibration run on the data the model was
trained on (``data=FILE`` to name it; see :mod:`edgernn.tasks.resolve`). ONNX Runtime's
quantizers skip fused ``GRU``/``RNN`` (and static skips ``LSTM``), so graphs with those
operators are re-exported from ``checkpoint`` (an edgernn checkpoint, or the user's own
``nn.Module``), which must hold the very weights of the file.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx

from edgernn.contract import DataRef
from edgernn.errors import ConfigError, ExportError, ParityError
from edgernn.exporters.artifact import contract_in, embed_contract, read_proto
from edgernn.exporters.gate import Gate, QuantizeReport, evaluate, parity_entries
from edgernn.exporters.qgraph import coverage, fp16, needs_reexport, recurrent_matmuls
from edgernn.files import atomic_write_bytes
from edgernn.progress import stage
from edgernn.runtime.metadata import contract_of, open_session
from edgernn.runtime.model import Model
from edgernn.tasks.base import apply_normalization

MODES = ("dynamic", "static", "fp16")
METHODS = ("minmax", "entropy", "percentile")
RECURRENT = ("auto", "int8", "fp32")
CALIBRATION_FRAMES = 1024

__all__ = ["Gate", "QuantizeReport", "quantize"]


@contextlib.contextmanager
def _quiet_quantizer():
    """ONNX Runtime's quantizer logs advice on the root logger at WARNING and prints its
    calibration progress with print(): keep stderr clean and stdout for results."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        root.setLevel(level)


def _dynamic(src: Path, dst: Path, exclude: list[str], per_channel: bool, reduce_range: bool):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=per_channel,
                     reduce_range=reduce_range, nodes_to_exclude=exclude,
                     op_types_to_quantize=["Gather", "Gemm", "LSTM", "MatMul"])


def _static(src: Path, dst: Path, exclude: list[str], per_channel: bool, reduce_range: bool,
            reader, method: str):
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    calib = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
             "percentile": CalibrationMethod.Percentile}[method]
    quantize_static(str(src), str(dst), reader, quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    per_channel=per_channel, reduce_range=reduce_range,
                    nodes_to_exclude=exclude, op_types_to_quantize=["Gemm", "MatMul"],
                    calibrate_method=calib)


def _load(data: bytes, source: str) -> Model:
    session = open_session(data)
    return Model(session, contract_of(session), "", source)


@dataclass
class _Source:
    """One fp32 graph to quantize from: the file given, or a re-export of the checkpoint."""

    path: Path
    proto: onnx.ModelProto
    contract: object
    model: Model
    named: Path                                # the graph with every node named


def _source(path: Path, tmp: Path, tag: str) -> _Source:
    proto = read_proto(path)
    contract = contract_in(proto, str(path))
    for i, node in enumerate(proto.graph.node):
        node.name = node.name or f"{node.op_type}_{i}"
    named = tmp / f"{tag}.named.onnx"
    onnx.save(proto, named)
    return _Source(path, proto, contract, _load(path.read_bytes(), str(path)), named)


def _calibration(contract, data, calibration, frames: int):
    """Normalised sequences, their split (lengths), and a reference naming them."""
    from edgernn.tasks.base import Split, file_sha256, read_npz

    if calibration is not None:
        x = read_npz(calibration, ("x",), "A calibration .npz holds 'x': frames shaped "
                                          "(N, T, features), in the data's own units.")["x"]
        split = Split(np.asarray(x, np.float32), np.zeros(len(x)))
        ref = DataRef("file", Path(calibration).name, path=str(calibration),
                      sha256=file_sha256(calibration), split="x", sequences=len(x),
                      steps=split.steps)
    elif data is not None:
        split, ref = data.part("train")
    else:
        raise ConfigError("static quantization needs calibration data: this model names no task "
                          "and records no data, so pass --data FILE (the format 'edgernn train' "
                          "takes) or --calibration FILE.npz (array 'x' of frames shaped (N, T, "
                          "features))")
    return apply_normalization(split.x, contract.preprocessing), split, ref


def _check_weights(checkpoint, contract, in_path, example_input, state_layout):
    """The checkpoint (or module) must hold the file's weights: else quantize would write the
    other model's weights under this file's contract."""
    from edgernn.exporters.source import resolve

    src = resolve(checkpoint, example_input, state_layout)
    mine, theirs = src.weights_sha256, contract.provenance.weights_sha256
    if theirs and mine != theirs:
        raise ConfigError(f"{getattr(checkpoint, 'name', checkpoint) if not isinstance(checkpoint, (str, Path)) else checkpoint} "
                          f"does not hold the weights of {in_path} (weights sha256 {mine[:12]}... "
                          f"vs {theirs[:12]}... in its contract); pass the checkpoint it was "
                          f"exported from")
    return src


def quantize(in_path, out_path=None, **options) -> QuantizeReport:
    """Quantize an edgernn artifact; write ``out_path`` only if it passes the gate (or force).
    Options: see :func:`_quantize`. Intermediate files live in a temporary folder that is
    removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="edgernn-quant-") as tmp:
        return _quantize(in_path, out_path, Path(tmp), **options)


def _quantize(in_path, out_path, tmp: Path, *, mode: str = "dynamic", checkpoint=None,
              data=None, calibration=None, calibration_frames: int = CALIBRATION_FRAMES,
              method: str = "minmax", per_channel: bool = False, reduce_range: bool = True,
              recurrent: str = "auto", gate: Gate | None = None, force: bool = False,
              seed: int = 0, measure_latency: bool = True, example_input=None,
              state_layout=None) -> QuantizeReport:
    """Quantize an edgernn artifact; write ``out_path`` only if it passes the gate (or force).

    ``data`` is the data file to gate and calibrate on (default: the recorded training data);
    ``calibration`` an .npz of frames for a model that names no task. Graphs whose fused
    operators ONNX Runtime cannot quantize are re-exported from ``checkpoint`` (a path, a
    Checkpoint or an ``nn.Module``, with ``example_input``/``state_layout`` for modules): as
    the compact step graph for full int8 (edgernn's networks), else the decomposed one.
    ``force`` writes the best failing attempt when every attempt fails the gate.
    """
    for name, value, choices in (("mode", mode, MODES), ("method", method, METHODS),
                                 ("recurrent", recurrent, RECURRENT)):
        if value not in choices:
            raise ConfigError(f"{name} {value!r} is unknown; expected one of "
                              f"{', '.join(choices)}")
    gate = gate or Gate()
    in_path = Path(in_path)
    given = read_proto(in_path)
    contract = contract_in(given, str(in_path))
    if contract.quantization is not None:
        raise ConfigError(f"{in_path} is already quantized ({contract.quantization.mode}); "
                          f"quantize the fp32 file")
    from edgernn.tasks.resolve import data_for_contract

    dataset = data_for_contract(contract, data, stage="quantize", model=str(in_path))
    fused = needs_reexport(given, mode)
    if fused and checkpoint is None:
        raise ConfigError(f"ONNX Runtime's {mode} quantizer leaves fused {', '.join(fused)} "
                          f"operators in fp32, so this would be a silent no-op. Export the "
                          f"decomposed form (edgernn export CKPT --ops decomposed) or pass "
                          f"--checkpoint CKPT to let quantize re-export it")
    src_module = None if checkpoint is None else _check_weights(
        checkpoint, contract, in_path, example_input, state_layout)
    notes: list[str] = []
    sources: dict[str, _Source] = {}

    def source_for(attempt: str) -> _Source:
        form = "given"
        if fused:
            form = "compact" if attempt != "fp32" and src_module.config is not None \
                else "decomposed"
        if form not in sources:
            path = in_path
            if fused:
                from edgernn.exporters.export import export

                path = export(checkpoint, tmp / f"{form}.onnx", ops=form, graph="step",
                              example_input=example_input, state_layout=state_layout).path
                notes.append(f"re-exported from {src_module.name} as the {form} step graph: "
                             f"ONNX Runtime's {mode} tools do not convert fused "
                             f"{', '.join(fused)} operators")
            sources[form] = _source(path, tmp, form)
        return sources[form]

    options = {"reduce_range": reduce_range, "per_channel": per_channel}
    if mode == "static":
        options.update(method=method, calibration_frames=calibration_frames)
    attempts = {"auto": ["int8", "fp32"], "int8": ["int8"], "fp32": ["fp32"]}[recurrent]
    if mode == "fp16":
        attempts = ["fp16"]
    tried: list[tuple[QuantizeReport, onnx.ModelProto, object, _Source]] = []
    for attempt in attempts:
        src = source_for(attempt)
        exclude = recurrent_matmuls(src.proto, [s.input for s in src.contract.states]) \
            if attempt == "fp32" else []
        if attempt == "fp32" and not exclude:
            notes.append("no hidden-to-hidden product could be kept apart in this graph "
                         "(export it with --ops decomposed); --recurrent fp32 changes nothing")
        calib_name, calib_ref = "", None
        dst = tmp / f"{attempt}.onnx"
        stage(f"quantize: {mode} attempt with the recurrent path {attempt}")
        with _quiet_quantizer():
            if mode == "dynamic":
                _dynamic(src.named, dst, exclude, per_channel, reduce_range)
            elif mode == "static":
                from edgernn.exporters.calibrate import Feeds

                x, split, ref = _calibration(src.contract, dataset, calibration, calibration_frames)
                feeds = Feeds(src.model, x, split, calibration_frames, seed)
                calib_ref = replace(ref, steps=feeds.points)
                calib_name = (f"{feeds.points} (frame, state) points from {feeds.sequences} "
                              f"sequences of {ref.describe()}")
                _static(src.named, dst, exclude, per_channel, reduce_range, feeds, method)
            else:
                fp16(src.named, dst)
        out_proto = onnx.load(dst)
        cov = coverage(src.proto, out_proto, mode, calib_name,
                       {**options, "recurrent": "fp32" if exclude else "int8"}
                       if mode != "fp16" else {})
        cov = replace(cov, calibration_dataset=calib_ref)
        if mode != "fp16" and cov.weight_tensors_int8 == 0:
            raise ExportError(f"{mode} quantization converted no weight matrix to int8 (found "
                              f"{cov.weight_tensors}); the result would be a silent no-op, so "
                              f"nothing was written")
        q_contract = src.contract.with_changes(quantization=cov)
        embed_contract(out_proto, q_contract)
        data_bytes = out_proto.SerializeToString(deterministic=True)
        out_model = _load(data_bytes, "quantized")
        stage(f"quantize: gate over {gate.horizon} streamed steps and the test split")
        measured = evaluate(src.model, out_model, src.contract, gate, dataset, seed)
        origin = str(in_path) if src.path == in_path else \
            f"{src.path.stem} step graph re-exported from {src_module.name}"
        report = QuantizeReport(mode=mode, path=None, source=origin,
                                bytes_fp32=in_path.stat().st_size, bytes_out=len(data_bytes),
                                coverage=cov, recurrent="fp32" if exclude else (
                                    "fp16" if mode == "fp16" else "int8"),
                                notes=notes, gate=gate, attempt=attempt, **measured)
        tried.append((report, out_proto, q_contract, out_model))
        if report.passed:
            break
        notes.append(f"{attempt} recurrent path failed the gate: {'; '.join(report.failures())}")
    report, out_proto, q_contract, out_model = _best(tried)
    if measure_latency:
        report.latency_fp32_us, report.latency_out_us = _latency(
            _load(given.SerializeToString(), str(in_path)), out_model)
    if mode == "fp16" and "CUDAExecutionProvider" not in out_model.providers:
        report.notes.append(
            "CPU target: ONNX Runtime's CPU recurrent and MatMul kernels are fp32, so the fp16 "
            "file runs with Cast nodes around them: half the size on disk, no speed-up (step "
            f"{report.latency_out_us or float('nan'):.0f} us vs fp32 "
            f"{report.latency_fp32_us or float('nan'):.0f} us here). Use fp16 on GPU providers")
    if not report.passed:
        if not force:
            raise ParityError(_failure(report, len(tried)), report)
        report.notes.append(f"--force: wrote the {report.attempt} attempt, the best of "
                            f"{len(tried)} that failed the gate ({'; '.join(report.failures())})")
    if out_path is not None:
        final = q_contract.with_changes(parity=list(q_contract.parity) + parity_entries(report))
        embed_contract(out_proto, final)
        atomic_write_bytes(out_path, out_proto.SerializeToString(deterministic=True))
        report.path = str(out_path)
    return report


def _best(tried):
    """The passing attempt, else the one with the smallest error that keeps the metric."""
    passing = [t for t in tried if t[0].passed]
    if passing:
        return passing[0]
    return min(tried, key=lambda t: (not t[0].metric_ok, t[0].error_p99))


def _failure(r: QuantizeReport, attempts: int) -> str:
    tried = f" ({attempts} attempts, the best shown)" if attempts > 1 else ""
    return (f"the {r.mode} model fails the quality gate{tried}: {'; '.join(r.failures())}. "
            f"Nothing was written. Try --recurrent fp32, --per-channel, static calibration on "
            f"more frames, or --force to write the best attempt anyway")


def _latency(a: Model, b: Model, steps: int = 1500) -> tuple[float, float]:
    from edgernn.runtime import bench

    if not a.contract.streamable:
        return None, None
    sa, sb = a.stream(normalize=False), b.stream(normalize=False)
    frame = np.zeros(sa.frame_shape, a.input_dtype)
    times = bench.interleaved({"a": lambda: sa.step(frame), "b": lambda: sb.step(frame)}, steps,
                              rounds=5)
    return float(np.median(times["a"]) / 1e3), float(np.median(times["b"]) / 1e3)
