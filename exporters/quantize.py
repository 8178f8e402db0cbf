"""Quantization for every recurrent cell, behind a quality gate.

``quantize(in_path, out_path, mode=...)`` makes the smaller artifact and refuses to hand over
one that drifted from its fp32 original:

- ``dynamic``: int8 weights, activations quantized at run time (``quantize_dynamic``).
- ``static``: int8 weights and activations (QDQ), calibrated on frames streamed through the
  fp32 model so that state inputs are seen as a device sees them.
- ``fp16``: half-precision weights for GPU providers.

ONNX Runtime's quantizers skip fused ``GRU``/``RNN`` (and static skips ``LSTM``), so graphs with
those operators are re-exported in the decomposed form from the checkpoint first. Defaults
are portable: ``reduce_range=True`` gives the same int8 answer on x86 with and without VNNI and
on ARM64 (AVX2 without VNNI saturates full-range int8 products; see docs/quantization.md).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx

from edgernn.contract import Parity, Quantization
from edgernn.errors import ConfigError, ExportError, ParityError
from edgernn.exporters.artifact import contract_in, embed_contract, read_proto
from edgernn.exporters.parity import drive
from edgernn.exporters.validate import TASK_WINDOW
from edgernn.files import atomic_write_bytes
from edgernn.runtime.metadata import open_session
from edgernn.runtime.model import Model
from edgernn.tasks.base import apply_normalization

MODES = ("dynamic", "static", "fp16")
METHODS = ("minmax", "entropy", "percentile")
RECURRENT = ("auto", "int8", "fp32")
_FUSED = {"LSTM", "GRU", "RNN"}
_MATMUL = {"MatMul", "Gemm"}
_PASS_THROUGH = {"Gather", "Squeeze", "Unsqueeze", "Slice", "Reshape", "Transpose", "Split",
                 "Identity", "Cast"}


@dataclass(frozen=True)
class Gate:
    """What a quantized artifact must keep, measured against its fp32 original."""

    horizon: int = 10_000        # streamed steps for the drift check
    max_error: float = 0.25      # 99th percentile of per-step |q - fp32|, in fp32 std units
    growth: float = 3.0          # last-tenth mean error <= growth x first-tenth (no divergence)
    check_metric: bool = True    # the task metric within the task's tolerance


@dataclass
class QuantizeReport:
    mode: str
    path: str | None
    source: str
    bytes_fp32: int
    bytes_out: int
    coverage: Quantization
    recurrent: str                     # "int8" or "fp32": the hidden-to-hidden products
    worst_error: float = float("nan")  # max per-step |q - fp32|, normalised by the fp32 std
    error_p99: float = float("nan")    # its 99th percentile over the stream: what the gate uses
    drift_first: float = float("nan")
    drift_last: float = float("nan")
    metric: str = ""
    metric_fp32: float | None = None
    metric_out: float | None = None
    metric_ok: bool = True
    latency_fp32_us: float | None = None
    latency_out_us: float | None = None
    notes: list[str] = field(default_factory=list)
    gate: Gate = field(default_factory=Gate)

    @property
    def size_ratio(self) -> float:
        return self.bytes_out / self.bytes_fp32

    @property
    def passed(self) -> bool:
        g = self.gate
        return (np.isfinite(self.worst_error) and self.error_p99 <= g.max_error
                and self.drift_last <= g.growth * self.drift_first + 1e-6 and self.metric_ok)

    def to_dict(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k not in ("coverage", "gate")}
        out.update(coverage=asdict(self.coverage), gate=asdict(self.gate), passed=self.passed,
                   size_ratio=self.size_ratio)
        return out


# ---------------------------------------------------------------------------- graph facts

def _weights(proto) -> dict[str, int]:
    """Float weight matrices of matrix products and recurrent ops: name -> elements."""
    inits = {t.name: t for t in proto.graph.initializer}
    out = {}
    for node in proto.graph.node:
        if node.op_type in _MATMUL | _FUSED:
            for name in node.input[1:3] if node.op_type in _FUSED else node.input[1:2]:
                t = inits.get(name)
                if t is not None and len(t.dims) >= 2 and t.data_type == onnx.TensorProto.FLOAT:
                    out[name] = int(np.prod(t.dims))
    return out


def coverage(fp32, quantized, mode: str, calibration: str, options: dict) -> Quantization:
    """How many weight matrices, and what share of multiply-accumulates, became int8."""
    before = _weights(fp32)
    still_float = set(_weights(quantized))
    converted = {k: v for k, v in before.items() if k not in still_float}
    total = sum(before.values()) or 1
    return Quantization(mode=mode, weight_tensors=len(before), weight_tensors_int8=len(converted),
                        mac_share_int8=sum(converted.values()) / total, calibration=calibration,
                        options=options)


def recurrent_matmuls(proto, state_inputs: list[str]) -> list[str]:
    """Matrix-product nodes fed (through shape-only ops) by a state input: h @ W_hh."""
    reached = set(state_inputs)
    changed = True
    while changed:
        changed = False
        for node in proto.graph.node:
            if node.op_type in _PASS_THROUGH and node.input and node.input[0] in reached:
                new = set(node.output) - reached
                if new:
                    reached |= new
                    changed = True
    return [n.name for n in proto.graph.node if n.op_type in _MATMUL and n.input[0] in reached]


# ---------------------------------------------------------------------------- quantizers

def _ensure_names(proto) -> None:
    for i, node in enumerate(proto.graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{i}"


@contextlib.contextmanager
def _quiet_quantizer():
    """ONNX Runtime's quantizer logs advice on the root logger at WARNING; keep stderr clean."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _dynamic(src: Path, dst: Path, exclude: list[str], per_channel: bool, reduce_range: bool):
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=per_channel,
                     reduce_range=reduce_range, nodes_to_exclude=exclude,
                     op_types_to_quantize=sorted(_MATMUL | {"LSTM", "Gather"}))


