"""The default backend: one worker process per run on this machine.

    python -m training.worker RUN_FOLDER [--resume]

A fresh interpreter rather than a fork: the server's threads and CUDA state are not copied,
nothing but the folder path is handed over, and the worker runs in its own session, so it keeps
training through a restart of the server, which then finds it by its pid file (and, since it
is no longer this process's child, judges it alive by its heartbeat).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from models.files import write_atomically
from training.device_queue import pid_alive
from training.store import HEARTBEAT_FILE, LOG_FILE, PID_FILE, RUN_FILE

SIGKILL = getattr(signal, "SIGKILL", signal.SIGTERM)  # Windows has no SIGKILL; there SIGTERM ends a process
HEARTBEAT_STALE_S = 20.0  # a worker this server did not start is presumed dead when its heartbeat is older
START_GRACE_S = 30.0  # time a worker has to write its first heartbeat
KILL_WAIT_S = 5.0  # kill() returns once the worker is gone, or after this long
REPO_ROOT = Path(__file__).resolve().parents[2]

# Children started by this process, by pid, whichever backend started them: only the parent
# can learn a child's exit code, and polling it also reaps the child (no zombies).
_children: dict[int, subprocess.Popen] = {}


def track_child(child: subprocess.Popen) -> None:
    """Count ``child`` among this process's workers: its exit code is then read (and the child
    reaped) by this module, and ``worker_gone`` explains how it ended."""
    _children[child.pid] = child


def collect_ended_children() -> None:
    """Reap every child that has ended (its exit code stays in its Popen for later)."""
    for child in list(_children.values()):
        if child.returncode is None:
            child.poll()


class LocalProcessBackend:
    """One worker process per run on this machine (see the module docstring)."""

    name = "local"

    def launch(self, run_dir: Path, resume: bool) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        command = [sys.executable, "-m", "training.worker", str(run_dir)] + (["--resume"] if resume else [])
        (run_dir / HEARTBEAT_FILE).unlink(missing_ok=True)
        with open(run_dir / LOG_FILE, "ab") as log:
            child = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
        track_child(child)
        write_atomically(run_dir / PID_FILE, f"{child.pid} {time.time()}".encode())

    def request_stop(self, run_dir: Path) -> None:
        pid = self._live_pid(run_dir)
        if pid is not None:
            _signal(pid, signal.SIGTERM)

    def kill(self, run_dir: Path) -> None:
        pid = self._live_pid(run_dir)
        if pid is None:
            return
        _signal(pid, SIGKILL)
        deadline = time.time() + KILL_WAIT_S
        while time.time() < deadline and self.worker_gone(run_dir) is None:
            time.sleep(0.02)

    def worker_gone(self, run_dir: Path) -> str | None:
        pid, launched_at = _read_pid(run_dir)
        if pid is None:
            return None if _age(run_dir / RUN_FILE) < START_GRACE_S else "the worker never started"
        child = _children.get(pid)
        if child is not None:
            code = child.poll()
            return None if code is None else _exit_reason(code, run_dir)
        heartbeat_age = _age(run_dir / HEARTBEAT_FILE)
        if pid_alive(pid) and (heartbeat_age < HEARTBEAT_STALE_S
                               or (heartbeat_age == float("inf") and time.time() - launched_at < START_GRACE_S)):
            return None
        return ("the worker process ended without saying why (it may have been killed, "
                "or the computer restarted)")

    def collect_ended(self) -> None:
        collect_ended_children()

    def _live_pid(self, run_dir: Path) -> int | None:
        pid, _ = _read_pid(run_dir)
        return pid if pid is not None and self.worker_gone(run_dir) is None else None


def _read_pid(run_dir: Path) -> tuple[int | None, float]:
    try:
        pid, launched_at = (run_dir / PID_FILE).read_text().split()
        return int(pid), float(launched_at)
    except (OSError, ValueError):
        return None, 0.0


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return float("inf")


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _exit_reason(code: int, run_dir: Path) -> str:
    if code == -SIGKILL:
        return "the worker was killed (perhaps it ran out of memory)"
    if code < 0:
        return f"the worker was ended by the signal {signal.Signals(-code).name}"
    last_line = _last_line(run_dir / LOG_FILE)
    return f"the worker stopped unexpectedly (exit code {code})" + (f": {last_line}" if last_line else "")


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1].strip()[:300] if lines else ""
