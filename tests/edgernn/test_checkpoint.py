import pytest

torch = pytest.importorskip("torch")

from edgernn.checkpoint import (CHECKPOINT_FORMAT, Checkpoint, load_checkpoint,  # noqa: E402
                                save_checkpoint)
from edgernn.config import ModelConfig  # noqa: E402
from edgernn.contract import Normalization  # noqa: E402
from edgernn.errors import CheckpointError  # noqa: E402
from edgernn.models import build  # noqa: E402


@pytest.fixture
def ckpt():
    cfg = ModelConfig(cell="lstm", input_size=4, hidden_size=8, num_layers=2, output_size=3)
    model = build(cfg, seed=0)
    return Checkpoint(config=cfg, state_dict=model.state_dict(), task="keyword",
                      preprocessing=Normalization([0.5] * 4, [2.0] * 4),
                      labels=["a", "b", "c"], metrics={"accuracy": 0.9})


def test_round_trip_reproduces_outputs_exactly(tmp_path, ckpt):
    path = save_checkpoint(tmp_path / "m.pt", ckpt)
    back = load_checkpoint(path)
    assert back.config == ckpt.config and back.labels == ["a", "b", "c"]
    assert back.preprocessing == ckpt.preprocessing and back.metrics == {"accuracy": 0.9}
    assert back.weights_sha256() == ckpt.weights_sha256()
    x = torch.randn(2, 5, 4)
    a = ckpt.build_model()(x)[0]
    b = back.build_model()(x)[0]
    assert torch.equal(a, b)
    # The file holds plain containers and tensors only: the safe loader reads it.
    torch.load(path, weights_only=True)
    assert not list(tmp_path.glob(".*.tmp"))


def test_missing_checkpoint_says_how_to_make_one(tmp_path):
    with pytest.raises(CheckpointError, match=r"does not exist; train one with 'edgernn train"):
        load_checkpoint(tmp_path / "nope.pt")


def test_corrupt_checkpoint_is_refused(tmp_path, ckpt):
    path = save_checkpoint(tmp_path / "m.pt", ckpt)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="not a readable edgernn checkpoint"):
        load_checkpoint(path)


def test_newer_format_is_refused(tmp_path, ckpt):
    path = save_checkpoint(tmp_path / "m.pt", ckpt)
    payload = torch.load(path, weights_only=True)
    payload["format"] = CHECKPOINT_FORMAT + 1
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=r"format 2, newer than the 1 .*upgrade edgernn"):
        load_checkpoint(path)


def test_a_torch_file_that_is_not_a_checkpoint_is_refused(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="not an edgernn checkpoint"):
        load_checkpoint(path)


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path, ckpt):
    path = save_checkpoint(tmp_path / "m.pt", ckpt)
    payload = torch.load(path, weights_only=True)
    payload["config"]["hidden_size"] = 9
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="is damaged"):
        load_checkpoint(path)


def test_pickled_code_is_not_executed(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    torch.save({"kind": "edgernn.checkpoint", "format": 1, "x": Evil()}, path)
    with pytest.raises(CheckpointError, match="not a readable edgernn checkpoint"):
        load_checkpoint(path)


def test_failed_save_keeps_the_old_file(tmp_path, ckpt, monkeypatch):
    path = save_checkpoint(tmp_path / "m.pt", ckpt)
    before = path.read_bytes()

    def disk_full(fd):  # the bytes are in the temporary file; making them durable fails
        raise OSError(28, "No space left on device")

    import edgernn.files

    monkeypatch.setattr(edgernn.files.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left") as failed:
        save_checkpoint(path, ckpt)
    assert failed.value.filename == str(path)          # the message can name the file
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]
