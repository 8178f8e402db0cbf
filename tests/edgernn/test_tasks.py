import numpy as np
import pytest

from edgernn.errors import DataError
from edgernn.sampling import sample_logits
from edgernn.tasks import TASKS, get_task
from edgernn.tasks.charlm import ALPHABET, generate_text


@pytest.mark.parametrize("name", sorted(TASKS))
def test_generated_data_is_deterministic_and_finite(name):
    task = get_task(name)
    a, b = task.generate(seed=3, size=0.05), task.generate(seed=3, size=0.05)
    for part in ("train", "val", "test"):
        sa, sb = getattr(a, part), getattr(b, part)
        assert np.array_equal(sa.x, sb.x) and np.array_equal(sa.y, sb.y)
        assert len(sa.x) == len(sa.y) > 0
        if sa.x.dtype.kind == "f":
            assert np.isfinite(sa.x).all()
    assert not np.array_equal(a.train.x, task.generate(seed=4, size=0.05).train.x)


def test_unknown_task():
    from edgernn.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown task 'speech'; built-in tasks are keyword"):
        get_task("speech")


def test_generated_text_uses_the_alphabet():
    text = generate_text(3000, seed=0)
    assert len(text) == 3000 and set(text) <= set(ALPHABET)


# ---------------------------------------------------------------- user data

def test_keyword_npz_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "kw.npz"
    np.savez(path, x_train=rng.normal(size=(20, 6, 4)).astype(np.float32),
             y_train=rng.integers(0, 3, 20), x_val=rng.normal(size=(5, 6, 4)),
             y_val=rng.integers(0, 3, 5), labels=np.array(["yes", "no", "up"]))
    data = get_task("keyword").load(path)
    assert data.train.x.shape == (20, 6, 4) and data.labels == ["yes", "no", "up"]
    assert data.test is data.val  # no test split given: validation stands in
    cfg = get_task("keyword").fit_config(get_task("keyword").model, data)
    assert (cfg.input_size, cfg.output_size) == (4, 3)


@pytest.mark.parametrize("arrays, message", [
    (dict(x_train=np.zeros((3, 4, 2))), r"has no array\(s\) y_train \(it has x_train\)"),
    (dict(x_train=np.zeros((3, 4)), y_train=np.zeros(3, int), x_val=np.zeros((1, 4, 2)),
          y_val=np.zeros(1, int)), r"'x_train' has shape \(3, 4\).*expected 3 dimensions"),
    (dict(x_train=np.zeros((3, 4, 2)), y_train=np.zeros(2, int), x_val=np.zeros((1, 4, 2)),
          y_val=np.zeros(1, int)), "x_train has 3 items but y_train has 2"),
    (dict(x_train=np.full((3, 4, 2), np.nan), y_train=np.zeros(3, int),
          x_val=np.zeros((1, 4, 2)), y_val=np.zeros(1, int)), "sequence 0 of x_train is entirely NaN"),
])
def test_bad_keyword_npz(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=message):
        get_task("keyword").load(path)


def test_not_an_npz(tmp_path):
    path = tmp_path / "bad.npz"
    path.write_text("hello")
    with pytest.raises(DataError,
                       match=r"is not an .npz file \(it holds text.*classification .npz holds"):
        get_task("keyword").load(path)
    with pytest.raises(DataError, match="does not exist"):
        get_task("keyword").load(tmp_path / "missing.npz")


def test_forecast_csv_with_header(tmp_path):
    t = np.arange(300)
    rows = "\n".join(f"{np.sin(i / 7):.4f},{np.cos(i / 5):.4f}" for i in t)
    path = tmp_path / "s.csv"
    path.write_text("temp,vibration\n" + rows + "\n")
    data = get_task("forecast").load(path)
    assert data.train.x.shape[-1] == 2
    # targets are the next step of the inputs
    assert np.allclose(data.train.y[0, :-1], data.train.x[0, 1:])
    # validation and test run the whole stream from its start but score only their own part
    assert data.val.start > 0 and data.test.start > data.val.start
    assert data.train.steps + data.val.steps + data.test.steps <= 300
    assert data.ref.feature_names == ["temp", "vibration"] and data.ref.kind == "file"
    assert data.stream.shape == (300, 2)


@pytest.mark.parametrize("content, message", [
    ("a,b\n1,2\n3,x\n", r"data row 2 \('3,x'\) is not comma-separated numbers"),
    ("1,2\n3\n", "same number of columns"),
    ("1,2\n" * 20, "single stream of 20 steps is too short"),
])
def test_bad_forecast_csv(tmp_path, content, message):
    path = tmp_path / "s.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        get_task("forecast").load(path)


def test_forecast_npz_streams(tmp_path):
    path = tmp_path / "s.npz"
    np.savez(path, series=np.random.default_rng(0).normal(size=(10, 50, 3)))
    data = get_task("forecast").load(path)
    assert (len(data.train), len(data.val), len(data.test)) == (8, 1, 1)


