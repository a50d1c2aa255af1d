"""Training jobs: submit a run, watch it, stop it, resume it. Training never runs in the caller.

    run_id = jobs.submit(spec, dataset, hyperparameters)   # returns at once; a worker trains
    jobs.status(run_id).status    # queued | running | stopping | finished | stopped | diverged | failed
    jobs.metrics(run_id)          # the records so far (see training.store)
    jobs.stop(run_id)             # takes effect within a second
    jobs.resume(run_id)           # a stopped or failed run continues from its last checkpoint
    jobs.list_runs()              # newest first

The state of a run lives in its folder (training.store), not in this process: a reload of the
page, or a restart of the server, finds every run as it is. A ``Backend`` starts and watches
the worker processes; the default ``LocalProcessBackend`` runs each as a child process of this
machine. Another backend (a cluster, Ray) needs only the four methods of ``Backend``, and a
worker that can read and write the run folder.

Importing this module does no work, so pages can import it freely; the module-level functions
use one ``Jobs`` for the store at $GLASSBOX_HOME.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from training.store import (HEARTBEAT_FILE, LOG_FILE, PID_FILE, STOP_FILE, RunNotFound, RunStore,
                            write_atomically)

ACTIVE = ("queued", "running")
FINISHED, STOPPED, DIVERGED, FAILED = "finished", "stopped", "diverged", "failed"
TERMINAL = (FINISHED, STOPPED, DIVERGED, FAILED)
STOPPING = "stopping"  # shown, never stored: a stop was asked for and the worker is finishing
RESUMABLE = (STOPPED, FAILED)
SIGKILL = getattr(signal, "SIGKILL", signal.SIGTERM)  # Windows has no SIGKILL; there SIGTERM ends a process
STOP_GRACE_S = 10.0  # a worker that has not stopped this long after being asked is ended by force
HEARTBEAT_STALE_S = 20.0  # a worker this server did not start is presumed dead when its heartbeat is older
START_GRACE_S = 30.0  # time a worker has to write its first heartbeat
REPO_ROOT = Path(__file__).resolve().parents[1]


class JobError(ValueError):
    """A request about a run that cannot be done (resume a finished run, ...), in plain words."""


@dataclass
class RunStatus:
    run_id: str
    status: str  # queued | running | stopping | finished | stopped | diverged | failed
    message: str  # why it ended, in words ("" while all is well)
    model: str  # the model's name
    family: str  # CNN, LSTM, Transformer, ...
    dataset: str
    device: str | None  # where it trains, e.g. "cpu" or "cuda (NVIDIA H100 80GB HBM3)"
    step: int
    total_steps: int
    epochs: int
    best_val_acc: float | None
    last_val_acc: float | None
    submitted_at: float  # seconds since the epoch
    started_at: float | None
    finished_at: float | None
    folder: str

    @property
    def active(self) -> bool:
        return self.status not in TERMINAL

    @property
    def progress(self) -> float:
        return min(1.0, self.step / self.total_steps) if self.total_steps else 0.0

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None:
            return None
        return (self.finished_at or time.time()) - self.started_at

    def to_dict(self) -> dict:
        return {**asdict(self), "progress": self.progress, "duration_s": self.duration_s}


class Backend(Protocol):
    """Starts and watches the worker of a run; the run folder is its only argument."""

    def launch(self, run_dir: Path, resume: bool) -> None:
        """Start a worker for the run and return at once."""

    def request_stop(self, run_dir: Path) -> None:
        """Ask the worker to stop soon (the stop file in the folder is the lasting request)."""

    def kill(self, run_dir: Path) -> None:
        """End the worker now, and return once it is gone."""

    def worker_gone(self, run_dir: Path) -> str | None:
        """None while the worker lives (or is still starting); once it is gone, why, in words."""


# Children started by this process, by pid, whichever backend started them: only the parent
# can learn a child's exit code, and polling it also reaps the child (no zombies).
_CHILDREN: dict[int, subprocess.Popen] = {}


def _reap_children() -> None:
    """Collect every child that has ended (its exit code stays in its Popen for later)."""
    for child in list(_CHILDREN.values()):
        if child.returncode is None:
            child.poll()


class LocalProcessBackend:
    """One worker process per run on this machine (``python -m training.worker RUN_FOLDER``).

    A fresh interpreter rather than a fork: the server's threads and CUDA state are not copied,
    nothing but the folder path is handed over, and the worker runs in its own session, so it
    keeps training through a restart of the server (which then finds it by its pid file).
    """

    name = "local"

    def launch(self, run_dir: Path, resume: bool) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        command = [sys.executable, "-m", "training.worker", str(run_dir)] + (["--resume"] if resume else [])
        (run_dir / HEARTBEAT_FILE).unlink(missing_ok=True)
        with open(run_dir / LOG_FILE, "ab") as log:
            child = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
        _CHILDREN[child.pid] = child
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
        deadline = time.time() + 5
        while time.time() < deadline and self.worker_gone(run_dir) is None:
            time.sleep(0.02)

    def worker_gone(self, run_dir: Path) -> str | None:
        pid, launched_at = _read_pid(run_dir)
        if pid is None:
            return None if _age(run_dir / "run.json") < START_GRACE_S else "the worker never started"
        child = _CHILDREN.get(pid)
        if child is not None:
            code = child.poll()
            return None if code is None else _exit_reason(code, run_dir)
        from training.worker import pid_alive

        heartbeat_age = _age(run_dir / HEARTBEAT_FILE)
        if pid_alive(pid) and (heartbeat_age < HEARTBEAT_STALE_S
                               or (heartbeat_age == float("inf") and time.time() - launched_at < START_GRACE_S)):
            return None
        return ("the worker process ended without saying why (it may have been killed, "
                "or the computer restarted)")

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


class Jobs:
    def __init__(self, store: RunStore | None = None, backend: Backend | None = None,
                 max_per_device: int | None = None):
        self.store = store or RunStore()
        self.backend = backend or LocalProcessBackend()
        # Runs on one device at a time: two would only share its time, and each would be slower.
        self.max_per_device = max_per_device or int(os.environ.get("GLASSBOX_JOBS_PER_DEVICE", "1"))

    # ---- starting ------------------------------------------------------------------
    def submit(self, spec, dataset, hyperparameters=None) -> str:
        """Record the run and start its worker; returns the run id at once.

        Raises DatasetError (spec and data do not fit), HyperparameterError or DeviceError, each
        with a message for the user, before anything is recorded.
        """
        from training.data import fit_spec_to_dataset
        from training.trainer import Hyperparameters, default_hyperparameters, pick_device, steps_per_epoch

        spec = fit_spec_to_dataset(spec, dataset)
        if hyperparameters is None:
            hp = default_hyperparameters(spec)
        elif isinstance(hyperparameters, dict):
            hp = Hyperparameters.from_dict(hyperparameters)
        else:
            hp = hyperparameters
        hp.check()
        pick_device(hp.device)  # a missing GPU is said now, not after the worker starts
        if len(dataset.x_train) == 0:
            from training.data import DatasetError

            raise DatasetError(f"the dataset '{dataset.name}' has no training examples")
        now = time.time()
        record = {
            "status": "queued", "message": "", "model": spec.name, "family": spec.family(),
            "spec": spec.to_dict(),
            "dataset": {"name": dataset.name, "source": dataset.source, "meta": dataset.meta(),
                        "train_size": len(dataset.x_train), "val_size": len(dataset.x_val)},
            "hyperparameters": hp.to_dict(),
            "device": None, "best_val_acc": None, "last_val_acc": None, "resumes": 0,
            "progress": {"step": 0, "epoch": 0,
                         "total_steps": steps_per_epoch(len(dataset.x_train), hp.batch_size) * hp.epochs},
            "times": {"submitted": now, "queued": now, "started": None, "finished": None, "updated": now},
            "job": {"backend": getattr(self.backend, "name", type(self.backend).__name__),
                    "max_per_device": self.max_per_device},
        }
        run_id = self.store.create(spec.name, record)
        if dataset.source is None:
            self.store.save_dataset(run_id, dataset)
        self._launch(run_id, resume=False)
        return run_id

    def resume(self, run_id: str) -> str:
        """Continue a stopped or failed run from its last checkpoint to its planned end."""
        current = self.status(run_id)
        if current.status not in RESUMABLE:
            reasons = {FINISHED: "it has already finished", DIVERGED: "its loss became NaN; train a new run with "
                       "a lower learning rate instead", "queued": "it is already waiting to run",
                       "running": "it is still running", STOPPING: "it is still stopping"}
            raise JobError(f"run {run_id} cannot be resumed: {reasons.get(current.status, current.status)}")
        folder = self.store.path(run_id)
        (folder / STOP_FILE).unlink(missing_ok=True)
        (folder / PID_FILE).unlink(missing_ok=True)  # the old worker's: not to be taken for the new one
        record = self.store.read(run_id)
        now = time.time()
        self.store.update(run_id, status="queued", message="", resumes=record.get("resumes", 0) + 1,
                          times={**record["times"], "queued": now, "finished": None, "updated": now})
        self._launch(run_id, resume=True)
        return run_id

    def _launch(self, run_id: str, resume: bool) -> None:
        try:
            self.backend.launch(self.store.path(run_id), resume)
        except OSError as err:
            self._mark(run_id, FAILED, f"the worker could not be started: {err}")
            raise JobError(f"the training worker could not be started: {err}") from err

    # ---- watching --------------------------------------------------------------------
    def status(self, run_id: str) -> RunStatus:
        """The run as it is now; notices (and records) a worker that died or ignores a stop."""
        _reap_children()  # a run that ended on its own is never asked about its worker again
        record = self.store.read(run_id)
        if record["status"] in ACTIVE:
            record = self._check_worker(run_id, record)
        return self._summary(record)

    def _check_worker(self, run_id: str, record: dict) -> dict:
        folder = self.store.path(run_id)
        reason = self.backend.worker_gone(folder)
        stop_asked = _age(folder / STOP_FILE)
        if reason is not None:
            record = self.store.read(run_id)  # it may have ended cleanly between the two reads
            if record["status"] in ACTIVE:
                if stop_asked < float("inf"):
                    return self._mark(run_id, STOPPED, f"Stopped at step {record['progress'].get('step', 0)}.")
                return self._mark(run_id, FAILED, reason[:1].upper() + reason[1:] + ".")
            return record
        if stop_asked < float("inf"):
            if stop_asked > STOP_GRACE_S:
                self.backend.kill(folder)
                return self._mark(run_id, STOPPED, "Stopped (the worker did not respond, so it was ended); "
                                                   "it can resume from its last checkpoint.")
            record = {**record, "status": STOPPING}
        return record

    def _mark(self, run_id: str, status: str, message: str) -> dict:
        """Record the end of a run whose worker is gone (the worker can no longer write it)."""
        record = self.store.read(run_id)
        now = time.time()
        return self.store.update(run_id, status=status, message=message,
                                 times={**record["times"], "finished": now, "updated": now})

    def _summary(self, record: dict) -> RunStatus:
        progress, times = record.get("progress", {}), record.get("times", {})
        return RunStatus(
            run_id=record["run_id"], status=record["status"], message=record.get("message", ""),
            model=record.get("model", ""), family=record.get("family", ""),
            dataset=record.get("dataset", {}).get("name", ""), device=record.get("device"),
            step=progress.get("step", 0), total_steps=progress.get("total_steps", 0),
            epochs=record.get("hyperparameters", {}).get("epochs", 0),
            best_val_acc=record.get("best_val_acc"), last_val_acc=record.get("last_val_acc"),
            submitted_at=times.get("submitted", 0.0), started_at=times.get("started"),
            finished_at=times.get("finished") if record["status"] in TERMINAL else None,
            folder=str(self.store.path(record["run_id"])))

    def list_runs(self) -> list[RunStatus]:
        """Every run in the store, newest first."""
        runs = []
        for run_id in self.store.run_ids():
            try:
                runs.append(self.status(run_id))
            except (RunNotFound, ValueError, KeyError, TypeError, AttributeError):  # deleted meanwhile, or damaged
                continue
        return runs

    def metrics(self, run_id: str) -> list[dict]:
        return self.store.metrics(run_id)

    def read_metrics(self, run_id: str, offset: int = 0) -> tuple[list[dict], int]:
        """New records since ``offset`` and the next offset: for a page that polls."""
        return self.store.read_metrics(run_id, offset)

    def wait(self, run_id: str, timeout_s: float | None = None, poll_s: float = 0.1) -> RunStatus:
        """Block until the run ends (for scripts and tests; never call it from a page)."""
        deadline = None if timeout_s is None else time.time() + timeout_s
        while True:
            current = self.status(run_id)
            if not current.active:
                return current
            if deadline is not None and time.time() > deadline:
                raise TimeoutError(f"run {run_id} is still {current.status} after {timeout_s} s")
            time.sleep(poll_s)

    # ---- stopping and deleting -------------------------------------------------------
    def stop(self, run_id: str, wait_s: float = 1.0) -> RunStatus:
        """Ask the run to stop; waits up to ``wait_s`` for it to have stopped, then says where it is."""
        current = self.status(run_id)
        if not current.active:
            return current
        folder = self.store.path(run_id)
        if not (folder / STOP_FILE).exists():
            write_atomically(folder / STOP_FILE, str(time.time()).encode())
        self.backend.request_stop(folder)
        deadline = time.time() + wait_s
        while current.active and time.time() < deadline:
            time.sleep(0.02)
            current = self.status(run_id)
        return current

    def delete(self, run_id: str) -> None:
        if self.status(run_id).active:
            raise JobError(f"run {run_id} is still active; stop it before deleting it")
        self.store.delete(run_id)


# ---- the module-level API, on the store at $GLASSBOX_HOME ----------------------------------
_default: Jobs | None = None


def default_jobs() -> Jobs:
    """The shared Jobs for $GLASSBOX_HOME (made on first use, and again if GLASSBOX_HOME changes)."""
    global _default
    root = RunStore().root
    if _default is None or _default.store.root != root:
        _default = Jobs(RunStore(root))
    return _default


def submit(spec, dataset, hyperparameters=None) -> str:
    return default_jobs().submit(spec, dataset, hyperparameters)


def status(run_id: str) -> RunStatus:
    return default_jobs().status(run_id)


def stop(run_id: str, wait_s: float = 1.0) -> RunStatus:
    return default_jobs().stop(run_id, wait_s)


def resume(run_id: str) -> str:
    return default_jobs().resume(run_id)


def list_runs() -> list[RunStatus]:
    return default_jobs().list_runs()


def metrics(run_id: str) -> list[dict]:
    return default_jobs().metrics(run_id)


def read_metrics(run_id: str, offset: int = 0) -> tuple[list[dict], int]:
    return default_jobs().read_metrics(run_id, offset)


def wait(run_id: str, timeout_s: float | None = None) -> RunStatus:
    return default_jobs().wait(run_id, timeout_s)


def delete(run_id: str) -> None:
    default_jobs().delete(run_id)
