"""`lrlab.locks`: one writer per output folder, across processes and threads, never stale."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from lrlab.errors import LrlabError
from lrlab.locks import LOCK_NAME, FolderLock

SRC = Path(__file__).resolve().parents[1] / "src"

HOLD = """
import sys, time
from lrlab.locks import FolderLock
with FolderLock(sys.argv[1], "test holder"):
    print("held", flush=True)
    time.sleep(600)
"""


def hold_in_another_process(folder: Path) -> subprocess.Popen[str]:
    """A process holding `folder`'s lock until it is killed."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline() == "held\n"
    return process


def test_a_second_process_is_refused_naming_the_holder_until_it_dies(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    holder = hold_in_another_process(folder)
    try:
        with pytest.raises(LrlabError) as refused:
            FolderLock(folder, "lrlab train").acquire()
        message = str(refused.value)
        assert f"in use by PID {holder.pid} on host {socket.gethostname()}" in message
        assert "test holder" in message and "\n" not in message
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # Killed, it leaves its lock file behind; the lock went with the process.
    assert (folder / LOCK_NAME).exists()
    with FolderLock(folder, "lrlab train"):
        assert str(os.getpid()) in (folder / LOCK_NAME).read_text()
    assert not (folder / LOCK_NAME).exists()


def test_reentrant_in_one_thread_exclusive_between_threads(tmp_path: Path) -> None:
    folder = tmp_path / "study"
    errors: list[str] = []

    def other_thread() -> None:
        try:
            FolderLock(folder, "other").acquire()
        except LrlabError as error:
            errors.append(str(error))

    with FolderLock(folder, "outer"), FolderLock(folder, "inner"):
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert len(errors) == 1 and "in use by another thread of this process" in errors[0]
    # Released by the outer exit only: now anyone may take it.
    thread = threading.Thread(target=lambda: FolderLock(folder, "later").acquire())
    thread.start()
    thread.join()
    assert errors == [errors[0]]


def test_outputs_are_checked_before_any_work(tmp_path: Path) -> None:
    a_file = tmp_path / "results.txt"
    a_file.write_text("keep me")
    with pytest.raises(LrlabError, match="results.txt: is a file, not a folder"):
        FolderLock(a_file, "x").acquire()
    with pytest.raises(LrlabError, match="cannot make the folder"):
        FolderLock(a_file / "run", "x").acquire()
    assert a_file.read_text() == "keep me"


def test_a_folder_made_for_nothing_is_removed_again(tmp_path: Path) -> None:
    with FolderLock(tmp_path / "empty" / "run", "x"):
        assert (tmp_path / "empty" / "run").is_dir()
    assert not (tmp_path / "empty" / "run").exists()
    with FolderLock(tmp_path / "written", "x"):
        (tmp_path / "written" / "record.json").write_text("{}")
    assert [p.name for p in (tmp_path / "written").iterdir()] == ["record.json"]
    (tmp_path / "existing").mkdir()
    with FolderLock(tmp_path / "existing", "x"):
        pass
    assert (tmp_path / "existing").is_dir()


def test_a_lock_file_removed_while_being_locked_is_not_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The holder releases (and removes the lock file) between our open and our flock: the lock
    we then get is on a file nobody else will open, so it must be taken again on a new one."""
    import fcntl

    import lrlab.locks

    folder = tmp_path / "run"
    folder.mkdir()
    real_flock = fcntl.flock
    calls = []

    def flock_after_a_release(fd: int, operation: int) -> None:
        if not calls:
            (folder / LOCK_NAME).unlink()
        calls.append(operation)
        real_flock(fd, operation)

    monkeypatch.setattr(lrlab.locks.fcntl, "flock", flock_after_a_release)
    with FolderLock(folder, "x"):
        assert len(calls) == 2
        monkeypatch.setattr(lrlab.locks.fcntl, "flock", real_flock)
        check = subprocess.run(
            [sys.executable, "-c", HOLD, str(folder)],
            env={**os.environ, "PYTHONPATH": str(SRC)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert check.returncode == 1 and "in use by PID" in check.stderr
