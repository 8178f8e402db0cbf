"""The quality gate between an fp32 artifact and its quantized form, on the model's own data.

Three things must hold (each reported, each recorded): the per-step output error over a long
stream stays small (99th percentile in units of the fp32 output's std), it does not grow over
the stream, and the task metric on the whole test split is not worse beyond a bound that
knows the test size (:mod:`edgernn.tasks.compare`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from edgernn.choices import GATE_HORIZON, GATE_MAX_ERROR
from edgernn.contract import DataRef, Parity, Quantization
from edgernn.exporters.checks.parity import batched, drive, whole_lengths
from edgernn.tasks.base import apply_normalization
from edgernn.tasks.compare import MetricCheck, compare_metric


@dataclass(frozen=True)
class Gate:
    """What a quantized artifact must keep, measured against its fp32 original."""

    horizon: int = GATE_HORIZON          # streamed steps for the drift check
    max_error: float = GATE_MAX_ERROR    # p99 of per-step |q - fp32|, in fp32 std units
    growth: float = 3.0          # last-tenth mean error <= growth x first-tenth (no divergence),
    #                              judged once it exceeds a tenth of max_error (below that the
    #                              error is noise however it moves, e.g. along a trend)
    check_metric: bool = True    # the task metric, within the bound below
    max_drop: float | None = None  # the metric's fixed allowance; None: the task's own


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
    drift_data: str = ""               # what was streamed, and how much
    metric: MetricCheck | None = None
    data: DataRef | None = None        # the test data the metric used
    latency_fp32_us: float | None = None
    latency_out_us: float | None = None
    notes: list[str] = field(default_factory=list)
    gate: Gate = field(default_factory=Gate)
    attempt: str = ""                  # which attempt this is (see quantize's --recurrent)

    @property
    def size_ratio(self) -> float:
        return self.bytes_out / self.bytes_fp32

    @property
    def metric_ok(self) -> bool:
        return self.metric is None or not self.gate.check_metric or self.metric.passed

    @property
    def passed(self) -> bool:
        g = self.gate
        return bool(np.isfinite(self.worst_error) and self.error_p99 <= g.max_error
                    and not self.grows and self.metric_ok)

    @property
    def grows(self) -> bool:
        g = self.gate
        return self.drift_last > max(g.growth * self.drift_first, g.max_error / 10)

    def failures(self) -> list[str]:
        """Why the gate refused it, one phrase per reason."""
        parts = []
        if not np.isfinite(self.worst_error) or self.error_p99 > self.gate.max_error:
            parts.append(f"p99 error {self.error_p99:.3g} x fp32 std > {self.gate.max_error} "
                         f"(worst {self.worst_error:.3g})")
        if self.grows:
            parts.append(f"error grows over the stream ({self.drift_first:.3g} -> "
                         f"{self.drift_last:.3g})")
        if not self.metric_ok:
            parts.append(self.metric.describe())
        return parts

    def to_dict(self) -> dict:
        out = {k: v for k, v in asdict(self).items()
               if k not in ("coverage", "gate", "metric", "data")}
        out.update(coverage=asdict(self.coverage), gate=asdict(self.gate), passed=self.passed,
                   size_ratio=self.size_ratio, metric_ok=self.metric_ok,
                   metric=self.metric.to_dict() if self.metric else None,
                   data=asdict(self.data) if self.data else None)
        return out


def _random(model, batch: int, steps: int, rng) -> np.ndarray:
    contract = model.contract
    if model.input_dtype == np.int64:
        high = int(contract.model.get("input_size", 2)) if contract.model else 2
        return rng.integers(0, high, (batch, steps)).astype(np.int64)
    frame = list(model.input.shape[2 if model.graph != "step" else 1:])
    return rng.standard_normal((batch, steps, *frame)).astype(np.float32)


def _stream_input(model, contract, gate: Gate, data, seed: int):
    """The long stream the gate drives: the task's own data when there is some, else random
    frames; frames in the data's units, lengths (or None) and a description."""
    from edgernn.tasks import get_task

    rng = np.random.default_rng(seed)
    task = get_task(contract.task) if data is not None else None
    if not model.contract.streamable:
        return (_random(model, 8, 64, rng), None, "8 whole sequences of 64 random steps (the "
                "model reads each whole: no stream to drift)", task)
    if task is not None:
        x, lengths = task.drift_input(data, gate.horizon, seed)
        return x, lengths, f"{gate.horizon} streamed steps of {task.drift_description(data)}", \
            task
    return _random(model, 1, gate.horizon, rng), None, \
        f"{gate.horizon} streamed steps of random frames", task


