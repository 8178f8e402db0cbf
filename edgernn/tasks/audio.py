"""Audio classification from WAV clips: the frames are hops of raw samples, the network reads the
front end's log-mel features (edgernn/frontend.py), and the exported step graph computes them.

The data's frames are ``(clips, steps, hop)`` samples in [-1, 1]. Training computes the
features once (:class:`AudioFeatures`, the same arithmetic as the graph's, in PyTorch) and
trains the network on them, normalised per mel bin with the training split's statistics. The
checkpoint keeps the front end's options and those statistics; the exporters wrap the network
in :class:`edgernn.exporters.from_torch.audio_front.AudioFront`, which takes samples, so that
export's, validate's and the quantize gate's checks feed samples to both sides, as a device
does.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from edgernn.contract import Normalization
from edgernn.frontend import LOG_FLOOR, Fbank
from edgernn.tasks.base import Split, TaskData, file_ref


def log_mel(fbank: Fbank, pcm, tail=None):
    """PyTorch: ``pcm`` (B, T, hop) samples and the previous ``tail`` (B, frame - hop), zeros
    when None -> (log-mel features (B, T, mel), new tail): the graph's arithmetic
    (:func:`edgernn.exporters.audio.write`)."""
    import torch

    batch, steps, hop = pcm.shape
    if tail is None:
        tail = pcm.new_zeros(batch, fbank.tail)
    buffer = torch.cat([tail, pcm.reshape(batch, steps * hop)], dim=1)
    index = (torch.arange(steps)[:, None] * hop +
             torch.arange(fbank.frame_length)[None, :])                 # (T, L)
    frames = buffer[:, index]                                           # (B, T, L)
    basis, banks = _constants(fbank)
    parts = frames @ basis
    mel = (parts * parts) @ banks                      # re^2 and im^2 through the filters
    return torch.log(torch.clamp(mel, min=LOG_FLOOR)), buffer[:, steps * hop:]


@functools.lru_cache(maxsize=8)
def _constants(fbank: Fbank):
    """The spectrum basis and mel banks as tensors, made once per set of options."""
    import torch

    return (torch.from_numpy(fbank.spectrum_basis()),
            torch.from_numpy(fbank.power_mel_banks()))


@dataclass
class AudioFeatures:
    """The front end a model was trained behind, and its features' statistics."""

    fbank: Fbank
    norm: Normalization
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def fit(cls, train: Split, fbank: Fbank) -> "AudioFeatures":
        x = features(fbank, train.x)
        flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
        std = np.maximum(flat.std(0), 1e-3)
        made = cls(fbank, Normalization(flat.mean(0).tolist(), std.tolist()))
        made._cache[id(train)] = (train, Split(x, train.y, train.lengths, train.start))
        return made

    def split(self, s: Split) -> Split:
        """``s`` with its frames of samples turned into features (kept for the next call)."""
        hit = self._cache.get(id(s))
        if hit is not None and hit[0] is s:
            return hit[1]
        out = Split(features(self.fbank, s.x), s.y, s.lengths, s.start)
        self._cache[id(s)] = (s, out)
        return out

    def to_dict(self) -> dict:
        return {"fbank": self.fbank.to_dict(), "features": {"mean": list(self.norm.mean),
                                                            "std": list(self.norm.std)}}

    @classmethod
    def from_dict(cls, d: dict, where: str) -> "AudioFeatures":
        return cls(Fbank.from_dict(d["fbank"]), Normalization.from_dict(d["features"], where))


def features(fbank: Fbank, frames: np.ndarray, batch: int = 256) -> np.ndarray:
    """(N, T, hop) samples -> (N, T, mel) float32 log-mel features, each clip from silence."""
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(frames), batch):
            pcm = torch.from_numpy(np.ascontiguousarray(frames[i:i + batch], np.float32))
            out.append(log_mel(fbank, pcm)[0].numpy())
    return np.concatenate(out) if out else np.zeros((0, frames.shape[1], fbank.mel_bins),
                                                    np.float32)


def hops(audio: np.ndarray, hop: int) -> np.ndarray:
    """(clips, samples) -> (clips, steps, hop): whole hops, a partial last one dropped."""
    steps = audio.shape[1] // hop
    return np.ascontiguousarray(audio[:, :steps * hop].reshape(len(audio), steps, hop))


