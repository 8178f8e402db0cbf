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
import threading
from pathlib import Path
from typing import Iterator

def _make_parents(path: Path) -> list[Path]:
    """Create ``path``'s missing parent folders; the ones created, outermost first."""
    missing = []
    for parent in path.parents:
        if parent.exists():
            break
        missing.append(parent)
    path.parent.mkdir(parents=True, exist_ok=True)
    return missing[::-1]


def _undo_parents(created: list[Path]) -> None:
    """Remove the folders :func:`_make_parents` created, where they are still empty: a failed
    write leaves nothing behind, not even the folder it was to go in."""
    for folder in reversed(created):
        with contextlib.suppress(OSError):
            folder.rmdir()


def _named(exc: OSError, path: Path) -> OSError:
    """``exc`` naming ``path`` when it names no file (a full disk is reported by write(), which
    knows no name)."""
    if exc.filename is None and exc.errno is not None:
        return type(exc)(exc.errno, exc.strerror or str(exc), str(path))
    return exc


def real_target(path: str | os.PathLike) -> Path:
    """What writing ``path`` writes: the file a symbolic link leads to (the link stays). A link
    that leads back to itself is refused (OSError ELOOP, naming the link), not replaced by a
    file."""
    import errno

    path = Path(path)
    if not path.is_symlink():
        return path
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, "it is a symbolic link that leads back to itself (a "
                                       "loop); point it at a file, or remove it", str(path)) \
                from None
    return Path(os.path.realpath(path))


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
    path = real_target(path)                 # replace what a link points to, keep the link
    created = _make_parents(path)
    _remove_leftovers(path)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    done = False
    try:
        try:
            mode = os.stat(path).st_mode & 0o7777
        except OSError:
            # created the way open() creates a file, so the process's umask applies (reading
            # the umask would mean setting it, which races with other threads)
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            mode = os.stat(tmp).st_mode & 0o7777
        yield tmp
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        done = True
    except OSError as exc:
        raise _named(exc, path) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if not done:
            _undo_parents(created)


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
    created = _make_parents(path)
    tag = f"{os.getpid()}.{secrets.token_hex(4)}"
    tmp = path.parent / f".{path.name}.{tag}.tmp"
    old = path.parent / f".{path.name}.{tag}.old"
    done = False
    try:
        tmp.mkdir(mode=0o777)
        yield tmp
        if path.exists():
            os.rename(path, old)
        os.rename(tmp, path)
        done = True
    except OSError as exc:
        raise _named(exc, path) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
        if not done:
            _undo_parents(created)


def holds_files(folder: str | os.PathLike) -> bool:
    """``folder`` exists and is not empty."""
    try:
        return any(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return False


_HELD: dict[str, int] = {}           # paths this process holds: exclusive() is reentrant
_HELD_GUARD = threading.Lock()


@contextlib.contextmanager
def exclusive(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` for the block, through a lock file beside it
    (``.NAME.lock``: the file itself is replaced on every save, so it cannot carry the lock).
    Raises :class:`FileLockedError` at once, naming the holder's pid, when another process
    holds it, and :class:`HardLinkedError` for a file with more than one name (a writer
    through another name would take another lock file). Reentrant within a process: a save
    made while the process holds the lock goes through. The lock dies with its process, even on
    ``kill -9``; a clean exit also removes the lock file (one left by a killed process is simply
    taken over)."""
    import fcntl

    path = real_target(path)
    key = os.path.abspath(path)
    with _HELD_GUARD:
        if key in _HELD:
            _HELD[key] += 1
            mine = True
        else:
            mine = False
    if mine:
        try:
            yield
        finally:
            with _HELD_GUARD:
                _HELD[key] -= 1
                if not _HELD[key]:
                    del _HELD[key]
        return
    with contextlib.suppress(FileNotFoundError):
        links = os.stat(path).st_nlink
        if links > 1:
            raise HardLinkedError(path, links)
    created = _make_parents(path)
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
    with _HELD_GUARD:
        _HELD[key] = 1
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        with _HELD_GUARD:
            del _HELD[key]
        with contextlib.suppress(OSError):
            os.unlink(lock)                      # while still held: no one can hold it now
        os.close(fd)                             # releases the lock
        if not path.exists():
            _undo_parents(created)


class HardLinkedError(OSError):
    def __init__(self, path: Path, links: int):
        super().__init__(f"{path} has {links} names (hard links)")
        self.path, self.links = path, links


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
