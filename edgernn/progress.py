"""A small progress bar on stderr: redrawn in place on a terminal, one line per update otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, total: int, label: str = "", stream: TextIO | None = None,
                 enabled: bool = True, width: int = 24):
        self.total, self.label, self.width, self.enabled = max(1, total), label, width, enabled
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.done = 0
        self.start = time.perf_counter()

    def update(self, n: int = 1, note: str = "") -> None:
        self.done = min(self.total, self.done + n)
        if self.enabled and self.tty:
            self._draw(note, final=False)

    def close(self, note: str = "") -> None:
        if self.enabled:
            self._draw(note, final=True)

    def _draw(self, note: str, final: bool) -> None:
        frac = self.done / self.total
        filled = int(frac * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        elapsed = time.perf_counter() - self.start
        text = f"{self.label} [{bar}] {frac:4.0%} {elapsed:5.1f}s {note}".rstrip()
        if self.tty:
            self.stream.write("\r" + text + ("\n" if final else ""))
        elif final:
            self.stream.write(text + "\n")
        self.stream.flush()


_STAGES = {"on": False}


def show_stages(on: bool = True) -> None:
    """Let long library stages (validate, quantize) say what they are doing on stderr; the CLI
    turns this on, the Python API leaves it off."""
    _STAGES["on"] = on


def log(message: str, enabled: bool = True) -> None:
    """A progress or log line: stderr, so stdout stays for results."""
    if enabled:
        print(message, file=sys.stderr, flush=True)


def stage(message: str) -> None:
    """A line announcing a stage that may take seconds (shown when :func:`show_stages` is on)."""
    log(message, _STAGES["on"])
