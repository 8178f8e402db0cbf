"""A Speech Commands-style folder of WAV files (edgernn/tasks/wavfolder.py): real files written
and read back, the split rules, and the folders a user may give by mistake."""

from __future__ import annotations

import wave

import numpy as np
import pytest

from edgernn.errors import DataError
from edgernn.tasks import wavfolder
from edgernn.tasks.speech import Clips

RATE = 16000


def _clips(n_per: int = 6, labels=("no", "yes"), seed: int = 0) -> Clips:
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(labels)), n_per)
    audio = (rng.uniform(-0.5, 0.5, (len(y), RATE)) * (y[:, None] + 1) / 2).astype(np.float32)
    return Clips(audio, y, tuple(labels))


def _wav(path, x: np.ndarray, rate: int, channels: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = np.repeat(np.round(x * 32767).astype("<i2")[:, None], channels, 1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def test_written_clips_read_back_in_their_labels(tmp_path):
    clips = _clips()
    root = wavfolder.write(clips, tmp_path / "sc")
    got = wavfolder.load(root)
    assert got.labels == ("no", "yes") and got.rate == RATE
    assert sum(len(v) for v in got.y.values()) == len(clips.y)
    for part in wavfolder.SPLITS:
        for x, k, rel in zip(got.audio[part], got.y[part], got.files[part]):
            i = int(rel.split("clip")[1][:5])
            assert rel.startswith(clips.labels[k] + "/") and clips.y[i] == k
            np.testing.assert_allclose(x, clips.audio[i], rtol=0, atol=1 / 32768)
    with pytest.raises(DataError, match="already holds files"):
        wavfolder.write(clips, root)


def test_the_lists_choose_the_splits_and_a_speaker_stays_in_one(tmp_path):
    root = wavfolder.write(_clips(), tmp_path / "sc")
    (root / "validation_list.txt").write_text("no/clip00000_nohash_0.wav\n")
    (root / "testing_list.txt").write_text(
        "yes/clip00006_nohash_0.wav\nyes/clip00007_nohash_0.wav\n")
    got = wavfolder.load(root)
    assert got.files["val"] == ["no/clip00000_nohash_0.wav"] and len(got.files["test"]) == 2
    assert len(got.files["train"]) == 9
    plain = tmp_path / "speakers"
    for k in range(40):                          # 20 speakers, two clips each
        _wav(plain / ("yes" if k % 2 else "no") / f"spk{k // 2:02d}_nohash_{k % 2}.wav",
             np.zeros(100), RATE)
    split_of = {rel.rsplit("/")[-1].split("_nohash_")[0]: part
                for part, rels in wavfolder.load(plain).files.items() for rel in rels}
    for part, rels in wavfolder.load(plain).files.items():
        assert all(split_of[r.rsplit("/")[-1].split("_nohash_")[0]] == part for r in rels)


def test_other_rates_channels_and_lengths_fit_one_second(tmp_path):
    root = tmp_path / "sc"
    tone = np.sin(np.arange(4000) / 3.0) * 0.5
    _wav(root / "a" / "x_nohash_0.wav", tone, 8000, channels=2)           # 0.5 s at 8 kHz
    _wav(root / "b" / "y_nohash_0.wav", np.full(24000, 0.25), RATE)       # 1.5 s
    _wav(root / wavfolder.NOISE / "hum.wav", tone, 8000)
    got = wavfolder.load(root)
    x = np.concatenate([v for v in got.audio.values()])
    assert x.shape == (2, RATE) and len(got.noise) == 1 and len(got.noise[0]) == 8000
    a = x[np.concatenate(list(got.y.values())) == 0][0]
    assert np.abs(a[:7900]).max() > 0.4 and np.all(a[8100:] == 0)           # padded at the end
    before = got.sha256
    _wav(root / "b" / "y_nohash_0.wav", np.full(24000, 0.2), RATE)
    assert wavfolder.load(root).sha256 != before


@pytest.mark.parametrize("make, says", [
    (lambda r: None, "no such folder"),
    (lambda r: _wav(r / "yes" / "a.wav", np.zeros(10), RATE), "1 label folder"),
    (lambda r: (_wav(r / "yes" / "a.wav", np.zeros(10), RATE), (r / "no").mkdir()),
     "the label folder\\(s\\) no hold no .wav"),
    (lambda r: (_wav(r / "yes" / "a.wav", np.zeros(10), RATE),
                (r / "no").mkdir(), (r / "no" / "b.wav").write_text("x")), "no/b.wav: not a PCM"),
    (lambda r: (_wav(r / "yes" / "a.wav", np.zeros(10), RATE),
                _wav(r / "no" / "b.wav", np.zeros(10), RATE),
                (r / "testing_list.txt").write_text("yes/gone.wav\n")), "names 1 file"),
    (lambda r: (_wav(r / "yes" / "a.wav", np.zeros(10), RATE),
                _wav(r / "no" / "b.wav", np.zeros(10), RATE),
                (r / "testing_list.txt").write_text("yes/a.wav\nno/b.wav\n")),
     "leave some for training"),
])
def test_a_folder_it_cannot_use_gets_one_clear_error(tmp_path, make, says):
    root = tmp_path / "sc"
    if "no such" not in says:
        root.mkdir()
    make(root)
    with pytest.raises(DataError, match=says):
        wavfolder.load(root)


def test_background_noise_makes_a_silence_class_and_is_mixed_into_training_clips(tmp_path):
    from edgernn.tasks.audio import SILENCE, load_folder

    root = wavfolder.write(_clips(n_per=20), tmp_path / "sc")
    (root / "validation_list.txt").write_text("".join(
        f"{lab}/clip{k:05d}_nohash_0.wav\n" for lab, k in (("no", 0), ("yes", 20))))
    (root / "testing_list.txt").write_text("no/clip00001_nohash_0.wav\n")
    clean = wavfolder.load(root)
    hum = 0.3 * np.sin(2 * np.pi * 50 * np.arange(3 * RATE) / RATE)
    _wav(root / wavfolder.NOISE / "hum.wav", hum, RATE)
    data = load_folder(root)
    assert data.labels == ["no", "yes", SILENCE]
    for part, s in (("train", data.train), ("val", data.val), ("test", data.test)):
        n = len(clean.y[part])
        extra = int(np.ceil(0.1 * n))                       # 10 % silence in every split
        assert len(s) == n + extra and (s.y[n:] == 2).all() and (s.y[:n] == clean.y[part]).all()
        quiet = s.x[n:].reshape(extra, -1)
        assert np.abs(quiet).max() <= 0.3 + 1e-4 and quiet.std() > 0
        mixed = s.x[:n].reshape(n, -1)
        changed = np.abs(mixed - clean.audio[part][:, :mixed.shape[1]]).max(1) > 1e-6
        if part == "train":                                 # about 80 % get noise, volume <= 0.1
            assert 0.6 <= changed.mean() <= 0.95, changed.mean()
            assert np.abs(mixed - clean.audio[part][:, :mixed.shape[1]]).max() <= 0.03 + 1e-4
        else:
            assert not changed.any()                        # held-out clips stay as recorded
    again = load_folder(root)                               # the same folder, the same data
    assert np.array_equal(again.train.x, data.train.x)


def test_keywords_make_every_other_word_one_unknown_class_read_again_alike(tmp_path):
    from edgernn.tasks.audio import UNKNOWN, load_folder

    words = ("down", "go", "no", "up", "yes")
    root = wavfolder.write(_clips(n_per=20, labels=words), tmp_path / "sc")
    clean = wavfolder.load(root)
    data = load_folder(root, keywords=["yes", "no"])
    assert data.labels == ["no", "yes", UNKNOWN]
    for part, s in (("train", data.train), ("val", data.val), ("test", data.test)):
        y, audio = clean.y[part], clean.audio[part]
        keyword = np.isin(y, [2, 4])                       # "no", "yes" in the folder's order
        n, others = int(keyword.sum()), int((~keyword).sum())
        got = s.x.reshape(len(s), -1)
        assert len(s) == n + min(others, int(np.ceil(0.1 * n)))   # 10 % as many unknowns
        assert (s.y[:n] == np.where(y[keyword] == 2, 0, 1)).all()
        assert np.array_equal(got[:n], audio[keyword][:, :got.shape[1]])
        assert (s.y[n:] == 2).all()                       # each unknown is another word's clip
        for clip in got[n:]:
            assert any(np.array_equal(clip, a[:got.shape[1]]) for a in audio[~keyword])
    # a trained model's labels read the folder the same way (validate, quantize)
    again = load_folder(root, labels=data.labels)
    assert np.array_equal(again.train.x, data.train.x) and np.array_equal(again.test.y,
                                                                          data.test.y)
    with pytest.raises(DataError, match="no word folder maybe for --keywords; its folders are"):
        load_folder(root, keywords=["yes", "maybe"])
    with pytest.raises(DataError, match="every word folder is a keyword"):
        load_folder(root, keywords=list(words))


def test_train_keywords_through_the_cli_and_later_stages_read_them_again(tmp_path):
    pytest.importorskip("torch")
    from edgernn.checkpoint import load_checkpoint
    from edgernn.tasks.resolve import data_for_checkpoint
    from tests.conftest import run_cli

    root = wavfolder.write(_clips(n_per=12, labels=("go", "no", "yes")), tmp_path / "sc")
    out = run_cli("train", "--task", "keyword", "--data", root, "--keywords", "yes,no",
                  "--epochs", "1", "-o", tmp_path / "m.pt")
    assert out.returncode == 0, out.stderr
    ckpt = load_checkpoint(tmp_path / "m.pt")
    assert ckpt.labels == ["no", "yes", "_unknown_"]
    # validate and quantize find the data as training read it, from the model's labels
    data = data_for_checkpoint(ckpt, stage="validate", model="m.pt")
    assert data.labels == ckpt.labels and set(data.test.y) <= {0, 1, 2}
    bad = run_cli("train", "--task", "forecast", "--keywords", "yes", "-o", tmp_path / "f.pt")
    assert bad.returncode != 0 and "--keywords is for --task keyword on a folder" in bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "f.pt").exists()
