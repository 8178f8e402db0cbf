"""The task metric check: paired, sized by the test set, one-sided."""

import numpy as np
import pytest

from edgernn.tasks import get_task
from edgernn.tasks.base import Split
from edgernn.tasks.compare import Z, compare_metric


def _logits(labels: np.ndarray, classes: int = 3) -> np.ndarray:
    out = np.zeros((len(labels), 1, classes), np.float32)
    out[np.arange(len(labels)), 0, labels] = 1.0
    return out


def test_one_flipped_prediction_in_64_is_noise_not_a_failure():
    y = np.arange(64) % 3
    split = Split(np.zeros((64, 1, 2), np.float32), y)
    ref = y.copy()
    art = y.copy()
    art[0] = (art[0] + 1) % 3
    check = compare_metric(get_task("classify"), _logits(ref), _logits(art), split, None)
    assert check.changed == 1 and check.worse_by == pytest.approx(1 / 64)
    assert check.passed and check.allowed == pytest.approx(0.01 + Z * check.std_error)


def test_a_better_artifact_always_passes_and_a_steady_drop_fails():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 2000)
    split = Split(np.zeros((2000, 1, 2), np.float32), y)
    ref = np.where(rng.random(2000) < 0.8, y, (y + 1) % 3)
    better = np.where(rng.random(2000) < 0.5, y, ref)
    task = get_task("classify")
    up = compare_metric(task, _logits(ref), _logits(better), split, None)
    assert up.worse_by < 0 and up.passed
    worse = np.where(rng.random(2000) < 0.05, (y + 2) % 3, ref)
    down = compare_metric(task, _logits(ref), _logits(worse), split, None)
    assert down.worse_by > down.allowed and not down.passed
    assert compare_metric(task, _logits(ref), _logits(worse), split, None, max_drop=0.1).passed


def test_relative_metrics_scale_the_allowance():
    task = get_task("forecast")
    y = np.ones((1, 100, 1), np.float32) * 10
    split = Split(np.zeros_like(y), y)
    check = compare_metric(task, y - 1.0, y - 1.02, split, None)     # MAE 1.00 -> 1.02
    assert check.max_drop == pytest.approx(0.05) and check.passed
    assert not compare_metric(task, y - 1.0, y - 1.2, split, None).passed
