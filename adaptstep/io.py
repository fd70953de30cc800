"""Atomic file writes: write beside the target, then rename over it, so a crash never leaves half a file."""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success it replaces ``path`` in one rename.

    Args:
        path: The file to write.
        suffix: The temporary file's suffix (some writers need the right one).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix or path.suffix)
    os.close(handle)
    try:
        yield Path(temporary)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode of a new file
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(text)


LOCK_FILE = ".lock"  # in a folder that a run holds


class FolderInUse(OSError):
    """Another process holds the folder's lock."""


@contextmanager
def folder_lock(folder: str | Path, what: str = "run") -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` (made if missing) while the block runs, so two runs never write one folder.

    The lock is a ``fcntl.flock`` on ``folder/.lock``, which also records the holder's pid. The kernel drops the lock
    when the holder exits, even after SIGKILL, so a crashed run never leaves the folder locked.

    Args:
        folder: The folder.
        what: What holds it, for the error message.

    Raises:
        FolderInUse: If another process holds it; the message names the folder and the holder's pid.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(handle, 64, 0).decode(errors="replace").strip() or "?"
            raise FolderInUse(f"{folder} is in use by another {what} (pid {holder}); wait for it to end or choose "
                              "another folder") from None
        os.ftruncate(handle, 0)
        os.pwrite(handle, f"{os.getpid()}\n".encode(), 0)
        yield folder
    finally:
        os.close(handle)  # releases the lock


@contextmanager
def file_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive ``fcntl.flock`` on ``<path>.lock`` (beside ``path``), waiting for other holders.

    A read-modify-write of ``path`` inside the block never loses another process's update.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)


def check_writable(path: str | Path, what: str = "--out") -> Path:
    """Fail early, before any work, if ``path`` cannot be written as a file.

    It cannot where it is a folder, a path under a file or in a read-only folder. Makes the parent folder; leaves an
    existing file as it is.

    Args:
        path: The file to write.
        what: The option that named it, for the error.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        ValueError: Naming ``what``, the path and the reason.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} {path} is a folder; name a file")
    existed = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a"):
            pass
    except OSError as error:
        raise ValueError(f"cannot write {what} {path}: {error.strerror or error}") from None
    if not existed:
        path.unlink()
    return path
