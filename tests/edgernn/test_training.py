import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgernn.config import TrainConfig  # noqa: E402
from edgernn.errors import ConfigError  # noqa: E402
from edgernn.tasks import TASKS, get_task  # noqa: E402
from edgernn.training import _windows, fit, predict  # noqa: E402

# Small budgets that still reach each task's useful level in seconds on 2 cores.
SMALL = {
    "classify": (0.4, dict(hidden_size=64, num_layers=1), dict(epochs=10)),
    "forecast": (0.5, dict(hidden_size=32), dict(epochs=10)),
    "charlm": (0.25, dict(hidden_size=64), dict(epochs=8)),
    # 160 recordings said by espeak-ng (about 10 s of the 25); a faster rate than the default's
    "vad": (0.4, {}, dict(epochs=20, lr=1e-2)),
}


def test_every_task_has_a_small_budget():
    # but keyword: its spoken clips reach 0.90 on the default budget, about 90 s on 2 cores
    # (benchmarks/keyword_bench.py); tests/test_audio_pipeline.py trains a smaller one
    assert set(SMALL) | {"keyword"} == set(TASKS)


# vad's budget trains tests/test_vad.py's model (through the CLI), which checks the threshold
@pytest.mark.parametrize("name", sorted(set(SMALL) - {"vad"}))
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
    task = get_task("classify")
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


def test_same_data_seed_and_options_give_the_same_weights_through_the_cli(tmp_path):
    import json

    from tests.conftest import run_cli

    hashes = []
    for i in range(2):
        out = run_cli("train", "--task", "forecast", "--size", "0.1", "--hidden", "8",
                      "--epochs", "3", "-o", tmp_path / f"{i}.pt", "--json")
        assert out.returncode == 0, out.stderr
        info = run_cli("info", tmp_path / f"{i}.pt", "--json")
        hashes.append(json.loads(info.stdout)["weights_sha256"])
    assert hashes[0] == hashes[1]


def test_help_shows_the_training_controls_and_defaults():
    from tests.conftest import run_cli

    text = " ".join(run_cli("train", "--help").stdout.split())
    for option in ("--patience", "--min-delta", "--warmup-steps", "--time-budget",
                   "--difference"):
        assert option in text
    assert "(0: off)" in text and "[default: (off)" in text


def test_early_stopping_waits_until_the_warm_up_is_over():
    task = get_task("classify")
    data = task.generate(seed=0, size=0.01)               # 60 clips: one batch per epoch
    result = fit(task, data, task.model.replace(hidden_size=8, num_layers=1),
                 task.training.replace(epochs=40, patience=2, warmup_steps=12, lr=1e-4),
                 verbose=False)
    # one optimiser step per epoch: no epoch before the 12th may count towards patience
    assert len(result.history) >= 12


def test_min_delta_makes_small_improvements_not_count():
    task = get_task("forecast")
    data = task.generate(seed=0, size=0.1)
    loose = fit(task, data, task.model.replace(hidden_size=8),
                task.training.replace(epochs=15, patience=2, warmup_steps=0, min_delta=1.0),
                verbose=False)
    assert loose.stop_reason.startswith("early stop") and len(loose.history) <= 3


def test_variable_length_classification_reads_each_sequence_at_its_last_real_step(tmp_path):
    """The label is the sign of the last real frame: padding (NaN tails in the file) must
    change nothing, wherever a sequence ends."""
    rng = np.random.default_rng(0)
    n, t = 600, 12
    lengths = rng.integers(3, t + 1, n)
    x = rng.normal(size=(n, t, 2)).astype(np.float32)
    y = (x[np.arange(n), lengths - 1, 0] > 0).astype(int)
    x[np.arange(t)[None, :] >= lengths[:, None]] = np.nan
    np.savez(tmp_path / "v.npz", x_train=x[:400], y_train=y[:400], x_val=x[400:500],
             y_val=y[400:500], x_test=x[500:], y_test=y[500:])
    task = get_task("classify")
    data = task.load(tmp_path / "v.npz")
    assert data.train.lengths is not None and data.ref.variable_length
    result = fit(task, data, task.model.replace(hidden_size=16, num_layers=1),
                 task.training.replace(epochs=25, lr=1e-2, patience=25), verbose=False)
    assert result.test_metric > 0.9
    out = predict(result.model, data.test, result.preprocessing)
    noisy = data.test.take(np.arange(len(data.test)))
    noisy.x = np.where(np.isnan(x[500:]), 1e3, noisy.x).astype(np.float32)
    assert np.array_equal(task.predictions(out, data.test),
                          task.predictions(predict(result.model, noisy, result.preprocessing),
                                           noisy))


def test_the_1nn_baseline_is_the_nearest_labelled_series():
    from edgernn.tasks.keyword import one_nn_accuracy

    task = get_task("classify")
    data = task.generate(seed=0, size=0.05)
    x = np.concatenate([data.train.x, data.val.x]).reshape(-1, data.train.x[0].size)
    y = np.concatenate([data.train.y, data.val.y])
    mean = data.train.x.reshape(-1, data.train.x.shape[-1]).mean(0)
    std = data.train.x.reshape(-1, data.train.x.shape[-1]).std(0) + 1e-8
    scale = np.tile(1 / std, data.train.x.shape[1])
    shift = np.tile(mean, data.train.x.shape[1])
    want = np.mean([y[np.argmin((((x - shift) * scale - (t.reshape(-1) - shift) * scale) ** 2)
                                .sum(1))] == label for t, label in zip(data.test.x, data.test.y)])
    assert one_nn_accuracy(data) == pytest.approx(want)
    assert task.baselines(data)["one_nn_accuracy"] == pytest.approx(want)


def test_the_best_epoch_can_be_chosen_by_the_metric():
    task = get_task("classify")
    data = task.generate(seed=0, size=0.02)
    result = fit(task, data, task.model.replace(hidden_size=8, num_layers=1, dropout=0.3),
                 task.training.replace(epochs=6, patience=6, warmup_steps=0, select="metric"),
                 verbose=False)
    accuracy = [h.val_metric for h in result.history]
    assert result.best_epoch == 1 + int(np.argmax(accuracy))     # the first of the best
    with pytest.raises(ConfigError, match="select 'accuracy' is unknown"):
        TrainConfig(select="accuracy")


def test_dropout_is_training_only():
    import torch

    from edgernn.models import build

    config = get_task("classify").model.replace(hidden_size=8, num_layers=1, dropout=0.5)
    net, plain = build(config, seed=0), build(config.replace(dropout=0.0), seed=0)
    x = torch.randn(2, 5, config.input_size)
    net.train()
    assert not torch.equal(net(x)[0], net(x)[0])                 # masks differ call to call
    net.eval()
    assert torch.equal(net(x)[0], plain.eval()(x)[0])            # the same weights, no mask
