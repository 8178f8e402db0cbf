"""Is an artifact's task metric as good as its reference's, on a test set of this size?

Both models are scored item by item (a sequence's correctness, a step's absolute error, a
character's bits) on the same items, so the comparison is paired. An artifact may be better; it
fails only when it is worse by more than ``max_drop`` plus two standard errors of the paired
difference: one flipped prediction in 64 is noise, a steady loss over a thousand items is not.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

Z = 2.0    # standard errors of the paired difference allowed on top of max_drop


@dataclass
class MetricCheck:
    metric: str
    reference: float              # the reference's metric on these items
    value: float                  # the artifact's
    items: int
    worse_by: float               # how much worse the artifact is (negative: it is better)
    max_drop: float               # the fixed part of the bound, in metric units
    std_error: float              # of the paired per-item difference's mean
    changed: int | None = None    # predictions that differ (classifiers), else None

    @property
    def allowed(self) -> float:
        """The bound applied: ``max_drop`` plus ``Z`` standard errors."""
        return self.max_drop + Z * self.std_error

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.value)) and self.worse_by <= self.allowed + 1e-12

    def describe(self) -> str:
        change = f"; {self.changed} of {self.items} predictions changed" \
            if self.changed is not None else f" over {self.items} items"
        return (f"{self.metric} {self.value:.4f} vs {self.reference:.4f} (worse by "
                f"{self.worse_by:+.4g}, bound {self.allowed:.4g} = {self.max_drop:.4g} + "
                f"{Z:g} x {self.std_error:.2g}{change})")

    def to_dict(self) -> dict:
        return {**asdict(self), "allowed": self.allowed, "passed": self.passed}


def default_max_drop(task, reference: float) -> float:
    """The task's own bound in metric units (a share of the reference for relative metrics)."""
    return task.metric_tolerance * (abs(reference) if task.metric_relative else 1.0)


def compare_metric(task, reference_outputs: np.ndarray, outputs: np.ndarray, split, post,
                   max_drop: float | None = None) -> MetricCheck:
    """Score both per-step outputs (N, T, O) on ``split`` and judge the artifact's.

    ``max_drop`` is in the task's terms: accuracy points (0.01 = one point), a share of the
    reference for relative metrics (MAE: 0.05 = 5 %), bits per character; None: the task's.
    """
    a = task.item_scores(reference_outputs, split, post)
    b = task.item_scores(outputs, split, post)
    drop = task.metric_tolerance if max_drop is None else max_drop
    drop = drop * (abs(float(np.mean(a))) if task.metric_relative else 1.0)
    pa, pb = task.predictions(reference_outputs, split), task.predictions(outputs, split)
    changed = None if pa is None else int((pa != pb).sum())
    return paired_check(task.metric, a, b, task.higher_is_better, drop, changed)


def paired_check(metric: str, reference_items, items, higher_is_better: bool, max_drop: float,
                 changed: int | None = None) -> MetricCheck:
    """The rule on per-item scores of the same items: worse by at most ``max_drop`` (metric
    units) plus ``Z`` standard errors of the paired difference's mean."""
    a = np.asarray(reference_items, np.float64)
    b = np.asarray(items, np.float64)
    diff = (b - a) * (-1.0 if higher_is_better else 1.0)                 # > 0: worse
    se = float(diff.std(ddof=1) / np.sqrt(diff.size)) if diff.size > 1 else 0.0
    return MetricCheck(metric, float(a.mean()), float(b.mean()), int(diff.size),
                       float(diff.mean()), float(max_drop), se, changed)