class _Frames:
    """Calibration feeds: every (frame, state) pair the fp32 model sees while streaming."""

    def __init__(self, model: Model, sequences: np.ndarray, limit: int = 512):
        self.feeds = []
        states = model.initial_state(sequences.shape[0])
        for t in range(sequences.shape[1]):
            x = np.ascontiguousarray(sequences[:, t])
            self.feeds.append({model.input.name: x, **{s.input: states[s.name]
                                                        for s in model.states}})
            _, states = model.run(x, states)
        stride = max(1, len(self.feeds) // limit)
        self.feeds = self.feeds[::stride]
        self._it = iter(self.feeds)

    def get_next(self):
        return next(self._it, None)

    def rewind(self):
        self._it = iter(self.feeds)


def _static(src: Path, dst: Path, exclude: list[str], per_channel: bool, reduce_range: bool,
            reader, method: str):
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    calib = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
             "percentile": CalibrationMethod.Percentile}[method]
    quantize_static(str(src), str(dst), reader, quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    per_channel=per_channel, reduce_range=reduce_range,
                    nodes_to_exclude=exclude, op_types_to_quantize=sorted(_MATMUL),
                    calibrate_method=calib)


def _fp16(src: Path, dst: Path):
    from onnxruntime.transformers.float16 import convert_float_to_float16

    # Recurrent operators stay fp32: ONNX Runtime has no fp16 CPU kernels for them (an fp16
    # LSTM crashed the CPU session here), and their weights are the state-carrying path.
    model = convert_float_to_float16(onnx.load(src), keep_io_types=True,
                                     op_block_list=sorted(_FUSED))
    _sort_nodes(model.graph)             # the converter appends its input casts at the end
    onnx.save(model, dst)


def _sort_nodes(graph) -> None:
    """Topological order, as the ONNX checker requires."""
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        progress = [n for n in pending if all(i in ready for i in n.input)]
        if not progress:
            raise ExportError("the converted graph has a cycle or a missing input")
        for n in progress:
            ordered.append(n)
            ready.update(n.output)
        pending = [n for n in pending if n not in progress]
    del graph.node[:]
    graph.node.extend(ordered)


