"""Quantization for every recurrent cell, behind a quality gate, on the model's own data.

``quantize(in_path, out_path, mode=...)`` makes the smaller artifact and refuses to hand over
one that drifted from its fp32 original:

- ``dynamic`` (default): row-independent int8 (:mod:`edgernn.exporters.quant.int8`): 8-bit weights,
  activations at their exact range where the cell bounds them, per row at run time elsewhere.
- ``static``: the same, with calibrated static ranges where ``dynamic`` works per row, drawn
  from (frame, state) points across the whole training split
  (:mod:`edgernn.exporters.quant.calibrate`).
- ``fp16``: half-precision weights for GPU providers.

Either int8 form gives every stream of a pool exactly what it gives that stream alone, and the
same answer on every CPU. The input is any fp32 step graph: fused ``LSTM``/``GRU``/``RNN``
operators are first written out as products from the file itself
(:mod:`edgernn.exporters.forms.lower`),
so no checkpoint is needed; one given is checked to hold the file's weights. The gate
(:mod:`edgernn.exporters.quant.gate`) and the calibration run on the data the model was trained on
(``data=FILE`` to name it; see :mod:`edgernn.tasks.resolve`).
"""

from __future__ import annotations

import functools

import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx

from edgernn.cells import family
from edgernn.choices import (CALIBRATION_FRAMES, QUANTIZE_INPUTS, QUANTIZE_MODES,
                             QUANTIZE_RECURRENT)
from edgernn.contract import DataRef, Quantization
from edgernn.errors import ConfigError, ExportError, ParityError
from edgernn.exporters.artifact import contract_in, embed_contract, read_proto
from edgernn.exporters.quant.gate import (Gate, QuantizeReport, evaluate, parity_entries,
                                         versus_torch)
from edgernn.exporters.quant import cells8
from edgernn.exporters.quant.int8 import needs_ranges, rewrite
from edgernn.exporters.forms.lower import flatten_states, lower
from edgernn.exporters.quant.qgraph import FUSED, coverage, fp16
from edgernn.files import atomic_write_bytes
from edgernn.progress import stage
from edgernn.runtime.metadata import contract_of, open_session
from edgernn.runtime.model import Model
from edgernn.tasks.base import apply_normalization

MODES, RECURRENT, INPUTS = QUANTIZE_MODES, QUANTIZE_RECURRENT, QUANTIZE_INPUTS

__all__ = ["Gate", "QuantizeReport", "quantize"]


def _load(data: bytes, source: str) -> Model:
    session = open_session(data)
    return Model(session, contract_of(session), "", source)


def _calibration(contract, data, calibration):
    """Sequences as the graph takes them, their split (lengths), and a reference naming them."""
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


def _ranges(base: onnx.ModelProto, names: list[str], feeds) -> dict[str, float]:
    """max |v| of each named activation over the calibration feeds, the fp32 graph running."""
    if not names:
        return {}
    probe = onnx.ModelProto.FromString(base.SerializeToString())
    have = {o.name for o in probe.graph.output}
    probe.graph.output.extend(onnx.helper.make_empty_tensor_value_info(n) for n in names
                              if n not in have)
    session = open_session(probe.SerializeToString())
    top = dict.fromkeys(names, 0.0)
    for feed in feeds.feeds:
        for name, value in zip(names, session.run(names, feed)):
            top[name] = max(top[name], float(np.abs(value).max(initial=0.0)))
    return {k: v for k, v in top.items() if v > 0}


def _check_weights(checkpoint, contract, in_path, example_input, state_layout):
    """A checkpoint (or module) given must hold the file's weights; returns its Source."""
    from edgernn.deps import require

    require("torch", "quantize --checkpoint (reading a checkpoint)")
    from edgernn.exporters.from_torch.source import resolve

    src = resolve(checkpoint, example_input, state_layout)
    src.check_weights_of(contract, in_path, "pass the checkpoint it was exported from, or none "
                                            "(quantize needs none)")
    return src


# why a model that hears gains little from int8 (docs/audio.md, benchmarks/vad_bench.py)
_HEARS = (". For a model that hears, int8 leaves the front end in fp32 and saves little: the "
          "cost of a one-hop call is mostly the call's own, which the chunk graph spreads over "
          "several hops")


