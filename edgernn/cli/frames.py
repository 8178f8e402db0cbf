"""Frames for ``edgernn run``: read one at a time from a file or stdin, each with its line.

CSV takes the header row ``edgernn train`` takes; when the model's contract names its features,
the header must name the same ones, in the same order.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Iterator

import numpy as np

from edgernn.errors import DataError
from edgernn.tasks.base import not_numpy
from edgernn.csvio import fields, is_header, numbers

FORMATS = ("csv", "jsonl", "npy", "text", "wav", "pcm")


def guess_format(source: str, explicit: str | None, text_model: bool,
                 audio: bool = False) -> str:
    """The format given, else the file's suffix's; stdin is text, raw 16-bit samples for a
    model with an audio front end, else CSV."""
    if explicit:
        return explicit
    if source != "-":
        suffix = Path(source).suffix.lower()
        return {".npy": "npy", ".jsonl": "jsonl", ".json": "jsonl", ".txt": "text",
                ".wav": "wav"}.get(suffix, "text" if text_model else "csv")
    return "text" if text_model else "pcm" if audio else "csv"


class FrameReader:
    """Iterates ``(line, frame)``: ``line`` is the 1-based line (the row index for .npy)."""

    def __init__(self, source: str, fmt: str, feature_names: list[str] | None = None,
                 audio: dict | None = None):
        self.source, self.fmt, self.expected, self.audio = source, fmt, feature_names, audio
        self.header: list[str] | None = None
        self.where = "stdin" if source == "-" else source
        if fmt in ("wav", "pcm") and audio is None:
            raise DataError(f"{self.where}: this model takes frames of features, not audio; "
                            f"a {fmt.upper()} input needs a model trained on WAV clips "
                            f"(edgernn train --data FOLDER)")
        self.samples = None
        if fmt == "wav":                 # read whole here: a file it cannot read is refused
            from edgernn.wav import read     # before any step, as a file, not as a line

            self.samples = read(source, rate=audio["sample_rate"])[0]

    def __iter__(self) -> Iterator[tuple[int, object]]:
        if self.fmt == "npy":
            yield from self._npy()
            return
        if self.fmt in ("wav", "pcm"):
            yield from self._hops()
            return
        stream = sys.stdin if self.source == "-" else self._open()
        try:
            if self.fmt == "text":
                n = 0
                while True:
                    ch = stream.read(1)
                    if not ch:
                        return
                    n += 1
                    yield n, ch
            for n, line in enumerate(self._lines(stream), start=1):
                line = line.strip()
                if not line:
                    continue
                if n == 1 and self.fmt == "csv" and is_header(line):
                    self._check_header(line)
                    continue
                yield n, self._parse(n, line)
        finally:
            if stream is not sys.stdin:
                stream.close()

    def _lines(self, stream):
        try:
            for n, line in enumerate(stream):
                yield line.removeprefix("\ufeff") if n == 0 else line    # stdin's BOM too
        except UnicodeDecodeError as exc:
            raise DataError(f"{self.where} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                            f"save it as UTF-8") from None

    def _open(self):
        path = Path(self.source)
        if path.is_dir():
            raise DataError(f"{path} is a directory; pass a file of frames (or - for stdin)")
        try:
            return open(path, encoding="utf-8-sig")       # a BOM is not part of a name
        except FileNotFoundError:
            raise DataError(f"{path} does not exist; pass a file of frames (or - for stdin)") \
                from None
        except OSError as exc:
            raise DataError(f"cannot read {path}: {exc.strerror}") from None

    def _hops(self):
        """Hops of samples (the model's front end's), numbered from 1; the last one padded
        with zeros. WAV: read and resampled whole; pcm: raw 16-bit little-endian mono at the
        model's rate, read a hop at a time (arecord -f S16_LE -r 16000 -c 1 | ...)."""
        from edgernn.frontend import Fbank

        hop = Fbank.from_dict(self.audio).hop
        if self.samples is not None:
            for i, start in enumerate(range(0, len(self.samples), hop), start=1):
                yield i, _padded(self.samples[start:start + hop], hop)
            return
        stream = sys.stdin.buffer if self.source == "-" else open(self.source, "rb")
        try:
            for i in itertools.count(1):
                chunk = stream.read(2 * hop)
                if not chunk:
                    return
                if i == 1 and chunk[:4] == b"RIFF":       # a header read as samples: refuse
                    raise DataError(f"{self.where} holds a WAV file, not raw samples; pass it "
                                    f"by its path (edgernn run MODEL FILE.wav), or send raw "
                                    f"16-bit samples (arecord -t raw ...)")
                even = chunk[:len(chunk) // 2 * 2]
                yield i, _padded(np.frombuffer(even, "<i2").astype(np.float32) / 32768, hop)
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()

    def _npy(self):
        path = Path(self.source)
        if not path.is_file():
            raise DataError(f"{path} does not exist or is not a file")
        wrong = not_numpy(path, b"\x93NUMPY")
        if wrong:
            raise DataError(f"cannot read {path} as .npy: {wrong}; pass --format csv, jsonl or "
                            f"text for a text file")
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise DataError(f"cannot read {path} as .npy: {exc or type(exc).__name__}") from None
        if array.ndim == 0:
            raise DataError(f"{path} holds a single value, not frames; save an array of frames "
                            f"(steps, features)")
        for i, frame in enumerate(array, start=1):
            yield i, frame

    def _parse(self, n: int, line: str):
        try:
            if self.fmt == "jsonl":
                return np.asarray(json.loads(line))
            return numbers(line)
        except (ValueError, json.JSONDecodeError):
            want = "comma-separated numbers" if self.fmt == "csv" else "a JSON array"
            raise DataError(f"line {n} ({line[:50]!r}) is not a {self.fmt} frame; {want} "
                            f"expected") from None

    def _check_header(self, line: str) -> None:
        names = fields(line)
        if self.expected is not None and names != list(self.expected):
            raise DataError(f"the header of {self.where} names the columns {', '.join(names)}, "
                            f"but the model was trained on {', '.join(self.expected)} (in that "
                            f"order); reorder or rename the columns")
        self.header = names


def _padded(x: np.ndarray, n: int) -> np.ndarray:
    return x if len(x) == n else np.concatenate([x, np.zeros(n - len(x), np.float32)])