def test_charlm_text_file(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("hello world, edge devices stream text. " * 80)
    data = get_task("charlm").load(path)
    assert set(data.vocabulary) == set("hello world, edge devices stream text. ")
    path.write_text("too short")
    with pytest.raises(DataError, match="holds 9 characters; at least 2,000"):
        get_task("charlm").load(path)


def test_sampling_temperature_and_top_k():
    logits = np.array([0.0, 5.0, 1.0, 4.0])
    assert sample_logits(logits, temperature=0) == 1
    rng = np.random.default_rng(0)
    draws = {sample_logits(logits, temperature=1.0, top_k=2, rng=rng) for _ in range(200)}
    assert draws == {1, 3}


def test_sequences_of_different_lengths(tmp_path):
    x = np.ones((3, 5, 2), np.float32)
    x[0, 3:] = np.nan                       # NaN-padded tail: 3 real steps
    x[2, 1:] = np.nan
    np.savez(tmp_path / "a.npz", x_train=x, y_train=np.array([0, 1, 0]))
    data = get_task("classify").load(tmp_path / "a.npz")
    split = data.train if len(data.train) == 2 else data.val
    assert data.ref.variable_length and np.isfinite(data.train.x).all()
    assert sorted(np.concatenate([data.train.lengths, data.val.lengths]).tolist()) == [1, 3, 5]
    del split
    np.savez(tmp_path / "b.npz", x_train=np.ones((2, 4, 1), np.float32), y_train=[0, 1],
             lengths_train=np.array([2, 4]), x_val=np.ones((1, 4, 1), np.float32), y_val=[1])
    data = get_task("classify").load(tmp_path / "b.npz")
    assert data.train.lengths.tolist() == [2, 4] and data.val.lengths is None
    assert data.train.steps == 6 and data.train.last(np.arange(8).reshape(2, 4))[0] == 1


@pytest.mark.parametrize("x, lengths, message", [
    ([[[1.0], [np.nan], [2.0]]], None, r"NaN or inf inside sequence 0 \(step 1 of its 3\)"),
    ([[[1.0], [2.0]]], [3], r"lengths for x_train must lie in 1..2"),
    ([[[1.0], [2.0]]], [1.5], r"must be 1 integers"),
])
def test_bad_lengths_are_refused(tmp_path, x, lengths, message):
    arrays = dict(x_train=np.array(x, np.float32), y_train=np.zeros(1, int),
                  x_val=np.ones((1, 2, 1), np.float32), y_val=np.zeros(1, int))
    if lengths is not None:
        arrays["lengths_train"] = np.array(lengths)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=message):
        get_task("classify").load(tmp_path / "bad.npz")


def test_a_held_out_validation_split_when_the_file_has_none(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "u.npz", x_train=rng.normal(size=(40, 5, 2)), y_train=rng.integers(0, 2, 40),
             x_test=rng.normal(size=(10, 5, 2)), y_test=rng.integers(0, 2, 10))
    data = get_task("classify").load(tmp_path / "u.npz")
    assert (len(data.train), len(data.val), len(data.test)) == (34, 6, 10)
    assert data.ref.splits == {"train": 34, "val": 6, "test": 10} and len(data.ref.sha256) == 64


def test_a_keyword_model_trained_before_keywords_were_spoken_finds_its_frames_again():
    """Checkpoints of task 'keyword' made before edgernn/tasks/spoken.py record the built-in
    data set 'keyword': classify's synthetic frames, which validate and quantize regenerate."""
    from edgernn.tasks.resolve import DataNeeded, resolve_data

    ref = get_task("classify").generate(seed=0, size=0.01).ref
    assert ref.name == "keyword"
    data = resolve_data("keyword", ref, stage="validate", features=40)
    assert data.audio is None and data.test.x.shape[1:] == (24, 40)
    other = type(ref)("builtin", "sensor", seed=0, size=0.01)       # forecast's: not a kind
    with pytest.raises(DataNeeded, match="which task 'keyword' does not generate"):
        resolve_data("keyword", other, stage="validate")


def test_a_small_set_the_defaults_do_not_fit_is_tried_again_at_a_third_of_the_rate(tmp_path):
    """ClassifyTask.retry, on a real run: labels that are noise leave the training loss at
    guessing's after one epoch, so train is told to run again at lr / 3 (the CLI's side is
    tests/test_realdata.py's ArrowHead test). Per-step labels (voice activity) and built-in
    data never get a second run."""
    pytest.importorskip("torch")
    from edgernn.tasks.base import Split
    from edgernn.training import fit

    rng = np.random.default_rng(0)
    path = tmp_path / "noise.npz"
    np.savez(path, x_train=rng.normal(size=(40, 12, 3)).astype(np.float32),
             y_train=rng.integers(0, 3, 40))
    task = get_task("classify")
    data = task.load(path)
    model, training, _ = task.sized(data)
    result = fit(task, data, model.replace(hidden_size=4), training.replace(epochs=1),
                 verbose=False)
    again, why = task.retry(result)
    assert again.lr == pytest.approx(training.lr / 3) and again.epochs == 1  # only the rate
    assert "did not fit the training split; training again at" in why
    train = data.train
    data.train = Split(train.x, np.zeros(train.x.shape[:2], np.int64))      # a label a step
    assert get_task("vad").retry(result) is None
    data.train = train
    data.ref = task.generate(seed=0, size=0.05).ref                         # built-in data
    assert task.retry(result) is None
