"""Writing files so that nothing is ever left half-written.

A write goes to a temporary file beside the target (``.NAME.PID.RANDOM.tmp``), is flushed to
disk, and replaces the target in one rename. The new file gets the permissions a plain
``open(path, "w")`` would give (the umask applies; an existing file keeps its mode). A target
that is a symbolic link is followed: the file it points to is replaced and the link stays. A
crash (even ``kill -9``) can leave a temporary file behind; the next save to the same path
removes those whose writer is gone. :func:`atomic_folder` does the same for a whole folder.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_leftovers(path: Path) -> None:
    """Temporary files of earlier writes to ``path`` whose process has died."""
    prefix = f".{path.name}."
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        pid = name[len(prefix):-len(".tmp")].split(".")[0]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    On any error the temporary file is removed and ``path`` keeps its old content (or stays
    absent).
    """
    path = Path(path)
    if path.is_symlink():                    # replace what the link points to, keep the link
        path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(path)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        mode = os.stat(path).st_mode & 0o7777
    except OSError:
        # created the way open() creates a file, so the process's umask applies (reading the
        # umask would mean setting it, which races with other threads)
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        mode = os.stat(tmp).st_mode & 0o7777
    try:
        yield tmp
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; on success it takes ``path``'s place
    whole (an existing folder there is removed, so no file of an earlier write lingers). On
    any error the temporary folder is removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}.{secrets.token_hex(4)}"
    tmp = path.parent / f".{path.name}.{tag}.tmp"
    old = path.parent / f".{path.name}.{tag}.old"
    tmp.mkdir(mode=0o777)
    try:
        yield tmp
        if path.exists():
            os.rename(path, old)
        os.rename(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def holds_files(folder: str | os.PathLike) -> bool:
    """``folder`` exists and is not empty."""
    try:
        return any(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return False


@contextlib.contextmanager
def exclusive(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` for the block, through a lock file beside it
    (``.NAME.lock``: the file itself is replaced on every save, so it cannot carry the lock).
    Raises :class:`FileLockedError` at once, naming the holder's pid, when another process
    holds it. The lock dies with its process, even on ``kill -9``; a clean exit also removes
    the lock file (one left by a killed process is simply taken over)."""
    import fcntl

    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.parent / f".{path.name}.lock"
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise FileLockedError(path, holder) from None
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)          # its holder removed that file as we opened it: lock the new one
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)                      # while still held: no one can hold it now
        os.close(fd)                             # releases the lock


class FileLockedError(OSError):
    def __init__(self, path: Path, holder: str):
        super().__init__(f"{path} is in use by another process (pid {holder})")
        self.path, self.holder = path, holder


def scratch_folder(kind: str) -> tempfile.TemporaryDirectory:
    """A temporary folder ``edgernn-KIND-PID-*`` that names its owner, so that one left behind
    by a killed process is removed by the next :func:`scratch_folder` of the same kind."""
    root = Path(tempfile.gettempdir())
    prefix = f"edgernn-{kind}-"
    with contextlib.suppress(OSError):
        for entry in os.scandir(root):
            if not entry.name.startswith(prefix) or not entry.is_dir(follow_symlinks=False):
                continue
            pid = entry.name[len(prefix):].split("-")[0]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(entry.path, ignore_errors=True)
    return tempfile.TemporaryDirectory(prefix=f"{prefix}{os.getpid()}-")
