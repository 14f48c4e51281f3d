"""Storage faults: the outbox's file system is full, read-only, or failing.

SQLite and the OS say the same few things in many words; they are translated here, once, into
a ``StorageError`` with a short ``kind`` the agent reports (``docs/protocol.md``,
``storage_fault``). Anything else (a bug, a locked database) is not a storage fault and is
left to propagate.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from pathlib import Path
from typing import Final, Literal

StorageKind = Literal["full", "read_only", "io_error", "corrupt"]

# What a person reads in the storage_fault alarm.
KIND_WORDS: Final[dict[str, str]] = {
    "full": "data filesystem full",
    "read_only": "data filesystem read-only",
    "io_error": "disk I/O error",
    "corrupt": "outbox file damaged",
}

_SQLITE_KINDS: Final[dict[int, StorageKind]] = {
    sqlite3.SQLITE_FULL: "full",
    sqlite3.SQLITE_READONLY: "read_only",
    sqlite3.SQLITE_IOERR: "io_error",
    sqlite3.SQLITE_CANTOPEN: "io_error",
    sqlite3.SQLITE_CORRUPT: "corrupt",
    sqlite3.SQLITE_NOTADB: "corrupt",
}
_ERRNO_KINDS: Final[dict[int, StorageKind]] = {
    errno.ENOSPC: "full",
    errno.EDQUOT: "full",
    errno.EROFS: "read_only",
    errno.EIO: "io_error",
}


class StorageError(Exception):
    """The outbox could not write (or read) its file: ``kind`` says how, ``detail`` in words."""

    def __init__(self, kind: StorageKind, detail: str) -> None:
        super().__init__(f"{KIND_WORDS[kind]}: {detail}")
        self.kind: StorageKind = kind
        self.detail = detail


def storage_error(err: BaseException, *, directory: Path | None = None) -> StorageError | None:
    """The storage fault ``err`` is, or None when it is no storage fault.

    ``directory``: the outbox's folder. A read-only remount often reaches SQLite as a plain
    I/O error (ext4 after ``errors=remount-ro``); the file system's own flag tells them apart.
    """
    kind: StorageKind | None
    if isinstance(err, sqlite3.Error):
        code = getattr(err, "sqlite_errorcode", None)
        kind = _SQLITE_KINDS.get(code & 0xFF) if isinstance(code, int) else _by_words(str(err))
    elif isinstance(err, OSError):
        kind = _ERRNO_KINDS.get(err.errno or 0, "io_error")
    else:
        kind = None
    if kind is None:
        return None
    if kind == "io_error" and directory is not None:
        # SQLite says "I/O error" whatever errno it got (ext4 turned read-only after an error
        # still says rw in its mount flags): a write of our own asks the kernel.
        kind = _probe(directory) or kind
    return StorageError(kind, str(err) or type(err).__name__)


def free_bytes(directory: Path) -> int | None:
    """Bytes an unprivileged process may still write on ``directory``'s file system."""
    try:
        st = os.statvfs(directory)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def _probe(directory: Path) -> StorageKind | None:
    """How a small write in ``directory`` fails (None: it does not)."""
    probe = directory / ".storage-probe"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"\0" * 4096)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as err:
        return _ERRNO_KINDS.get(err.errno or 0, "io_error")
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    return None


def _by_words(text: str) -> StorageKind | None:
    """For an sqlite3 error without a code (raised by the module itself, not by SQLite)."""
    words = text.lower()
    if "disk is full" in words:
        return "full"
    if "readonly" in words or "read-only" in words:
        return "read_only"
    if "i/o error" in words or "unable to open" in words:
        return "io_error"
    if "malformed" in words or "not a database" in words:
        return "corrupt"
    return None
