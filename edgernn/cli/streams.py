"""stdout carries results only.

While a command runs, file descriptor 1 points at stderr, so whatever a library writes there
from C or C++ (an exporter dumping a graph, a runtime's log) lands with the progress messages;
Python's ``sys.stdout`` -- where the command prints its results -- is a copy of the real
stdout. Libraries that ``print()`` from Python are wrapped in :func:`quiet_prints`.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys


@contextlib.contextmanager
def results_only():
    """Route fd 1 to stderr for the duration; ``sys.stdout`` keeps writing to the real stdout."""
    try:
        sys.stdout.flush()
        real = os.dup(1)
    except (OSError, ValueError, AttributeError):      # no real stdout (closed, captured)
        yield
        return
    saved = sys.stdout
    os.dup2(2, 1)
    sys.stdout = io.TextIOWrapper(os.fdopen(real, "wb", closefd=False), encoding="utf-8",
                                  line_buffering=True, write_through=True)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        sys.stdout = saved
        os.dup2(real, 1)
        os.close(real)


@contextlib.contextmanager
def quiet_prints():
    """A library's Python ``print()`` goes to stderr, not into the results."""
    with contextlib.redirect_stdout(sys.stderr):
        yield
