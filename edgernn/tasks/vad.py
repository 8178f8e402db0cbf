"""Voice activity: is this 10 ms of audio speech? One label per hop, from raw samples.

The network reads the front end's log-mel features (:mod:`edgernn.tasks.audio`, computed in the
exported step graph) and says ``speech`` or ``silence`` at every step, so a device streams it
with a persistent state, as it streams silero-vad. The metric is the share of hops labelled
right (scored hops only; padding is never scored), next to the majority label.

Built-in data (``speechmix``): espeak-ng utterances and pauses with noise
(:func:`edgernn.tasks.speech.mixtures`). The user's data: a folder of WAV files and a
``speech.csv`` of ``file,start,end`` rows (seconds) naming where each file's speech is.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from edgernn.config import ModelConfig, TrainConfig
from edgernn.errors import DataError
from edgernn.frontend import Fbank
from edgernn.tasks.audio import hops
from edgernn.tasks.base import Split, TaskData, builtin_ref, file_ref, split_by_fraction
from edgernn.tasks.keyword import ClassifyTask

LABELS = ["silence", "speech"]
SEGMENTS = "speech.csv"
HELP = (f"A voice-activity folder holds WAV files and {SEGMENTS}, with a header line file,start,"
        f"end and one row per stretch of speech (seconds from the file's start); a file with "
        f"no rows is all silence.")


class VadTask(ClassifyTask):
    name = "vad"
    summary = "voice activity: speech or silence every 10 ms, from raw 16 kHz samples"
    metric = "accuracy"
    threshold = 0.90
    metric_tolerance = 0.01
    reset_every = None            # one long stream: the state is never reset
    dataset = "speechmix"
    # several 10 ms hops a call: a call's fixed cost, not its arithmetic, sets a one-hop step's
    # price, and at 30 ms a call the model costs 0.53-0.63x silero-vad per second of audio
    # (benchmarks/vad_bench.py); `edgernn run` feeds it 30 ms a call
    graph = "chunk"
    model = ModelConfig(cell="gru", input_size=40, hidden_size=32, num_layers=1, output_size=2,
                        head="classify_step")
    training = TrainConfig(epochs=15, batch_size=32, lr=3e-3, patience=4)
    data_help = HELP

    def __init__(self):
        super().__init__(self.name)

    def generate(self, seed: int = 0, size: float = 1.0) -> TaskData:
        from edgernn.tasks.speech import mixtures

        n = max(16, int(400 * size))
        made = mixtures(n + 2 * max(4, n // 8), seed=seed)
        frames = hops(made.audio, Fbank().hop)
        y = made.speech[:, :frames.shape[1]].astype(np.int64)
        a, b = n, n + max(4, n // 8)
        data = TaskData(Split(frames[:a], y[:a]), Split(frames[a:b], y[a:b]),
                        Split(frames[b:], y[b:]), labels=list(LABELS), audio=Fbank())
        data.ref = builtin_ref(self.dataset, seed, size, data, Fbank().hop)
        return data

    def stream(self, steps: int, seed: int = 0) -> np.ndarray:
        from edgernn.tasks.speech import mixtures

        hop = Fbank().hop
        made = mixtures(1, seed=seed, seconds=steps * hop / Fbank().sample_rate + 0.01)
        return hops(made.audio, hop)[0, :steps]

    def load(self, path, **_) -> TaskData:
        from edgernn.wav import read

        path, fbank = Path(path), Fbank()
        if not path.is_dir():
            raise DataError(f"{path} is not a folder. {HELP}")
        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".wav")
        if len(files) < 3:
            raise DataError(f"{path} holds {len(files)} WAV file(s); at least 3 are needed "
                            f"(train, validation, test). {HELP}")
        segments = _segments(path / SEGMENTS, {p.name for p in files})
        audio = [read(p, rate=fbank.sample_rate)[0] for p in files]
        steps = [len(a) // fbank.hop for a in audio]
        if min(steps) < 1:
            raise DataError(f"{files[int(np.argmin(steps))]} is shorter than one 10 ms hop")
        x = np.zeros((len(files), max(steps), fbank.hop), np.float32)
        y = np.zeros((len(files), max(steps)), np.int64)
        per_second = 1000.0 / fbank.hop_ms                  # hops a second
        for i, (p, a, t) in enumerate(zip(files, audio, steps)):
            x[i, :t] = a[:t * fbank.hop].reshape(t, fbank.hop)
            for start, end in segments.get(p.name, []):
                y[i, int(start * per_second):int(np.ceil(end * per_second))] = 1
        lengths = np.array(steps, np.int64)
        parts = [Split(x[s], y[s], None if (lengths == max(steps)).all() else lengths[s])
                 for s in split_by_fraction(len(files))]
        data = TaskData(*parts, labels=list(LABELS), audio=fbank)
        data.ref = file_ref(path, data, fbank.hop)
        return data

    def sized(self, data: TaskData):
        return self.model, self.training, ""

    def loss(self, outputs, y, mask=None):
        import torch.nn.functional as F

        if mask is None:
            return F.cross_entropy(outputs.reshape(-1, outputs.shape[-1]), y.reshape(-1))
        return F.cross_entropy(outputs[mask], y[mask])

    def predictions(self, outputs, split):
        mask = split.mask()
        labels = outputs.argmax(-1)
        return labels.reshape(-1) if mask is None else labels[mask]

    def item_scores(self, outputs, split, post=None) -> np.ndarray:
        mask = split.mask()
        y = split.y.reshape(-1) if mask is None else split.y[mask]
        return (self.predictions(outputs, split) == y).astype(np.float64)

    def baseline(self, split) -> dict[str, float]:
        mask = split.mask()
        y = split.y.reshape(-1) if mask is None else split.y[mask]
        share = float(np.mean(y))
        return {"majority_accuracy": max(share, 1.0 - share)}

    def baselines(self, data: TaskData) -> dict[str, float]:
        return self.baseline(data.test)

    def advice(self, result=None) -> str:
        return "try more --epochs, a larger --hidden, or more recordings"


def _segments(path: Path, names: set[str]) -> dict[str, list[tuple[float, float]]]:
    """``speech.csv``'s rows by file name, each checked."""
    if not path.is_file():
        raise DataError(f"{path} does not exist. {HELP}")
    out: dict[str, list[tuple[float, float]]] = {}
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = csv.DictReader(fh)
        if rows.fieldnames is None or not {"file", "start", "end"} <= set(rows.fieldnames):
            raise DataError(f"{path}: the header must name file, start and end (it is "
                            f"{','.join(rows.fieldnames or [])}). {HELP}")
        for line, row in enumerate(rows, start=2):
            try:
                start, end = float(row["start"]), float(row["end"])
            except (TypeError, ValueError):
                raise DataError(f"{path} line {line}: start and end must be seconds, got "
                                f"{row['start']!r} and {row['end']!r}") from None
            if not 0 <= start < end:
                raise DataError(f"{path} line {line}: a stretch must have 0 <= start < end, "
                                f"got {start:g} to {end:g}")
            if row["file"] not in names:
                raise DataError(f"{path} line {line}: no WAV file {row['file']!r} in the folder")
            out.setdefault(row["file"], []).append((start, end))
    return out
