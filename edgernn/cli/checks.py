"""Checks that run before the long work: inputs readable, outputs writable.

Each raises one error naming the path and what to do, so a command with a bad argument stops
in well under a second instead of after training or quantizing.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgernn.errors import ConfigError, DataError


def readable(path: Path | None, what: str, folder: bool = False) -> None:
    """``path`` exists and can be read; a folder only where ``folder`` allows one (--data: a
    folder of WAV clips)."""
    if path is None or str(path) == "-":
        return
    path = Path(path)
    if not path.exists():
        raise DataError(f"{what} {path} does not exist")
    if path.is_dir() and not folder:
        raise DataError(f"{what} {path} is a directory; pass a file")
    if not os.access(path, os.R_OK):
        raise DataError(f"{what} {path} is not readable (permission denied)")


def same_file(a, b) -> bool:
    """Do two paths name one file (through links, ``..`` or another spelling)?"""
    if a is None or b is None or str(a) == "-" or str(b) == "-":
        return False
    try:
        return os.path.samefile(a, b)
    except OSError:                       # one does not exist: compare where they would be
        return os.path.realpath(a) == os.path.realpath(b)


def writable(path: Path | None, what: str, inputs: dict | None = None) -> None:
    """``path`` can be written: not a directory, not one of the command's ``inputs`` ({what
    it is: path}), and its folder exists (or can be made) and takes new files."""
    if path is None:
        return
    path = Path(path)
    for name, given in (inputs or {}).items():
        if same_file(path, given):
            raise ConfigError(f"{what} {path} is {name} this command reads; writing there would "
                              f"destroy it. Choose another output path")
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a directory; give a file name")
    folder = path.parent
    while not folder.exists():
        if folder.parent == folder:
            break
        folder = folder.parent
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{what} {path}: {folder} is a file, not a folder; choose another "
                          f"path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {path}: the folder {folder} is not writable; choose a "
                          f"location you can write to")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"{what} {path} exists and is read-only; choose another path or "
                          f"make it writable")


def not_inside(folder: Path, inputs: dict) -> None:
    """A folder the command replaces whole must not hold the command's own inputs."""
    for name, path in inputs.items():
        if path is not None and Path(path).resolve().is_relative_to(Path(folder).resolve()):
            raise ConfigError(f"{folder} holds {name} ({path}), and the folder is replaced "
                              f"whole; choose another output folder")


def folder_writable(path: Path, what: str) -> None:
    writable(Path(path) / ".edgernn-probe", what)
