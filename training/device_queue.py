"""The device queue: runs take a device in turn, at most ``limit`` at a time, across processes
and across restarts of the server.

    with device_slot(root, "cuda0", limit=1, ticket=f"{queued_at:017.6f}-{run_id}", should_stop=...,
                     owner=person_id):
        ...  # train

The turn is fair for a class: round-robin over the runs' owners, oldest first within an owner
(``training.limits.round_for`` gives a joining run its round, ``fair_order`` serves the rounds in
order); without owners it is first come, first served.

Waiting tickets are files in $GLASSBOX_HOME/queue/<device>/, named so that they sort in submit
order and holding "pid round owner"; a slot is an exclusive lock on a file in
$GLASSBOX_HOME/locks/, and beside it a ``.holder`` file says whose run holds it, in which round.
``queue_place`` tells a page where a run stands in line. Ray runs wait in lines of their own here
(``ray-<shape>``, tickets of no process: ``join_line(..., pid=0)``), served by
``training.backends.ray_turns``. Only the standard library: a worker
waits here before torch has loaded.
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path

from training.limits import Waiting, fair_order, round_for

QUEUE_POLL_S = 0.1


class StopRequested(Exception):
    """A stop arrived before training began: there is nothing to save, so just end."""


@contextmanager
def device_slot(root: Path, device_key: str, limit: int, ticket: str, should_stop, owner: str | None = None):
    """Wait for our turn (``training.limits.fair_order``) until one of ``limit`` slots on the
    device is free, and hold it.

    A slot is an exclusive lock on a file: the OS releases it when the holder exits, even when
    it is killed, so a crashed run never blocks the queue, and the queue outlives a restart of
    the server. Raises StopRequested if a stop arrives while waiting.
    """
    locks = root / "locks"
    my_ticket = root / "queue" / device_key / ticket
    turn = join_line(root, device_key, ticket, owner)
    held = None
    try:
        while held is None:
            if should_stop():
                raise StopRequested()
            if _place_in_queue(root, device_key, ticket) < limit:
                held = _try_lock_any(locks, device_key, limit)
            if held is None:
                time.sleep(QUEUE_POLL_S)
        fd, holder = held
        _write_entry(holder, owner, turn)
        my_ticket.unlink(missing_ok=True)
        yield
    finally:
        my_ticket.unlink(missing_ok=True)
        if held is not None:
            held[1].unlink(missing_ok=True)
            os.close(held[0])  # closing the file releases its lock


def join_line(root: Path, device_key: str, ticket: str, owner: str | None, holding=None, pid: int | None = None) -> int:
    """Put ``ticket`` in the device's line, in its round (``round_for``), and return the round.

    ``holding``: a function giving the runs that hold the device now (default: the holders of its
    slots, ``holders``). ``pid``: whose ticket it is (default: this process, and the ticket goes
    when the process dies); 0 for a ticket that no process holds and the keeper of the line
    removes itself (the Ray backend's: its runs wait for an actor, not in a process)."""
    queue, locks = root / "queue" / device_key, root / "locks"
    queue.mkdir(parents=True, exist_ok=True)
    locks.mkdir(parents=True, exist_ok=True)
    with exclusive(locks / f"{device_key}.line.lock"):  # one joins at a time: each sees the others' rounds
        held = holders(root, device_key) if holding is None else holding()
        turn = round_for(owner, waiting_tickets(root, device_key), held)
        _write_entry(queue / ticket, owner, turn, os.getpid() if pid is None else pid)
    return turn


def _write_entry(path: Path, owner: str | None, turn: int, pid: int | None = None) -> None:
    """Write "pid round owner" to ``path`` whole (a hidden temporary file renamed over it)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(f"{os.getpid() if pid is None else pid} {turn} {owner or ''}")
    os.replace(temporary, path)


def _read_entry(path: Path) -> tuple[int, int, str] | None:
    """(pid, round, owner) of a ticket or holder file (an older ticket holds only its pid: round
    0, nobody's); None if it is gone or unreadable."""
    try:
        parts = path.read_text().split(maxsplit=2)
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0, parts[2].strip() if len(parts) > 2 else ""
    except (OSError, ValueError, IndexError):
        return None


def waiting_tickets(root: Path, device_key: str) -> list[Waiting]:
    """The live waiting tickets of a device (a ticket whose worker died is removed)."""
    queue = root / "queue" / device_key
    tickets = []
    for name in sorted(p.name for p in queue.iterdir()) if queue.is_dir() else []:
        if name.startswith("."):
            continue  # being written
        entry = _read_entry(queue / name)
        if entry is None:
            continue
        if entry[0] and not pid_alive(entry[0]):
            (queue / name).unlink(missing_ok=True)  # its worker died while waiting
            continue
        tickets.append(Waiting(name, entry[2], entry[1]))
    return tickets


def holders(root: Path, device_key: str) -> list[Waiting]:
    """The runs holding the device's slots now (whose, and their round)."""
    held = []
    for holder in sorted((root / "locks").glob(f"{device_key}.*.holder")):
        entry = _read_entry(holder)
        if entry is not None and pid_alive(entry[0]):  # a holder that died let go of its lock
            held.append(Waiting(holder.name, entry[2], entry[1]))
    return held


def queue_order(root: Path, device_key: str) -> list[str]:
    """The device's waiting tickets in the order they will take it."""
    return fair_order(waiting_tickets(root, device_key))


def _place_in_queue(root: Path, device_key: str, ticket: str) -> int:
    """How many live waiting tickets take the device before ours."""
    order = queue_order(root, device_key)
    return order.index(ticket) if ticket in order else len(order)


def queue_place(root: Path, run_id: str) -> tuple[str, int, list[str]] | None:
    """(device, place in line counted from 1, the run ids ahead of it in order) for a run whose
    worker waits in a queue; None if it is not waiting (not yet queued, or already training)."""
    queues = root / "queue"
    for device in sorted(p.name for p in queues.iterdir()) if queues.is_dir() else []:
        order = queue_order(root, device)
        for place, ticket in enumerate(order):
            if ticket.endswith(f"-{run_id}"):
                return device, place + 1, [_run_of(other) for other in order[:place]]
    return None


def _run_of(ticket: str) -> str:
    return ticket.split("-", 1)[1]


def _try_lock_any(locks: Path, device_key: str, limit: int) -> tuple[int, Path] | None:
    """(the locked file, its holder file) of a free slot, or None."""
    for slot in range(limit):
        fd = os.open(locks / f"{device_key}.{slot}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        if _try_lock(fd):
            return fd, locks / f"{device_key}.{slot}.holder"
        os.close(fd)
    return None


@contextmanager
def exclusive(path: Path):
    """Hold an exclusive lock on ``path`` (waiting for it) for the ``with`` block: across
    processes, one at a time (e.g. a person's check of their runs and the creation of a new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        while not _try_lock(fd):
            time.sleep(0.01)
        yield
    finally:
        os.close(fd)


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
