"""What ``validate`` found: per-tensor errors, drift, the task metric; recorded and plotted.

The report is one object for the API, the CLI's table, ``--json`` and ``--record`` (which
writes the measured parity, with the data it was measured on, into each passing contract).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgernn.contract import DataRef
from edgernn.exporters.checks.parity import RTOL, TensorError
from edgernn.tasks.compare import MetricCheck


@dataclass(frozen=True)
class Tolerances:
    """Defaults for fp32 artifacts: float32 rounding differs between PyTorch's and ONNX
    Runtime's kernels by ~1e-7 per step and stays ~1e-6 over short windows; 1e-4 leaves room
    for unit-scale outputs while any real export bug (wrong gate order, lost state) shows up at
    1e-2 or more. Over 10,000 fed-back steps rounding can grow further, hence ``drift``."""

    atol: float = 1e-4        # outputs and states, random and task inputs, any stream split
    drift: float = 1e-3       # max per-step output error over the long horizon
    evaluator: float = 1e-4   # ONNX Runtime against onnx.reference on a short window
    rtol: float = RTOL        # each of the above + rtol x |value| (see parity.within)
    check_metric: bool = True  # the task metric within the bound (see edgernn.tasks.compare)
    max_drop: float | None = None  # the metric's fixed allowance; None: the task's own


@dataclass
class Check:
    name: str
    errors: list[TensorError]

    @property
    def passed(self) -> bool:
        return all(e.passed for e in self.errors)


@dataclass
class Drift:
    steps: int
    curve: np.ndarray            # per-step max abs output error
    tolerance: float
    data: str = ""               # what was streamed
    rtol: float = 0.0
    ok: bool | None = None       # every element within tolerance + rtol x |value|

    @property
    def max(self) -> float:
        return float(self.curve.max(initial=0))

    @property
    def slope_per_1k(self) -> float:
        """Least-squares trend of the error, per 1,000 steps (≈0: no growth)."""
        if self.curve.size < 2:
            return 0.0
        t = np.arange(self.curve.size) / 1000.0
        return float(np.polyfit(t, self.curve.astype(np.float64), 1)[0])

    @property
    def passed(self) -> bool:
        if not np.isfinite(self.max):
            return False
        return self.max <= self.tolerance if self.ok is None else self.ok

    def to_dict(self) -> dict:
        tenth = max(1, self.curve.size // 10)
        return {"steps": self.steps, "max": self.max, "slope_per_1k": self.slope_per_1k,
                "first_tenth_mean": float(self.curve[:tenth].mean()),
                "last_tenth_mean": float(self.curve[-tenth:].mean()),
                "tolerance": self.tolerance, "rtol": self.rtol, "passed": self.passed,
                "data": self.data}


@dataclass
class ArtifactReport:
    path: str
    graph: str
    checks: list[Check] = field(default_factory=list)
    drift: Drift | None = None
    metric: MetricCheck | None = None
    check_metric: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def metric_ok(self) -> bool:
        return self.metric is None or not self.check_metric or self.metric.passed

    @property
    def passed(self) -> bool:
        return (all(c.passed for c in self.checks) and self.metric_ok
                and (self.drift is None or self.drift.passed))

    @property
    def worst(self) -> float:
        return max((e.max_abs for c in self.checks for e in c.errors), default=0.0)

    def to_dict(self) -> dict:
        return {"path": self.path, "graph": self.graph, "passed": self.passed,
                "checks": [{"name": c.name, "passed": c.passed,
                            "tensors": [{**vars(e), "passed": e.passed} for e in c.errors]}
                           for c in self.checks],
                "drift": self.drift.to_dict() if self.drift else None,
                "metric": self.metric.to_dict() if self.metric else None,
                "metric_ok": self.metric_ok, "notes": self.notes}


@dataclass
class ValidationReport:
    reference: str
    task: str
    metric_name: str
    tolerances: Tolerances
    artifacts: list[ArtifactReport]
    data: DataRef | None = None          # the test data the metric and task checks used
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(a.passed for a in self.artifacts)

    @property
    def reference_metric(self) -> float | None:
        checks = [a.metric for a in self.artifacts if a.metric is not None]
        return checks[0].reference if checks else None

    def to_dict(self) -> dict:
        return {"reference": self.reference, "task": self.task, "metric": self.metric_name,
                "reference_metric": self.reference_metric, "passed": self.passed,
                "data": asdict(self.data) if self.data else None,
                "tolerances": vars(self.tolerances), "notes": self.notes,
                "artifacts": [a.to_dict() for a in self.artifacts]}

    def rows(self) -> list[list]:
        """One row per tensor per check, then drift and metric: the table the CLI prints."""
        rows = []
        for a in self.artifacts:
            name = Path(a.path).name
            for c in a.checks:
                for e in c.errors:
                    rows.append([name, c.name, f"{e.kind} {e.name}", e.max_abs, e.max_rel,
                                 _rule(e.tolerance, e.rtol), "ok" if e.passed else "FAIL"])
            if a.drift:
                d = a.drift
                rows.append([name, f"drift {d.steps} steps", "output y (max)", d.max,
                             f"trend {d.slope_per_1k:+.2g}/1k", _rule(d.tolerance, d.rtol),
                             "ok" if d.passed else "FAIL"])
            if a.metric is not None:
                m = a.metric
                changed = f", {m.changed} changed" if m.changed is not None else ""
                rows.append([name, f"task metric ({m.items} items{changed})", self.metric_name,
                             m.value, f"torch {m.reference:.4f}", f"drop <= {m.allowed:.3g}",
                             "ok" if a.metric_ok else "FAIL"])
        return rows


# ---------------------------------------------------------------------------- recording, plots

def _rule(atol: float, rtol: float) -> str:
    return f"{atol:.1g}" + (f" + {rtol:.1g}|v|" if rtol else "")


def bound(atol: float, rtol: float, scale: float) -> dict:
    """How a recorded max_abs tolerance was set: atol + rtol x the largest |value| compared."""
    return {"atol": atol, "rtol": rtol, "max_value": scale,
            "rule": "each element: |onnx - torch| <= atol + rtol * |torch|"}


def parity_entries(report: ArtifactReport, validation: ValidationReport) -> list:
    """What ``report`` proved, as contract :class:`~edgernn.contract.Parity` entries."""
    from edgernn.contract import Parity

    tol = validation.tolerances
    scale = max((e.scale for c in report.checks for e in c.errors), default=0.0)
    entries = [Parity("torch", "max_abs", tol.atol + tol.rtol * scale, report.worst,
                      "; ".join(c.name for c in report.checks),
                      {**{c.name: max(e.max_abs for e in c.errors) for c in report.checks},
                       **bound(tol.atol, tol.rtol, scale)}, validation.data)]
    if report.drift is not None:
        d = report.drift.to_dict()
        entries.append(Parity("torch", "drift_max_abs", tol.drift, d["max"],
                              f"{d['steps']} streamed steps of {report.drift.data}",
                              {"slope_per_1k": d["slope_per_1k"], "rtol": tol.rtol}))
    if report.metric is not None:
        m = report.metric
        entries.append(Parity("torch", f"task_{validation.metric_name}_drop", m.allowed,
                              max(0.0, m.worse_by), "test data",
                              {"torch": m.reference, "artifact": m.value, "items": m.items,
                               "changed": m.changed, "max_drop": m.max_drop,
                               "std_error": m.std_error}, validation.data))
    return entries


def record(validation: ValidationReport) -> None:
    """Write each passing artifact's measured parity into its contract (atomically)."""
    from edgernn.exporters.artifact import update_contract

    for report in validation.artifacts:
        if not report.passed or report.path == "<bytes>":
            continue
        entries = parity_entries(report, validation)
        keys = {(p.reference, p.metric) for p in entries}

        def change(contract, entries=entries, keys=keys):
            kept = [p for p in contract.parity if (p.reference, p.metric) not in keys]
            return contract.with_changes(parity=kept + entries)

        update_contract(report.path, change)


def plot(validation: ValidationReport, path: str | Path) -> Path:
    """A PNG of each artifact's per-step drift curve (log scale), written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgernn.files import atomic_path

    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    for report in validation.artifacts:
        if report.drift is not None:
            ax.plot(np.maximum(report.drift.curve, 1e-12), lw=0.6,
                    label=f"{Path(report.path).name} (max {report.drift.max:.2g})")
            tolerance = report.drift.tolerance
    if ax.lines:
        ax.axhline(tolerance, color="red", ls="--", lw=0.8, label="tolerance")
    ax.set_yscale("log")
    ax.set_xlabel("streamed step")
    ax.set_ylabel("max |artifact - torch|")
    ax.set_title(f"drift against PyTorch: {validation.reference}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return path
