import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgernn.config import TrainConfig  # noqa: E402
from edgernn.errors import ConfigError  # noqa: E402
from edgernn.tasks import TASKS, get_task  # noqa: E402
from edgernn.training import _windows, fit, predict  # noqa: E402

# Small budgets that still reach each task's useful level in seconds on 2 cores.
SMALL = {
    "keyword": (0.4, dict(hidden_size=64, num_layers=1), dict(epochs=10)),
    "classify": (0.4, dict(hidden_size=64, num_layers=1), dict(epochs=10)),
    "forecast": (0.5, dict(hidden_size=32), dict(epochs=10)),
    "charlm": (0.25, dict(hidden_size=64), dict(epochs=8)),
}


def test_every_task_has_a_small_budget():
    assert set(SMALL) == set(TASKS)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_training_reduces_loss_and_reaches_the_task_threshold(name):
    task = get_task(name)
    size, model_changes, train_changes = SMALL[name]
    result = fit(task, task.generate(seed=1, size=size), task.model.replace(**model_changes),
                 task.training.replace(time_budget=None, **train_changes), verbose=False)
    h = result.history
    assert h[-1].train_loss < 0.5 * h[0].train_loss
    assert all(np.isfinite([e.grad_norm_mean for e in h]))
    assert result.reached, (name, result.test_metric, result.baseline)
    if name == "forecast":
        assert result.test_metric < result.baseline["naive_mae"]


def test_same_seed_trains_to_the_same_weights():
    task = get_task("forecast")
    runs = [fit(task, task.generate(seed=0, size=0.1), task.model.replace(hidden_size=8),
                task.training.replace(epochs=2), verbose=False) for _ in range(2)]
    for (n, a), b in zip(runs[0].model.state_dict().items(), runs[1].model.state_dict().values()):
        assert torch.equal(a, b), n


def test_early_stopping_keeps_the_best_epoch(capsys):
    task = get_task("keyword")
    # A learning rate far too high: validation loss stops improving quickly.
    result = fit(task, task.generate(seed=0, size=0.05), task.model.replace(hidden_size=8,
                 num_layers=1), task.training.replace(epochs=30, lr=0.5, patience=2),
                 verbose=True)
    assert result.stop_reason.startswith("early stop")
    assert len(result.history) < 30
    best = min(result.history, key=lambda e: e.val_loss)
    assert result.best_epoch == best.epoch
    err = capsys.readouterr().err
    assert "epoch   1/30" in err and "|g|" in err and "lr" in err


def test_truncated_bptt_windows_cover_the_stream():
    assert _windows(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert _windows(10, None) == [(0, 10)]


def test_predict_is_per_step_and_matches_the_model():
    task = get_task("forecast")
    r = fit(task, task.generate(seed=0, size=0.1), task.model.replace(hidden_size=8),
            task.training.replace(epochs=1), verbose=False)
    out = predict(r.model, r.data.test, r.preprocessing)
    assert out.shape == r.data.test.y.shape


def test_bad_training_config_is_refused():
    with pytest.raises(ConfigError, match="schedule 'linear' is unknown"):
        TrainConfig(schedule="linear")
    with pytest.raises(ConfigError, match="bptt must be >= 1"):
        TrainConfig(bptt=0)