def quantize(in_path, out_path=None, **options) -> QuantizeReport:
    """Quantize an edgernn step graph; write ``out_path`` only if it passes the gate (or
    ``force``). Options: see :func:`_quantize`."""
    with tempfile.TemporaryDirectory(prefix="edgernn-quant-") as tmp:
        return _quantize(in_path, out_path, Path(tmp), **options)


def _quantize(in_path, out_path, tmp: Path, *, mode: str = "dynamic", checkpoint=None,
              data=None, calibration=None, calibration_frames: int = CALIBRATION_FRAMES,
              inputs: str = "fp32", recurrent: str = "auto", gate: Gate | None = None,
              force: bool = False, seed: int = 0, measure_latency: bool = True,
              example_input=None, state_layout=None) -> QuantizeReport:
    """``data``: the data file to gate and calibrate on (default: the recorded training data);
    ``calibration``: an .npz of frames for a model that names no task. ``inputs``: the products
    that read the graph's input frames stay fp32 or go int8 too. ``recurrent``: the
    hidden-to-hidden products int8, kept fp32, or ``auto`` (int8, fp32 when the gate refuses).
    ``force`` writes the best failing attempt when every attempt fails the gate."""
    for name, value, choices in (("mode", mode, MODES), ("recurrent", recurrent, RECURRENT),
                                 ("inputs", inputs, INPUTS)):
        if value not in choices:
            raise ConfigError(f"{name} {value!r} is unknown; expected one of "
                              f"{', '.join(choices)}")
    gate = gate or Gate()
    in_path = Path(in_path)
    given = read_proto(in_path)
    contract = contract_in(given, str(in_path))
    if contract.seq2seq is not None:
        raise ConfigError(f"{in_path} is one graph of an encoder-decoder (seq2seq) model; "
                          f"quantize the pair with edgernn.exporters.quant.seq2seq."
                          f"quantize_pair (what 'edgernn quantize' does for such a file)")
    if contract.quantization is not None:
        raise ConfigError(f"{in_path} is already quantized ({contract.quantization.mode}); "
                          f"quantize the fp32 file")
    if contract.graph == "chunk" and mode != "fp16" or \
            contract.graph == "sequence" and mode == "static":
        raise ConfigError(f"{in_path} is a '{contract.graph}' graph; {mode} quantization works "
                          f"on step graphs (also: fp16 on chunk graphs, dynamic on sequence "
                          f"graphs); export one with --graph step"
                          f"{'' if contract.streamable else ', or use --mode dynamic'}"
                          f"{_HEARS if contract.audio and contract.graph == 'chunk' else ''}")
    from edgernn.tasks.resolve import data_for_contract

    dataset = data_for_contract(contract, data, stage="quantize", model=str(in_path))
    src = None
    if checkpoint is not None:
        src = _check_weights(checkpoint, contract, in_path, example_input, state_layout)
    cells = {}                              # each attempt's graph: one node per layer
    if contract.graph != "step":            # its operators as they are: see _whole_notes
        base, notes = given, _whole_notes(given, contract, mode)
    else:
        base, notes = lower(given)
        if mode != "fp16" and inputs == "fp32":
            cells = {r: _cells(given, r) for r in ("int8", "fp32")}
    if contract.graph == "step" and any(n.op_type in FUSED or cells8.is_step(n)
                                        for n in given.graph.node):
        notes.append("fused recurrent operators written out as matrix products, from the file")
        base, flat = flatten_states(base, contract)
        cells = {r: g and flatten_states(g, contract)[0] for r, g in cells.items()}
        contract = flat
    fp32 = _load(given.SerializeToString(), str(in_path))
    feeds = calib_ref = None
    if mode == "static" and needs_ranges(base, contract, inputs):
        from edgernn.exporters.quant.calibrate import Feeds

        x, split, ref = _calibration(contract, dataset, calibration)
        lowered = Model(open_session(base.SerializeToString()), contract, "", "lowered")
        feeds = Feeds(lowered, x, split, calibration_frames, seed)
        calib_ref = replace(ref, steps=feeds.points)
    attempts = {"auto": ["int8", "fp32"], "int8": ["int8"], "fp32": ["fp32"]}[recurrent]
    if contract.graph != "step":             # its recurrent products are in fused layers: fp32
        attempts = ["fp32"]
    cell = contract.model.get("cell") if contract.model else None
    if recurrent == "auto" and cell and not family(cell).int8_recurrent:
        attempts = ["fp32"]
        notes.append(f"{cell} cells keep their hidden-to-hidden products fp32 (--recurrent int8 "
                     f"to quantize them too): without gates a step's rounding feeds back whole")
    tried = []
    for attempt in (["fp16"] if mode == "fp16" else attempts):
        stage(f"quantize: {mode} with the recurrent products {attempt}")
        graph = cells.get(attempt) or base
        out_proto, cov = _convert(graph, contract, mode, inputs, attempt, fp32, feeds, calib_ref,
                                  tmp)
        q_contract = contract.with_changes(quantization=cov)
        embed_contract(out_proto, q_contract)
        data_bytes = out_proto.SerializeToString(deterministic=True)
        out_model = _load(data_bytes, "quantized")
        stage(f"quantize: gate over {gate.horizon if contract.streamable else 'whole'} "
              f"{'streamed steps' if contract.streamable else 'sequences'} and the test split")
        measured = evaluate(fp32, out_model, contract, gate, dataset, seed)
        report = QuantizeReport(mode=mode, path=None, source=str(in_path),
                                bytes_fp32=in_path.stat().st_size, bytes_out=len(data_bytes),
                                coverage=cov, recurrent=attempt, notes=notes, gate=gate,
                                attempt=attempt, **measured)
        tried.append((report, out_proto, q_contract, out_model))
        if report.passed:
            break
        notes.append(f"{attempt} recurrent products failed the gate: "
                     f"{'; '.join(report.failures())}")
    report, out_proto, q_contract, out_model = _best(tried)
    if measure_latency:
        report.latency_fp32_us, report.latency_out_us = _latency(fp32, out_model)
    if mode == "fp16" and "CUDAExecutionProvider" not in out_model.providers:
        report.notes.append(
            "CPU target: ONNX Runtime's CPU MatMul kernels are fp32, so the fp16 file runs with "
            f"Cast nodes around them: {report.size_ratio:.2f}x the size on disk, step "
            f"{report.latency_out_us or float('nan'):.0f} us vs fp32 "
            f"{report.latency_fp32_us or float('nan'):.0f} us here. Use fp16 on GPU providers")
    if mode == "fp16" and any(n.op_type in FUSED for n in base.graph.node):
        report.notes.append(
            f"fused recurrent operators keep fp32 weights (ONNX Runtime has no fp16 CPU kernels "
            f"for them): {report.coverage.mac_share_int8:.0%} of the multiply-accumulates are "
            f"fp16. A step graph (--graph step) has its recurrent products written out, so they "
            f"go fp16 too")
    if not report.passed:
        if not force:
            raise ParityError(_failure(report, len(tried)), report)
        report.notes.append(f"--force: wrote the {report.attempt} attempt, the best of "
                            f"{len(tried)} that failed the gate ({'; '.join(report.failures())})")
    if out_path is not None:
        # Every figure in the contract is measured on this file: the fp32 file's own parity
        # (vs torch, at fp32 rounding) does not carry over; this file's error vs PyTorch is
        # measured when the checkpoint is at hand.
        measured = parity_entries(report)
        if src is not None:
            stage("quantize: the quantized file against PyTorch on the same data")
            measured += versus_torch(src, out_model, contract, gate, dataset, seed)
        else:
            report.notes.append("error vs PyTorch not measured (no --checkpoint): the "
                                "contract records the error vs the fp32 file only")
        final = q_contract.with_changes(parity=measured)
        embed_contract(out_proto, final)
        atomic_write_bytes(out_path, out_proto.SerializeToString(deterministic=True))
        report.path = str(out_path)
    return report