def load_folder(path, fbank: Fbank | None = None, *, keywords=None,
                labels: list[str] | None = None) -> TaskData:
    """A folder of WAV clips, one sub-folder per label (:mod:`edgernn.tasks.wavfolder`), as
    frames of one hop of samples each: (clips, steps, hop). ``keywords``: the labels to learn,
    every other word folder one ``_unknown_`` class (:func:`with_unknown`); ``labels``: a
    trained model's, whose words and ``_unknown_`` are read the same way again."""
    from edgernn.errors import DataError
    from edgernn.tasks import wavfolder

    fbank = fbank or Fbank()
    folder = wavfolder.load(path, rate=fbank.sample_rate)
    if not keywords and labels and UNKNOWN in labels:
        keywords = [lab for lab in labels if lab not in (UNKNOWN, SILENCE)]
    if keywords:
        with_unknown(folder, keywords, where=path)
    labels = list(folder.labels)
    if folder.noise:
        labels = with_noise(folder)
    splits = {part: Split(hops(folder.audio[part], fbank.hop), folder.y[part])
              for part in wavfolder.SPLITS}
    for part in ("val", "test"):
        if not len(splits[part].y):
            raise DataError(f"{path}: no clip fell in the {part} split; add "
                            f"validation_list.txt and testing_list.txt, or more speakers")
    data = TaskData(**splits, labels=labels, audio=fbank)
    data.ref = file_ref(path, data, fbank.hop)
    return data


UNKNOWN = "_unknown_"
UNKNOWN_SHARE = 0.1           # unknown clips in each split, as a share of its keywords' clips


def with_unknown(folder, keywords, where, seed: int = 0) -> None:
    """Speech Commands' recipe for words that are not keywords (TensorFlow's speech-commands
    example, its defaults): the ``keywords`` folders stay labels; the clips of every other word
    folder become one ``_unknown_`` class, 10 % as many in each split as the keywords' clips
    there, drawn once with a fixed seed (the same folder gives the same data). The labels
    become the keywords, sorted, then ``_unknown_``."""
    from edgernn.errors import DataError

    keywords = sorted(set(keywords))
    missing = [k for k in keywords if k not in folder.labels]
    if missing:
        raise DataError(f"{where}: no word folder {', '.join(missing)} for --keywords; its "
                        f"folders are {', '.join(folder.labels)}")
    others = [k for k, lab in enumerate(folder.labels) if lab not in keywords]
    if not others:
        raise DataError(f"{where}: every word folder is a keyword, so nothing is left to make "
                        f"{UNKNOWN} from; drop --keywords or name fewer")
    rng = np.random.default_rng(seed)
    index = {folder.labels.index(k): i for i, k in enumerate(keywords)}
    for part in folder.audio:
        y = folder.y[part]
        known = np.flatnonzero(np.isin(y, list(index)))
        pool = np.flatnonzero(np.isin(y, others))
        count = min(len(pool), int(np.ceil(UNKNOWN_SHARE * len(known))))
        keep = np.concatenate([known, np.sort(rng.choice(pool, count, replace=False))])
        folder.audio[part] = folder.audio[part][keep]
        folder.y[part] = np.array([index.get(int(v), len(keywords)) for v in y[keep]],
                                  y.dtype)
        if part in folder.files:
            folder.files[part] = [folder.files[part][i] for i in keep]
    folder.labels = (*keywords, UNKNOWN)


SILENCE = "_silence_"
SILENCE_SHARE = 0.1           # silence clips added to each split, as a share of its clips
NOISY_SHARE, NOISE_VOLUME = 0.8, 0.1


def with_noise(folder, seed: int = 0) -> list[str]:
    """Speech Commands' recipe for ``_background_noise_`` (TensorFlow's speech-commands
    example, its defaults): every split gets a ``_silence_`` class of one-second stretches of
    the noise files at a random volume up to full, 10 % as many as its clips (unless the
    folder already has ``_silence_``); and 80 % of the training clips get a stretch of noise
    mixed in at a volume up to 0.1. Mixed once, with a fixed seed, so the same folder gives
    the same data. Returns the labels."""
    rng = np.random.default_rng(seed)
    n = folder.audio["train"].shape[1]
    noise = [v for v in folder.noise if len(v) >= n] or [np.resize(v, n) for v in folder.noise]

    def stretches(count: int) -> np.ndarray:
        out = np.zeros((count, n), np.float32)
        for i in range(count):
            v = noise[int(rng.integers(len(noise)))]
            at = int(rng.integers(len(v) - n + 1))
            out[i] = v[at:at + n]
        return out

    labels = list(folder.labels)
    if SILENCE not in labels:
        labels.append(SILENCE)
    silence = labels.index(SILENCE)
    train = folder.audio["train"].copy()
    noisy = np.flatnonzero(rng.random(len(train)) < NOISY_SHARE)
    volume = rng.uniform(0, NOISE_VOLUME, (len(noisy), 1)).astype(np.float32)
    train[noisy] = np.clip(train[noisy] + stretches(len(noisy)) * volume, -1.0, 1.0)
    folder.audio["train"] = train
    if SILENCE not in folder.labels:
        for part in folder.audio:
            count = int(np.ceil(SILENCE_SHARE * len(folder.audio[part])))
            quiet = stretches(count) * rng.uniform(0, 1, (count, 1)).astype(np.float32)
            folder.audio[part] = np.concatenate([folder.audio[part], quiet])
            folder.y[part] = np.concatenate([folder.y[part], np.full(count, silence,
                                                                     folder.y[part].dtype)])
    return labels
