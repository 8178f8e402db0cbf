"""Forecasting through differences: trained on changes, exported as a model of levels."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgernn.checkpoint import save_checkpoint  # noqa: E402
from edgernn.exporters import export  # noqa: E402
from edgernn.runtime import load  # noqa: E402
from edgernn.tasks import get_task  # noqa: E402
from edgernn.tasks.base import apply_normalization, invert_normalization  # noqa: E402
from edgernn.training import fit  # noqa: E402


@pytest.fixture(scope="module")
def trending(tmp_path_factory):
    """A series with a steady trend and a seasonal swing, trained with --difference."""
    folder = tmp_path_factory.mktemp("trend")
    t = np.arange(600)
    rng = np.random.default_rng(0)
    level = 5 + 0.05 * t + np.sin(2 * np.pi * t / 25) + rng.normal(0, 0.05, t.size)
    path = folder / "trend.csv"
    path.write_text("load\n" + "\n".join(f"{v:.5f}" for v in level))
    task = get_task("forecast")
    data = task.load(path)
    result = fit(task, data, task.model.replace(hidden_size=16),
                 task.training.replace(epochs=40, difference=True, patience=10), verbose=False)
    return result, save_checkpoint(folder / "d.pt", result.checkpoint()), level


def test_differences_beat_last_value_on_a_trend(trending):
    result, _, _ = trending
    assert result.test_metric < 0.7 * result.baseline["naive_mae"]


@pytest.mark.parametrize("graph, ops", [("step", "compact"), ("step", "fused"),
                                        ("step", "decomposed"), ("chunk", "fused")])
def test_every_form_returns_levels_equal_to_training(trending, tmp_path, graph, ops):
    result, ckpt, level = trending
    out = export(ckpt, tmp_path / "d.onnx", graph=graph, ops=ops)
    c = out.contract
    assert c.difference is not None and [s.name for s in c.states][-2:] == ["x_prev", "x_seen"]
    # stream the whole series from the start, raw readings in, levels out
    stream = load(out.path).stream()
    forecast = stream.denormalize(stream.feed(level[:, None].astype(np.float32)))[:, 0]
    # what training's evaluation computes: changes in, the next change out, plus the level
    split = result.data.test
    diff = result.difference
    with torch.no_grad():
        net_in = apply_normalization(diff.split(split).x, diff.norm)
        change = result.model.forward_steps(torch.from_numpy(net_in))[0].numpy()
    want = (split.x + invert_normalization(change, diff.norm))[0, :, 0]
    np.testing.assert_allclose(forecast[:len(want)], want, rtol=0, atol=1e-3)


def test_snapshots_carry_the_previous_frame(trending, tmp_path):
    _, ckpt, level = trending
    model = load(export(ckpt, tmp_path / "d.onnx", ops="compact").path)
    a = model.stream()
    frames = level[:, None].astype(np.float32)
    a.feed(frames[:50])
    b = model.stream()
    b.restore(a.snapshot())
    np.testing.assert_array_equal(a.feed(frames[50:60]), b.feed(frames[50:60]))
    assert a.state["x_prev"].shape == (1, 1)


def test_difference_is_for_forecasting():
    from edgernn.errors import ConfigError

    task = get_task("classify")
    with pytest.raises(ConfigError, match="--difference is for forecasting"):
        fit(task, task.generate(size=0.01), task.model.replace(hidden_size=4, num_layers=1),
            task.training.replace(epochs=1, difference=True), verbose=False)
