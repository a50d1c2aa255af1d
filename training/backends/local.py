"""The default backend: one worker process per run on this machine.

    python -m training.worker RUN_FOLDER [--resume]

A fresh interpreter rather than a fork: the server's threads and CUDA state are not copied,
nothing but the folder path is handed over, and the worker runs in its own session, so it keeps
training through a restart of the server, which then finds it by its pid file (and, since it
is no longer this process's child, judges it alive by its heartbeat).

Warm workers: after ``warm_up()`` (the app calls it), the backend keeps one spare worker that
has already imported torch (``python -m training.worker --warm``) and hands the next run to it
(its folder, on the spare's stdin), then starts a new spare. A run then starts training without
waiting for a fresh interpreter and torch. The spare is a process of its own like any worker,
so a crash or running out of memory in training still never touches the server. A spare is used
only if the environment it was started with is still this process's, but for the variables a
worker reads only when its run begins (``LATE_VARIABLES``, handed over with the run); a setting
that changed otherwise gets a fresh worker. A spare ends when the server does (its stdin closes).
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
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


class SparePool:
    """At most one warm worker waiting for a run, for this server process (see the module docstring)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._spare: subprocess.Popen | None = None
        self._env: dict | None = None
        self._ready = False  # the spare said it waits for a run
        self.wanted = False  # set by warm_up: from then on, a used spare is replaced

    def warm_up(self) -> None:
        """Have a spare ready (start one unless one lives, with this environment)."""
        with self._lock:
            self.wanted = True
            if self._usable():
                return
            self._retire()
            self._env, self._ready = worker_env(), False
            self._spare = subprocess.Popen(
                [sys.executable, "-m", "training.worker", "--warm"], cwd=REPO_ROOT, env=self._env,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                start_new_session=True, close_fds=True)

    def take(self, run_dir: Path, resume: bool) -> subprocess.Popen | None:
        """The spare, now working on this run (its output goes to the run's log); None if there is
        no usable spare (none was wanted, it died, the environment changed, or it is still loading:
        then a fresh worker, which loads only what this run needs, starts sooner)."""
        with self._lock:
            if not (self._usable() and self._said_ready(0)):
                return None
            spare, self._spare = self._spare, None
        try:
            order = {"run_dir": str(run_dir), "resume": resume, "env": {k: os.environ.get(k) for k in LATE_VARIABLES}}
            spare.stdin.write((json.dumps(order) + "\n").encode())
            spare.stdin.close()
        except OSError:  # it died just now
            spare.kill()
            return None
        finally:
            spare.stdout.close()  # its "ready": from now on it writes to the run's log
        return spare

    def wait_ready(self, timeout_s: float) -> bool:
        """Wait until the spare has loaded everything and waits for a run (benchmarks, tests)."""
        with self._lock:
            return self._usable() and self._said_ready(timeout_s)

    def _said_ready(self, timeout_s: float) -> bool:
        """Whether the spare said "ready" (waiting up to ``timeout_s`` for it to say so)."""
        if not self._ready:
            ready, _, _ = select.select([self._spare.stdout], [], [], timeout_s)
            self._ready = bool(ready) and self._spare.stdout.readline().strip() == b"ready"
        return self._ready

    def _usable(self) -> bool:
        return self._spare is not None and self._spare.poll() is None and _early(self._env) == _early(worker_env())

    def _retire(self) -> None:
        if self._spare is not None:
            for pipe in (self._spare.stdin, self._spare.stdout):
                try:
                    pipe.close()  # it ends on its own once it reads the end of stdin
                except OSError:
                    pass
            _waiting_to_end.append(self._spare)
            self._spare = None
        _waiting_to_end[:] = [child for child in _waiting_to_end if child.poll() is None]

    def shut(self) -> None:
        """Let the spare go (tests; a server that no longer wants spares)."""
        with self._lock:
            self.wanted = False
            self._retire()


def worker_env() -> dict:
    """The environment a worker gets: this process's, with the repository on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def _early(env: dict | None) -> dict | None:
    """The variables a warm worker has already acted on (all but LATE_VARIABLES)."""
    return None if env is None else {k: v for k, v in env.items() if k not in LATE_VARIABLES}


LATE_VARIABLES = ("GLASSBOX_HOME",)  # read by a worker only once it has its run (where data is kept)
spares = SparePool()
_waiting_to_end: list[subprocess.Popen] = []  # retired spares, reaped once they have ended


class LocalProcessBackend:
    """One worker process per run on this machine (see the module docstring)."""

    name = "local"

    def check_device(self, device: str) -> None:
        from training.devices import pick_device

        pick_device(device)  # DeviceError for a device this machine lacks

    def launch(self, run_dir: Path, resume: bool) -> None:
        (run_dir / HEARTBEAT_FILE).unlink(missing_ok=True)
        child = spares.take(run_dir, resume)
        if child is None:
            command = [sys.executable, "-m", "training.worker", str(run_dir)] + (["--resume"] if resume else [])
            with open(run_dir / LOG_FILE, "ab") as log:
                child = subprocess.Popen(command, cwd=REPO_ROOT, env=worker_env(), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                         close_fds=True)
        track_child(child)
        write_atomically(run_dir / PID_FILE, f"{child.pid} {time.time()}".encode())
        if spares.wanted:
            spares.warm_up()  # the next run finds a new spare

    def warm_up(self) -> None:
        """Keep a warm worker ready for the next run (the app calls this; see the module docstring)."""
        spares.warm_up()

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
