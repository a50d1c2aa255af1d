"""The device queue: runs take a device in the order they were submitted, at most ``limit`` at
a time, across processes and across restarts of the server.

    with device_slot(root, "cuda0", limit=1, ticket=f"{queued_at:017.6f}-{run_id}", should_stop=...):
        ...  # train

Waiting tickets are files in $GLASSBOX_HOME/queue/<device>/, named so that they sort in submit
order; a slot is an exclusive lock on a file in $GLASSBOX_HOME/locks/. Only the standard library:
a worker waits here before torch has loaded.
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path

QUEUE_POLL_S = 0.1


class StopRequested(Exception):
    """A stop arrived before training began: there is nothing to save, so just end."""


@contextmanager
def device_slot(root: Path, device_key: str, limit: int, ticket: str, should_stop):
    """Wait, in submit order, until one of ``limit`` slots on the device is free, and hold it.

    A slot is an exclusive lock on a file: the OS releases it when the holder exits, even when
    it is killed, so a crashed run never blocks the queue, and the queue outlives a restart of
    the server. Raises StopRequested if a stop arrives while waiting.
    """
    queue = root / "queue" / device_key
    locks = root / "locks"
    queue.mkdir(parents=True, exist_ok=True)
    locks.mkdir(parents=True, exist_ok=True)
    my_ticket = queue / ticket
    my_ticket.write_text(str(os.getpid()))
    held = None
    try:
        while held is None:
            if should_stop():
                raise StopRequested()
            if _place_in_queue(queue, ticket) < limit:
                held = _try_lock_any(locks, device_key, limit)
            if held is None:
                time.sleep(QUEUE_POLL_S)
        my_ticket.unlink(missing_ok=True)
        yield
    finally:
        my_ticket.unlink(missing_ok=True)
        if held is not None:
            os.close(held)  # closing the file releases its lock


def _place_in_queue(queue: Path, ticket: str) -> int:
    """How many live waiting tickets are ahead of ours (tickets sort by submit time)."""
    ahead = 0
    for other in sorted(p.name for p in queue.iterdir()):
        if other >= ticket:
            break
        try:
            pid = int((queue / other).read_text() or 0)
        except (OSError, ValueError):
            continue
        if pid and not pid_alive(pid):
            (queue / other).unlink(missing_ok=True)  # its worker died while waiting
            continue
        ahead += 1
    return ahead


def _try_lock_any(locks: Path, device_key: str, limit: int) -> int | None:
    for slot in range(limit):
        fd = os.open(locks / f"{device_key}.{slot}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        if _try_lock(fd):
            return fd
        os.close(fd)
    return None


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists and is not a zombie (a dead, unreaped child)."""
    if os.name != "posix":
        return True  # no cheap, safe check; the heartbeat decides
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True
