"""Progress on stderr, so stdout stays for results: log lines through the standard ``logging``
module (logger ``edgernn``), and click's progress bar on a terminal.

Lines asked for (``verbose=True``, or the CLI) are shown on stderr, one plain message per line,
like a progress display; an application that wants them in its own logging gives the
``edgernn`` logger a handler of its own, and then they go there instead.
"""

from __future__ import annotations

import logging
import sys
import time

import click

logger = logging.getLogger("edgernn")
_STAGES = {"on": False}


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (redirected, captured, replaced)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def _ensure_output() -> None:
    """Lines asked for reach stderr even when the application configured no logging."""
    if not logger.handlers:
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)


def log(message: str, enabled: bool = True) -> None:
    """A progress or log line (logger ``edgernn``, level INFO)."""
    if enabled:
        _ensure_output()
        logger.info(message)
        for h in logger.handlers:
            h.flush()


def show_stages(on: bool = True) -> None:
    """Let long library stages (validate, quantize) say what they are doing; the CLI turns this
    on, the Python API leaves it off."""
    _STAGES["on"] = on


def stage(message: str) -> None:
    """A line announcing a stage that may take seconds (shown when :func:`show_stages` is on)."""
    log(message, _STAGES["on"])


class Progress:
    """A bar redrawn in place on a terminal (click's); elsewhere only the closing line, logged."""

    def __init__(self, total: int, label: str = "", enabled: bool = True):
        self.label, self.enabled, self.note = label, enabled, ""
        self.start = time.perf_counter()
        tty = enabled and sys.stderr.isatty()
        self._bar = click.progressbar(length=max(1, total), label=label, file=sys.stderr,
                                      width=24, item_show_func=lambda _: self.note) \
            if tty else None
        if self._bar is not None:
            self._bar.__enter__()

    def update(self, n: int = 1, note: str = "") -> None:
        if self._bar is not None:
            self.note = note
            self._bar.update(n)

    def close(self, note: str = "") -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None
        elapsed = time.perf_counter() - self.start
        log(f"{self.label} {elapsed:5.1f}s {note}".rstrip(), self.enabled)