def stream_error(want: np.ndarray, got: np.ndarray, lengths=None) -> dict:
    """Per-step max |got - want| over a stream, in units of ``want``'s std: worst, p99 and the
    mean over the first and last tenth (does it grow?)."""
    if want.ndim == 2:                                   # one answer per sequence
        want, got = want[:, None], got[:, None]
    err = np.abs(got.astype(np.float64) - want).reshape(*want.shape[:2], -1).max(-1)  # (S, T)
    if lengths is not None:
        keep = np.arange(err.shape[1])[None, :] < lengths[:, None]
        err, want = err[keep], want[keep]
    err = err.reshape(-1) / (float(np.std(want)) or 1.0)
    tenth = max(1, err.size // 10)
    return {"worst_error": float(err.max()), "error_p99": float(np.percentile(err, 99)),
            "drift_first": float(err[:tenth].mean()), "drift_last": float(err[-tenth:].mean())}


def evaluate(fp32, out, contract, gate: Gate, data=None, seed: int = 0) -> dict:
    """Error over a long stream, its growth, and the task metric of ``out`` against ``fp32``,
    on ``data`` (the model's own; None: random frames and no metric)."""
    x, lengths, what, task = _stream_input(fp32, contract, gate, data, seed)
    x = apply_normalization(x, contract.preprocessing)
    want, _ = drive(fp32, x)
    got, _ = drive(out, x)
    result = {**stream_error(want, got, lengths), "drift_data": what}
    if task is not None and gate.check_metric:
        split, ref = data.part("test")
        xs = apply_normalization(split.x, contract.preprocessing)
        n = whole_lengths(contract.streamable, split)
        a = batched(lambda v: (drive(fp32, v)[0], {}), xs, lengths=n)[0]
        b = batched(lambda v: (drive(out, v)[0], {}), xs, lengths=n)[0]
        result.update(metric=compare_metric(task, a, b, split, contract.postprocessing,
                                            gate.max_drop), data=ref)
    return result


def versus_torch(src, out, contract, gate: Gate, data=None, seed: int = 0) -> list[Parity]:
    """The quantized file against PyTorch (the checkpoint ``src``), on the stream the gate
    drives and the whole test split: what its contract records as its error vs torch."""
    x, lengths, what, task = _stream_input(out, contract, gate, data, seed)
    want, _ = src.reference(x)                           # torch takes frames in data units
    got, _ = drive(out, apply_normalization(x, contract.preprocessing))
    e = stream_error(want, got, lengths)
    entries = [Parity("torch", "p99_error_over_std", gate.max_error, e["error_p99"],
                      what, {"worst": e["worst_error"], "drift_first": e["drift_first"],
                             "drift_last": e["drift_last"],
                             "max_abs": float(np.abs(got.astype(np.float64) - want).max())})]
    if task is not None and gate.check_metric:
        split, ref = data.part("test")
        n = whole_lengths(contract.streamable, split)
        a = batched(lambda v: src.reference(v), np.ascontiguousarray(split.x), lengths=n)[0]
        xs = apply_normalization(split.x, contract.preprocessing)
        b = batched(lambda v: (drive(out, v)[0], {}), xs, lengths=n)[0]
        if a.ndim == b.ndim:
            m = compare_metric(task, a, b, split, None, gate.max_drop)   # both in one unit
            entries.append(Parity("torch", f"task_{m.metric}_drop", m.allowed,
                                  max(0.0, m.worse_by), "test data",
                                  {"torch": m.reference, "quantized": m.value,
                                   "items": m.items, "changed": m.changed}, ref))
    return entries


def parity_entries(r: QuantizeReport) -> list[Parity]:
    """What the gate measured, for the contract: the tolerances recorded are those applied."""
    entries = [Parity("fp32", "p99_error_over_std", r.gate.max_error, r.error_p99,
                      r.drift_data,
                      {"worst": r.worst_error, "drift_first": r.drift_first,
                       "drift_last": r.drift_last, "growth_allowed": r.gate.growth})]
    if r.metric is not None:
        m = r.metric
        entries.append(Parity("fp32", f"task_{m.metric}_drop", m.allowed, max(0.0, m.worse_by),
                              "test data", {"fp32": m.reference, "quantized": m.value,
                                            "items": m.items, "changed": m.changed,
                                            "max_drop": m.max_drop, "std_error": m.std_error},
                              r.data))
    return entries
