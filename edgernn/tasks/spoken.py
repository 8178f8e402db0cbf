"""Keyword spotting on raw audio, and its built-in spoken clips.

``keyword`` is the classification task (:class:`~edgernn.tasks.keyword.ClassifyTask`) whose
built-in data is spoken: Speech Commands' ten keywords, other words as ``_unknown_`` and noise
alone as ``_silence_``, said by espeak-ng with noise mixed in
(:func:`edgernn.tasks.speech.synthesize`), as one-second clips of 10 ms hops of raw 16 kHz
samples. The network reads the front end's log-mel features, which the exported step graph
computes, and the label is read at a clip's last hop. With ``--data`` it reads what
``classify`` reads: a Speech Commands folder of WAV clips, an .npz of frames, or texts.

The splits are cut per label (80/10/10, seeded). espeak-ng says each (word, voice, rate,
pitch) once, so the rare clips that draw the same four share the utterance, under different
noise, level and placement: about 3 in 100 keyword clips at the default size.

The synthetic-feature clips that were ``keyword``'s data before stay ``classify``'s built-in
data: a quick classification set with no audio, for tests and the runtime's benchmarks.
"""

from __future__ import annotations

import numpy as np

from edgernn.config import ModelConfig, TrainConfig
from edgernn.frontend import Fbank
from edgernn.tasks.audio import hops
from edgernn.tasks.base import Split, TaskData, builtin_ref
from edgernn.tasks.keyword import ClassifyTask

PER_CLASS = 100               # clips of each label at size 1.0: 1,200 in all
SHARES = (0.8, 0.1, 0.1)      # of each label's clips: train, validation, test


class KeywordTask(ClassifyTask):
    summary = ("keyword spotting: which word a one-second clip of raw 16 kHz audio holds, "
               "read at its last 10 ms hop")
    dataset = "spokenwords"
    reset_every = 100             # hops in a one-second clip: a spotter resets per clip
    threshold = 0.90
    # GRU 128x1 in batches of 32 for 30 epochs: about 80 s on 2 cores after the 20 s espeak-ng
    # takes to say the clips; 0.933 held out (seed 0; 25 epochs gave 0.892 and 0.908 on seeds
    # 0 and 1, 40 epochs 0.958). On the same clips the classifier's LSTM 128x2 in batches of 64
    # for 12 epochs reached 0.442, LSTM 64x1 for 50 epochs 0.825, GRU 64x1 0.925 (docs/audio.md)
    model = ModelConfig(cell="gru", input_size=40, hidden_size=128, num_layers=1,
                        output_size=12, head="classify_last")
    training = TrainConfig(epochs=30, batch_size=32, lr=3e-3, patience=6)

    def __init__(self):
        super().__init__("keyword")

    def generate(self, seed: int = 0, size: float = 1.0) -> TaskData:
        from edgernn.tasks.speech import synthesize

        fbank = Fbank()
        clips = synthesize(max(10, int(round(PER_CLASS * size))), seed=seed)
        frames = hops(clips.audio, fbank.hop)
        parts = [Split(frames[i], clips.y[i]) for i in _stratified(clips.y, SHARES, seed)]
        data = TaskData(*parts, labels=list(clips.labels), audio=fbank)
        data.ref = builtin_ref(self.dataset, seed, size, data, fbank.hop)
        return data

    def sized(self, data: TaskData):
        """Spoken clips (built-in or a folder of WAV files): this task's GRU, or the small-set
        sizing of it; frames or texts from a file: what ``classify`` gives them."""
        if data.audio is None:
            from edgernn.tasks import get_task

            return get_task("classify").sized(data)
        return super().sized(data)

    def stream(self, steps: int, seed: int = 0) -> np.ndarray:
        """Clips back to back, in a seeded order of labels."""
        from edgernn.tasks.speech import LABELS, synthesize

        hop = Fbank().hop
        clips = synthesize(-(-steps // (self.reset_every * len(LABELS))), seed=seed)
        order = np.random.default_rng(seed).permutation(len(clips.audio))
        return hops(clips.audio[order], hop).reshape(-1, hop)[:steps]

    def advice(self, result=None) -> str:
        if result is not None and result.data.audio is None:        # frames or texts
            from edgernn.tasks import get_task

            return get_task("classify").advice(result)
        return ("try more clips (--size 2) or more --epochs; for real voices train on "
                "recordings (--data FOLDER, --keywords)")


def _stratified(y: np.ndarray, shares, seed: int) -> list[np.ndarray]:
    """Indices of each split: every label's clips, shuffled, cut in ``shares``."""
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in shares]
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        cuts = np.round(np.cumsum(shares)[:-1] * len(idx)).astype(int)
        for part, chunk in zip(parts, np.split(idx, cuts)):
            part.extend(chunk.tolist())
    return [np.sort(np.array(p, np.int64)) for p in parts]