def _convert(base, contract, mode, inputs, attempt, fp32, feeds, calib_ref, tmp: Path):
    """The quantized graph of one attempt, and its coverage for the contract."""
    if mode == "fp16":
        (tmp / "base.onnx").write_bytes(base.SerializeToString())
        fp16(tmp / "base.onnx", tmp / "fp16.onnx")
        out = onnx.load(tmp / "fp16.onnx")
        return out, coverage(base, out, mode, "", {})
    ranges = _ranges(base, needs_ranges(base, contract, inputs), feeds) if feeds else {}
    cells = any(cells8.is_cell(n) for n in base.graph.node)
    out, plan = rewrite(base, contract, mode=mode, inputs=inputs, recurrent=attempt,
                        ranges=ranges, dense=cells)
    if cells:
        cells8.functions(out, next((o.version for o in out.opset_import
                                    if o.domain in ("", "ai.onnx")), 17))
    if plan.weights_int8 == 0 and plan.embeddings_int8 == 0:
        raise ExportError(f"{mode} quantization found no product to make int8 ({plan.products} "
                          f"matrix products, all kept fp32); the result would be a silent "
                          f"no-op, so nothing was written")
    calibration = (f"{feeds.points} (frame, state) points from {feeds.sequences} sequences of "
                   f"{calib_ref.describe()}") if feeds else ""
    options = {"weights": "int8 symmetric, per output column (u8 around 128)",
               "activations": "8-bit (u8 around 128)",
               "inputs": inputs, "recurrent": attempt, "products": plan.kinds}
    layers = [n.op_type for n in out.graph.node if cells8.is_op(n)]
    if layers:
        options["kernels"] = (f"{len(layers)} {cells8.DOMAIN} nodes "
                              f"({', '.join(sorted(set(layers)))}): edgernn's kernel where the "
                              f"runtime registers it, else the plain-ONNX function in the file")
    if plan.embeddings_int8:
        options["embeddings"] = f"{plan.embeddings_int8} table elements int8, one scale a row"
    cov = Quantization(mode=mode, weight_tensors=sum(plan.kinds.values()),
                       weight_tensors_int8=sum(v for k, v in plan.kinds.items() if k != "fp32"),
                       mac_share_int8=plan.macs_int8 / max(plan.macs, 1),
                       calibration=calibration, options=options,
                       calibration_dataset=calib_ref if feeds else None)
    return out, cov


