"""A folder of WAV files, one sub-folder per label: the Speech Commands layout.

    DIR/yes/0a7c2a8d_nohash_0.wav     label "yes"
    DIR/_background_noise_/*.wav       noise to mix in, not a label
    DIR/validation_list.txt            optional: relative paths of the validation clips
    DIR/testing_list.txt               optional: ... and of the test clips

Every clip is read with :func:`edgernn.wav.read` at the front end's sample rate and cut or
zero-padded to ``seconds``. Without the two lists, a clip's split follows Speech Commands' own
rule: a hash of its name before ``_nohash_`` (the speaker), so one speaker's clips stay in one
split; 10 % validation, 10 % test. :attr:`WavFolder.sha256` names the folder's content (every
file's path and bytes), as a data file's hash names a file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgernn.errors import DataError
from edgernn.wav import read

NOISE = "_background_noise_"
LISTS = {"val": "validation_list.txt", "test": "testing_list.txt"}
SPLITS = ("train", "val", "test")


@dataclass
class WavFolder:
    """Clips (N, seconds * rate) float32 per split, their label ids, and the noise files."""

    audio: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    labels: tuple[str, ...]
    rate: int
    sha256: str
    noise: list[np.ndarray] = field(default_factory=list)
    files: dict[str, list[str]] = field(default_factory=dict)     # split -> relative paths


def load(folder, rate: int = 16000, seconds: float = 1.0) -> WavFolder:
    """The clips of ``folder`` (see the module docstring)."""
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder (a folder of WAV files, one sub-folder per "
                        f"label, as Speech Commands is laid out)")
    labels = tuple(sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != NOISE))
    clips = {lab: sorted((root / lab).rglob("*.wav")) for lab in labels}
    empty = [lab for lab, files in clips.items() if not files]
    if len(labels) < 2 or empty:
        raise DataError(f"{root}: " + (f"the label folder(s) {', '.join(empty)} hold no .wav "
                                       f"file" if empty else
                                       f"{len(labels)} label folder(s); a classifier needs at "
                                       f"least two, one sub-folder of .wav files per label"))
    listed = {part: _listed(root, name) for part, name in LISTS.items()}
    n = int(round(seconds * rate))
    audio = {p: [] for p in SPLITS}
    y = {p: [] for p in SPLITS}
    files = {p: [] for p in SPLITS}
    for k, lab in enumerate(labels):
        for path in clips[lab]:
            rel = path.relative_to(root).as_posix()
            part = _split(rel, listed)
            audio[part].append(_fit(read(path, rate=rate)[0], n))
            y[part].append(k)
            files[part].append(rel)
    for part, names in listed.items():
        missing = sorted(names - set(files[part]))
        if missing:
            raise DataError(f"{root / LISTS[part]} names {len(missing)} file(s) that are not "
                            f"clips in a label folder, e.g. {missing[0]}; fix the list")
    if not audio["train"]:
        raise DataError(f"{root}: every clip is in the validation or test list; leave some "
                        f"for training")
    noise_files = sorted((root / NOISE).glob("*.wav")) if (root / NOISE).is_dir() else []
    return WavFolder(
        audio={p: np.stack(v) if v else np.zeros((0, n), np.float32) for p, v in audio.items()},
        y={p: np.asarray(v, np.int64) for p, v in y.items()}, labels=labels, rate=rate,
        sha256=digest(root),
        noise=[read(p, rate=rate)[0] for p in noise_files], files=files)


def _listed(root: Path, name: str) -> set[str]:
    path = root / name
    if not path.is_file():
        return set()
    return {line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines()
            if line.strip()}


def _split(rel: str, listed: dict[str, set[str]]) -> str:
    """The listed split, or, with no lists, Speech Commands' hash of the speaker's name."""
    if any(listed.values()):
        return next((part for part, names in listed.items() if rel in names), "train")
    speaker = rel.rsplit("/", 1)[-1].split("_nohash_")[0]
    bucket = int(hashlib.sha1(speaker.encode()).hexdigest(), 16) % 100
    return "val" if bucket < 10 else "test" if bucket < 20 else "train"


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    """Cut to ``n`` samples, or pad with zeros at the end."""
    return x[:n] if len(x) >= n else np.concatenate([x, np.zeros(n - len(x), np.float32)])


def digest(folder) -> str:
    """The folder's content hash: every .wav file's path and bytes, the two lists, and a voice
    activity folder's speech.csv."""
    root = Path(folder)
    paths = sorted(p for p in root.rglob("*.wav") if p.is_file())
    paths += [root / name for name in (*LISTS.values(), "speech.csv") if (root / name).is_file()]
    from edgernn.tasks.base import file_sha256

    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + file_sha256(p).encode())
    return h.hexdigest()


def write(clips, folder, prefix: str = "clip") -> Path:
    """Clips (:class:`edgernn.tasks.speech.Clips`) as a Speech Commands folder of 16-bit WAV
    files, one sub-folder per label; refuses a folder that already holds files."""
    import wave

    root = Path(folder)
    if root.exists() and any(root.iterdir()):
        raise DataError(f"{root} already holds files; give an empty or new folder")
    for i, (x, k) in enumerate(zip(clips.audio, clips.y)):
        out = root / clips.labels[k] / f"{prefix}{i:05d}_nohash_0.wav"
        out.parent.mkdir(parents=True, exist_ok=True)
        pcm = np.clip(np.round(x.astype(np.float64) * 32768), -32768, 32767).astype("<i2")
        with wave.open(str(out), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(clips.rate)
            w.writeframes(pcm.tobytes())
    return root
