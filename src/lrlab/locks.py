"""One writer per output folder: an exclusive lock held while a run, sweep or study writes.

Two processes writing one folder mix their files (the config and logs of one run, the record and
checkpoints of the other), so every command that writes a folder holds `FolderLock` on it for as
long as it writes. The lock is an ``fcntl.flock`` on ``FOLDER/.lrlab.lock``. The operating system
drops a flock when the process holding it ends, however it ends (exit, exception, SIGKILL, a
crash), so a lock never outlives its holder: the file a killed process leaves behind is simply
locked again by the next writer. The file names its holder (PID, host, command, start time), so
a second writer is refused with a message saying who holds the folder.

A lock is re-entrant within one thread (a study holds its folder and calls code that locks it
again); another thread, or another process, is refused at once rather than left waiting. Locks
need a POSIX system and a file system with working ``flock`` (local disks; NFS v4 emulates it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import socket
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from lrlab.errors import LrlabError

LOCK_NAME = ".lrlab.lock"


@dataclasses.dataclass
class _Held:
    """A lock this process holds: its open lock file, owning thread and nesting depth."""

    fd: int
    thread: int
    depth: int
    created: bool  # the folder was made by this lock, so an empty one is removed on release


_HELD: dict[Path, _Held] = {}
_GUARD = threading.Lock()


class FolderLock:
    """An exclusive lock on an output folder, made if missing (a context manager).

    `acquire` refuses, with an `LrlabError` naming the holder, a folder another process or
    thread holds, and refuses a path that is a file; `release` gives the folder back (and
    removes it again if this lock made it and nothing was written there)."""

    def __init__(self, folder: str | os.PathLike[str], command: str) -> None:
        self.folder = Path(folder)
        self.command = command
        self._key: Path | None = None

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock (nested takes by the holding thread only count)."""
        if self._key is not None:
            raise RuntimeError(f"{self.folder}: this FolderLock is already held")
        created = prepare_folder(self.folder)
        key = self.folder.resolve()
        with _GUARD:
            held = _HELD.get(key)
            if held is not None:
                if held.thread != threading.get_ident():
                    raise LrlabError(
                        f"{self.folder}: in use by another thread of this process; "
                        "wait for it to finish or choose another folder"
                    )
                held.depth += 1
                self._key = key
                return
            fd = _lock_file(self.folder)
            _write_holder(fd, self.command)
            _HELD[key] = _Held(fd, threading.get_ident(), 1, created)
            self._key = key

    def release(self) -> None:
        """Give the lock back; the last release of a nested lock unlocks the folder."""
        if self._key is None:
            return
        key, self._key = self._key, None
        with _GUARD:
            held = _HELD[key]
            held.depth -= 1
            if held.depth:
                return
            del _HELD[key]
            # Unlinked while still locked: a writer that opened the old file then finds, after
            # locking it, that the path no longer names it, and tries again (`_lock_file`).
            with contextlib.suppress(FileNotFoundError):
                (key / LOCK_NAME).unlink()
            os.close(held.fd)
            if held.created:
                with contextlib.suppress(OSError):  # not empty: it holds results
                    key.rmdir()


def prepare_folder(folder: Path) -> bool:
    """Make `folder` (and its parents) unless it exists; return whether it was made. A path that
    is a file, or one that cannot be made, is an `LrlabError`: checked before any work starts."""
    if folder.exists() and not folder.is_dir():
        raise LrlabError(f"{folder}: is a file, not a folder; choose another output folder")
    if folder.is_dir():
        return False
    try:
        folder.mkdir(parents=True)
    except FileExistsError:
        if not folder.is_dir():  # a parent (or the folder itself, just now) is a file
            raise LrlabError(f"{folder}: cannot make the folder (a file is in the way)") from None
        return False
    except OSError as error:
        raise LrlabError(f"{folder}: cannot make the folder ({error.strerror})") from None
    return True


_HOLDER_WAIT_S = 2.0


def _lock_file(folder: Path) -> int:
    """An open, flock'ed descriptor of ``folder/.lrlab.lock``, or an `LrlabError` naming who holds
    it."""
    path = folder / LOCK_NAME
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as error:
            raise LrlabError(
                f"{folder}: cannot write a lock file there ({error.strerror})"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe_holder(fd)
            os.close(fd)
            raise LrlabError(
                f"{folder}: in use by {holder}; wait for it to finish or choose another folder"
            ) from None
        except OSError as error:
            os.close(fd)
            raise LrlabError(
                f"{folder}: cannot lock the folder, the file system refuses locks "
                f"({error.strerror})"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the holder released and removed it between our open and our lock


def _write_holder(fd: int, command: str) -> None:
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": command,
        "since": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)


def _describe_holder(fd: int) -> str:
    """``PID 123 on host h (lrlab train, since ...)``, from the lock file's content."""
    # The holder writes its name just after taking the lock: a writer refused in between waits
    # for it briefly (at most _HOLDER_WAIT_S) rather than name no one.
    deadline = time.monotonic() + _HOLDER_WAIT_S
    while True:
        try:
            info: Any = json.loads(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
            keys = ("pid", "host", "command", "since")
            pid, host, command, since = (str(info[key]) for key in keys)
        except (OSError, ValueError, TypeError, KeyError):
            if time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            return "another process"  # a file written by a stranger
        return f"PID {pid} on host {host[:80]} ({command[:80]}, since {since})"


def _forget_after_fork() -> None:
    """A forked child holds none of its parent's locks: close its copies of the lock files
    (the parent's locks stay, as the parent's descriptors still hold them)."""
    for held in _HELD.values():
        os.close(held.fd)
    _HELD.clear()


os.register_at_fork(after_in_child=_forget_after_fork)