def _cells(given, recurrent: str):
    """The step graph with each covered layer as one ``ai.edgernn`` cell node, its
    hidden-to-hidden product in 8 bits or (``recurrent="fp32"``) in float, and the functions that
    define them; None when no layer is covered."""
    out, _ = lower(given, cell=functools.partial(cells8.write, recurrent=recurrent))
    if not any(cells8.is_cell(n) for n in out.graph.node):
        return None
    cells8.functions(out, next((o.version for o in out.opset_import
                                if o.domain in ("", "ai.onnx")), 17))
    return out


def _whole_notes(given, contract, mode: str) -> list[str]:
    """What stays fp32 in a chunk or sequence graph: its fused recurrent layers run over the
    whole input, and lowering them writes out one step (a step graph has them as products)."""
    fused = [n for n in given.graph.node if n.op_type in FUSED]
    if not fused or mode == "fp16":
        return []
    return [f"its {len(fused)} fused recurrent layer(s) stay fp32: they run over the whole "
            f"sequence{'' if contract.streamable else ' (both ways)'}; the embedding and the "
            f"other products are {mode} int8"]


def _best(tried):
    """The passing attempt, else the one with the smallest error that keeps the metric."""
    passing = [t for t in tried if t[0].passed]
    if passing:
        return passing[0]
    return min(tried, key=lambda t: (not t[0].metric_ok, t[0].error_p99))


def _failure(r: QuantizeReport, attempts: int) -> str:
    tried = f" ({attempts} attempts, the best shown)" if attempts > 1 else ""
    return (f"the {r.mode} model fails the quality gate{tried}: {'; '.join(r.failures())}. "
            f"Nothing was written. Try --recurrent fp32, --mode static with more calibration "
            f"frames, or --force to write the best attempt anyway")


def _latency(a: Model, b: Model, steps: int = 1500) -> tuple[float, float]:
    from edgernn.runtime import bench

    if not a.contract.streamable:
        return None, None
    sa, sb = a.stream(normalize=False), b.stream(normalize=False)
    frame = np.zeros(sa.frame_shape, a.input_dtype)
    times = bench.interleaved({"a": lambda: sa.step(frame), "b": lambda: sb.step(frame)}, steps,
                              rounds=5)
    return (bench.median_of_medians(times["a"]) / 1e3,
            bench.median_of_medians(times["b"]) / 1e3)