# ---------------------------------------------------------------------------- the gate

def _load(data: bytes, source: str) -> Model:
    session = open_session(data)
    from edgernn.runtime.metadata import contract_of

    contract = contract_of(session)
    return Model(session, contract, "", source)


def _task(contract):
    if not contract.task:
        return None
    from edgernn.tasks import get_task

    return get_task(contract.task)


def _inputs(contract, model: Model, batch: int, steps: int, rng) -> np.ndarray:
    if model.input_dtype == np.int64:
        high = int(contract.model.get("input_size", 2)) if contract.model else 2
        return rng.integers(0, high, (batch, steps)).astype(np.int64)
    frame = [d for d in model.input.shape[2 if model.graph != "step" else 1:]]
    return rng.standard_normal((batch, steps, *frame)).astype(np.float32)


def evaluate(fp32: Model, out: Model, contract, gate: Gate, seed: int = 0) -> dict:
    """Worst-case error, drift and task metric of ``out`` against ``fp32``."""
    rng = np.random.default_rng(seed)
    task = _task(contract)
    if fp32.contract.streamable:
        x = (apply_normalization(task.drift_input(gate.horizon, seed), contract.preprocessing)
             if task else _inputs(contract, fp32, 1, gate.horizon, rng))
    else:
        x = _inputs(contract, fp32, 8, 64, rng)
    want, _ = drive(fp32, x)
    got, _ = drive(out, x)
    scale = float(np.std(want)) or 1.0
    err = np.abs(got.astype(np.float64) - want).reshape(
        want.shape[0] * want.shape[1] if want.ndim >= 3 else want.shape[0], -1)   # per step
    err = err.max(axis=1) / scale
    tenth = max(1, err.size // 10)
    result = {"worst_error": float(err.max()), "error_p99": float(np.percentile(err, 99)),
              "drift_first": float(err[:tenth].mean()),
              "drift_last": float(err[-tenth:].mean())}
    if task is not None and gate.check_metric:
        sub = task.generate(seed=seed + 1, size=0.1).test.head(*TASK_WINDOW)
        xs = apply_normalization(sub.x, contract.preprocessing)
        a = task.score(drive(fp32, xs)[0], sub, contract.postprocessing)
        b = task.score(drive(out, xs)[0], sub, contract.postprocessing)
        result.update(metric=task.metric, metric_fp32=a, metric_out=b,
                      metric_ok=task.metric_close(a, b))
    return result


# ---------------------------------------------------------------------------- the command

def _needs_decomposed(proto, mode: str) -> list[str]:
    fused = sorted({n.op_type for n in proto.graph.node if n.op_type in _FUSED})
    if mode == "dynamic":
        return [op for op in fused if op != "LSTM"]
    # static: the QDQ quantizer has no recurrent operators; fp16: ONNX Runtime's CPU session
    # crashed on converted fused LSTM graphs here, so fp16 uses the decomposed form too.
    return fused


def _calibration(contract, fp32: Model, calibration, seed: int):
    """Sequences (N, T, ...) of normalised frames, and a name for the contract."""
    from edgernn.tasks import get_task

    if calibration is None or calibration in ("model", "task"):
        task = _task(contract)
        if task is None:
            raise ConfigError("static quantization needs calibration data: this model names no "
                              "task, so pass --calibration FILE.npz (array 'x' of frames shaped "
                              "(N, T, features)) or a built-in task name")
        x, name = task.generate(seed=seed, size=0.1).val.x, f"task:{task.name} validation data"
    elif str(calibration).endswith(".npz"):
        from edgernn.tasks.base import read_npz

        x = read_npz(calibration, ("x",), "A calibration .npz holds 'x': frames shaped "
                                          "(N, T, features), in the data's own units.")["x"]
        name = f"file:{Path(calibration).name}"
    else:
        x, name = get_task(calibration).generate(seed=seed, size=0.1).val.x, \
            f"task:{calibration}"
    return apply_normalization(np.asarray(x)[:16, :64], contract.preprocessing), name


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
    _ensure_names(proto)
    named = tmp / f"{tag}.named.onnx"
    onnx.save(proto, named)
    return _Source(path, proto, contract, _load(path.read_bytes(), str(path)), named)


def quantize(in_path, out_path=None, **options) -> QuantizeReport:
    """Quantize an edgernn artifact; write ``out_path`` only if it passes the gate (or force).
    Options: see :func:`_quantize`. Intermediate files live in a temporary folder that is
    removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="edgernn-quant-") as tmp:
        return _quantize(in_path, out_path, Path(tmp), **options)


def _quantize(in_path, out_path, tmp: Path, *, mode: str = "dynamic", checkpoint=None,
              calibration=None, method: str = "minmax", per_channel: bool = False,
              reduce_range: bool = True, recurrent: str = "auto", gate: Gate | None = None,
              force: bool = False, seed: int = 0, measure_latency: bool = True
              ) -> QuantizeReport:
    """Quantize an edgernn artifact; write ``out_path`` only if it passes the gate (or force).

    Graphs whose fused operators ONNX Runtime cannot quantize are re-exported from
    ``checkpoint``: as the compact step graph for full int8 (fewest nodes, one product per
    layer), as the decomposed one where the hidden-to-hidden products must stay fp32.
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
    fused = _needs_decomposed(given, mode)
    if fused and checkpoint is None:
        raise ConfigError(f"ONNX Runtime's {mode} quantizer leaves fused {', '.join(fused)} "
                          f"operators in fp32, so this would be a silent no-op. Export the "
                          f"decomposed form (edgernn export CKPT --ops decomposed) or pass "
                          f"--checkpoint CKPT to let quantize re-export it")
    notes: list[str] = []
    sources: dict[str, _Source] = {}

    def source_for(attempt: str) -> _Source:
        form = ("compact" if attempt != "fp32" else "decomposed") if fused else "given"
        if form not in sources:
            path = in_path
            if fused:
                from edgernn.exporters.export import export

                path = export(checkpoint, tmp / f"{form}.onnx", ops=form, graph="step").path
                notes.append(f"re-exported from {checkpoint} as the {form} step graph: ONNX "
                             f"Runtime's {mode} tools do not convert fused "
                             f"{', '.join(fused)} operators")
            sources[form] = _source(path, tmp, form)
        return sources[form]

    options = {"reduce_range": reduce_range, "per_channel": per_channel}
    if mode == "static":
        options["method"] = method
    attempts = {"auto": ["int8", "fp32"], "int8": ["int8"], "fp32": ["fp32"]}[recurrent]
    if mode == "fp16":
        attempts = ["fp16"]
    report = None
    for attempt in attempts:
        src = source_for(attempt)
        exclude = recurrent_matmuls(src.proto, [s.input for s in src.contract.states]) \
            if attempt == "fp32" else []
        if attempt == "fp32" and not exclude:
            notes.append("no hidden-to-hidden product could be kept apart in this graph "
                         "(export it with --ops decomposed); --recurrent fp32 changes nothing")
        calib_name = ""
        dst = tmp / f"{attempt}.onnx"
        with _quiet_quantizer():
            if mode == "dynamic":
                _dynamic(src.named, dst, exclude, per_channel, reduce_range)
            elif mode == "static":
                seqs, calib_name = _calibration(src.contract, src.model, calibration, seed)
                _static(src.named, dst, exclude, per_channel, reduce_range,
                        _Frames(src.model, seqs), method)
            else:
                _fp16(src.named, dst)
        out_proto = onnx.load(dst)
        cov = coverage(src.proto, out_proto, mode, calib_name,
                       {**options, "recurrent": "fp32" if exclude else "int8"}
                       if mode != "fp16" else {})
        if mode != "fp16" and cov.weight_tensors_int8 == 0:
            raise ExportError(f"{mode} quantization converted no weight matrix to int8 (found "
                              f"{cov.weight_tensors}); the result would be a silent no-op, so "
                              f"nothing was written")
        q_contract = src.contract.with_changes(quantization=cov)
        embed_contract(out_proto, q_contract)
        data = out_proto.SerializeToString(deterministic=True)
        out_model = _load(data, "quantized")
        measured = evaluate(src.model, out_model, src.contract, gate, seed)
        origin = str(in_path) if src.path == in_path else \
            f"{src.path.stem} step graph re-exported from {checkpoint}"
        report = QuantizeReport(mode=mode, path=None, source=origin,
                                bytes_fp32=in_path.stat().st_size, bytes_out=len(data),
                                coverage=cov, recurrent="fp32" if exclude else (
                                    "fp16" if mode == "fp16" else "int8"),
                                notes=notes, gate=gate, **measured)
        if report.passed:
            break
        notes.append(f"{attempt} recurrent path failed the gate (p99 error "
                     f"{report.error_p99:.3g}, metric ok: {report.metric_ok})")
    if measure_latency:
        report.latency_fp32_us, report.latency_out_us = _latency(_load(given.SerializeToString(),
                                                                       str(in_path)), out_model)
    if mode == "fp16" and "CUDAExecutionProvider" not in src.model.providers:
        report.notes.append(
            "CPU target: ONNX Runtime's CPU recurrent and MatMul kernels are fp32, so the fp16 "
            "file runs with Cast nodes around them: half the size on disk, no speed-up (step "
            f"{report.latency_out_us or float('nan'):.0f} us vs fp32 "
            f"{report.latency_fp32_us or float('nan'):.0f} us here). Use fp16 on GPU providers")
    if not report.passed and not force:
        raise ParityError(_failure(report), report)
    if out_path is not None:
        final = q_contract.with_changes(parity=list(src.contract.parity) + _parity(report))
        embed_contract(out_proto, final)
        atomic_write_bytes(out_path, out_proto.SerializeToString(deterministic=True))
        report.path = str(out_path)
    return report


def _failure(r: QuantizeReport) -> str:
    parts = []
    if not np.isfinite(r.worst_error) or r.error_p99 > r.gate.max_error:
        parts.append(f"p99 error {r.error_p99:.3g} x fp32 std > {r.gate.max_error} (worst "
                     f"{r.worst_error:.3g})")
    if r.drift_last > r.gate.growth * r.drift_first + 1e-6:
        parts.append(f"error grows over the stream ({r.drift_first:.3g} -> {r.drift_last:.3g})")
    if not r.metric_ok:
        parts.append(f"{r.metric} {r.metric_out:.4f} vs fp32 {r.metric_fp32:.4f}")
    return (f"the {r.mode} model fails the quality gate: {'; '.join(parts)}. Nothing was "
            f"written. Try other calibration data, --recurrent fp32, --per-channel, or --force "
            f"to write it anyway")


def _parity(r: QuantizeReport) -> list[Parity]:
    entries = [Parity("fp32", "p99_error_over_std", r.gate.max_error, r.error_p99,
                      f"{r.gate.horizon} streamed steps",
                      {"worst": r.worst_error, "drift_first": r.drift_first,
                       "drift_last": r.drift_last})]
    if r.metric_fp32 is not None:
        entries.append(Parity("fp32", f"task_{r.metric}_delta", 0.0,
                              abs(r.metric_out - r.metric_fp32), "task test data",
                              {"fp32": r.metric_fp32, "quantized": r.metric_out}))
    return entries


def _latency(a: Model, b: Model, steps: int = 1500) -> tuple[float, float]:
    from edgernn.runtime import bench

    if not a.contract.streamable:
        return None, None
    sa, sb = a.stream(normalize=False), b.stream(normalize=False)
    frame = _inputs(a.contract, a, 1, 1, np.random.default_rng(0))[0, 0]
    times = bench.interleaved({"a": lambda: sa.step(frame), "b": lambda: sb.step(frame)}, steps,
                              rounds=5)
    return float(np.median(times["a"]) / 1e3), float(np.median(times["b"]) / 1e3)
