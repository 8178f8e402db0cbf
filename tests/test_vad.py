"""Voice activity (edgernn/tasks/vad.py): the labelling rule of the built-in mixtures, a model
trained on them through the real CLI, exported, and streamed over real speech no one here
recorded (tests/data/speech), and a user's folder of WAV files with speech.csv.

How well it agrees with silero-vad and webrtcvad is a benchmark figure
(benchmarks/vad_bench.py, docs/audio.md), not asserted here: this small model (160 mixtures)
has to reach the task's useful level on its own held-out mixtures.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import wave

import numpy as np
import pytest

pytest.importorskip("torch")
pytestmark = pytest.mark.slow

from edgernn.runtime import load  # noqa: E402
from edgernn.runtime.events import events  # noqa: E402
from edgernn.tasks import get_task  # noqa: E402
from edgernn.tasks.speech import HOP, mixtures, speech_hops  # noqa: E402
from tests import audiodata  # noqa: E402
from tests.conftest import run_cli  # noqa: E402
from tests.edgernn.test_training import SMALL  # noqa: E402
from tests.tolerances import SPLITS  # noqa: E402


def test_speech_is_loud_hops_with_short_pauses_bridged_and_30_ms_padding():
    clean = np.zeros(100 * HOP)
    for a, b in ((10, 20), (30, 40), (60, 70)):       # pauses of 10 and 20 hops between
        clean[a * HOP:b * HOP] = np.sin(np.arange((b - a) * HOP) * 0.3)
    got = speech_hops(clean)
    want = np.zeros(100, bool)
    want[7:43] = True                                 # 10-hop pause bridged, 3 hops each side
    want[57:73] = True                                # the 20-hop pause (200 ms) kept
    np.testing.assert_array_equal(got, want)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("vad")
    # tests/edgernn/test_training.py's small budget for vad, through the CLI
    size, _, training = SMALL["vad"]
    out = run_cli("train", "--task", "vad", "--size", size, "--epochs", training["epochs"],
                  "--lr", training["lr"], "-o", d / "v.pt", "--json", timeout=600)
    assert out.returncode == 0, out.stderr
    done = run_cli("export", d / "v.pt", "-o", d / "chunk.onnx")      # the task's default
    assert done.returncode == 0, done.stderr
    assert "a chunk graph, the 'vad' task's default" in done.stdout
    done = run_cli("export", d / "v.pt", "--graph", "step", "-o", d / "step.onnx")
    assert done.returncode == 0, done.stderr
    return d, json.loads(out.stdout)


def test_a_model_of_the_builtin_mixtures_labels_every_10_ms_of_real_speech(trained):
    d, result = trained
    assert result["reached_threshold"] and result["test"] >= 0.90, result    # the useful level
    assert result["test"] > result["baseline"]["majority_accuracy"], result
    samples = audiodata.recording()
    hops = samples[:len(samples) // HOP * HOP].reshape(-1, HOP)
    step = load(d / "step.onnx")
    assert step.labels == ["silence", "speech"] and step.contract.audio["hop_ms"] == 10
    y = step.stream().feed(hops)
    # the chunk graph (the default) takes 30 ms a call and gives the same outputs (fp32 sums
    # in another order: SPLITS)
    chunk = load(d / "chunk.onnx")
    assert chunk.graph == "chunk"
    stream = chunk.stream()
    z = np.concatenate([stream.feed(hops[i:i + 3]) for i in range(0, len(hops), 3)])
    np.testing.assert_allclose(z, y, atol=SPLITS)
    labels = [step.labels[i] for i in y.argmax(-1)]
    run = run_cli("run", d / "step.onnx", audiodata.SPEECH, "--every-hop")
    assert run.returncode == 0, run.stderr
    assert [json.loads(line)["label"] for line in run.stdout.splitlines()] == labels
    # by default, stretches of speech with their times (runtime/events.py's rules), 30 ms a
    # call of the chunk graph
    run = run_cli("run", d / "chunk.onnx", audiodata.SPEECH)
    assert run.returncode == 0, run.stderr
    got = [json.loads(line) for line in run.stdout.splitlines()]
    assert got == [e.to_dict() for e in events([step.labels[i] for i in z.argmax(-1)], 0.01)]
    assert all(e["event"] == "speech" and 0 <= e["start"] < e["end"] <= 12.0 for e in got)
    # any number of hops a call, the same hops' outputs; a step graph takes one
    run = run_cli("run", d / "chunk.onnx", audiodata.SPEECH, "--every-hop", "--hops", "7")
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [line["step"] for line in lines] == list(range(1, len(hops) + 1))
    np.testing.assert_allclose([line["y"] for line in lines], z, atol=SPLITS)
    run = run_cli("run", d / "step.onnx", audiodata.SPEECH, "--hops", "3")
    assert run.returncode == 2 and "--hops is for audio models with a chunk graph" in run.stderr


def _folder(root, seconds=2.0, count=6):
    made = mixtures(count, seed=3, seconds=seconds)
    root.mkdir()
    rows = []
    for i, (audio, speech) in enumerate(zip(made.audio, made.speech)):
        name = f"rec{i}.wav"
        with wave.open(str(root / name), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes((np.clip(audio, -1, 32767 / 32768) * 32768).astype("<i2").tobytes())
        edges = np.flatnonzero(np.diff(np.concatenate([[0], speech.astype(int), [0]])))
        rows += [(name, a / 100, b / 100) for a, b in zip(edges[::2], edges[1::2])]
    with open(root / "speech.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([("file", "start", "end"), *rows])
    return made


def test_a_folder_of_recordings_and_speech_csv_is_read_and_trained_on(tmp_path):
    made = _folder(tmp_path / "recs")
    data = get_task("vad").load(tmp_path / "recs")
    assert (len(data.train), len(data.val), len(data.test)) == (4, 1, 1)
    steps = made.audio.shape[1] // HOP
    y = np.concatenate([data.train.y, data.val.y, data.test.y])
    np.testing.assert_array_equal(y, made.speech[:, :steps].astype(np.int64))
    out = run_cli("train", "--task", "vad", "--data", tmp_path / "recs", "--epochs", "2",
                  "-o", tmp_path / "m.pt", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["data"]["kind"] == "file"


@pytest.fixture(scope="module")
def small_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("small") / "recs"
    _folder(root, seconds=0.5, count=3)
    return root


@pytest.mark.parametrize("edit, says", [
    (lambda p: (p / "speech.csv").unlink(), "speech.csv does not exist"),
    (lambda p: (p / "speech.csv").write_text("name,from,to\n"), "header must name file, start"),
    (lambda p: (p / "speech.csv").write_text("file,start,end\nrec0.wav,1,x\n"),
     "line 2: start and end must be seconds"),
    (lambda p: (p / "speech.csv").write_text("file,start,end\nrec0.wav,2,1\n"),
     "line 2: a stretch must have 0 <= start < end"),
    (lambda p: (p / "speech.csv").write_text("file,start,end\nnone.wav,0,1\n"),
     "no WAV file 'none.wav'"),
])
def test_a_bad_speech_csv_is_one_clear_message(small_folder, tmp_path, edit, says):
    from edgernn.errors import DataError

    folder = tmp_path / "recs"
    shutil.copytree(small_folder, folder)
    edit(folder)
    with pytest.raises(DataError, match=re.escape(says)):
        get_task("vad").load(folder)


def test_the_cli_says_it_once_with_no_traceback_and_writes_nothing(small_folder, tmp_path):
    folder = tmp_path / "recs"
    shutil.copytree(small_folder, folder)
    (folder / "speech.csv").write_text("file,start,end\nnone.wav,0,1\n")
    out = run_cli("train", "--task", "vad", "--data", folder, "-o", tmp_path / "m.pt")
    assert out.returncode != 0 and "no WAV file 'none.wav'" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "m.pt").exists()
