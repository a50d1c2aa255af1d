"""Training jobs: submit a run, watch it, stop it, resume it. Training never runs in the caller.

    run_id = jobs.submit(spec, dataset, hyperparameters)   # returns at once; a worker trains
    jobs.status(run_id).status    # a RunState: queued | running | stopping | finished | stopped | diverged | failed
    jobs.metrics(run_id)          # the records so far (see training.store)
    jobs.stop(run_id)             # takes effect within a second
    jobs.resume(run_id)           # a stopped or failed run continues from its last checkpoint
    jobs.list_runs()              # newest first
    jobs.share(run_id, by=teacher)  # the teacher shares a run's model; jobs.cancel(run_id): a queued run leaves
    jobs.reconcile()              # records what became of the workers (see below)

Who may act: ``submit`` records the run's owner (``owner=``, a ``training.people.Person``); ``stop``,
``resume``, ``delete``, ``cancel`` and ``share`` take the person acting (``by=``): a student may act
on their own runs, the teacher on any, else ``JobError`` says why; ``by=None`` (single user) on all.

Looking and acting are apart. ``status``, ``list_runs``, ``metrics`` and ``read_metrics`` only
read the run folder: they never write a file and never signal a process. ``reconcile`` is the
step that acts on what happened behind the store's back: a run whose worker died is recorded as
failed (or as stopped, if a stop had been asked for), and a worker that ignores a stop for
STOP_GRACE_S is ended. Whatever drives runs calls it: ``stop``, ``resume``, ``delete`` and
``wait`` do, and so does a page that watches runs, before each look.

The state of a run lives in its folder (training.store), not in this process: a reload of the
page, or a restart of the server, finds every run as it is. A backend (``training.backends``)
starts and watches the workers: the default ``LocalProcessBackend`` runs each as a child
process of this machine, ``RayBackend`` as an actor on a Ray cluster ($GLASSBOX_BACKEND=ray).

Importing this module does no work, so pages can import it freely; the module-level functions
use one ``Jobs`` for the store at $GLASSBOX_HOME.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, replace

from training.backends import Backend, make_backend
from training.device_queue import exclusive
from training.limits import RunLimit, cancel_waiting, make_room, person_lock
from training.people import Person, refusal, share_refusal
from training.record import RESUMABLE, RunProgress, RunRecord, RunState, RunTimes  # noqa: F401 - RESUMABLE: pages use jobs.RESUMABLE
from training.store import RunNotFound, RunStore

STOP_GRACE_S = 10.0  # a worker that has not stopped this long after being asked is ended by force
UNREADABLE = (RunNotFound, ValueError, KeyError, TypeError, AttributeError)  # a run deleted meanwhile, or damaged


class JobError(ValueError):
    """A request about a run that cannot be done (resume a finished run, ...), in plain words."""


class TooManyRuns(JobError, RunLimit):
    """The person has as many active runs as allowed; ``.active`` holds their ids (to offer Stop)."""


@dataclass
class RunStatus:
    run_id: str
    status: RunState  # as stored, or STOPPING while a stop that was asked for is under way
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
    owner: str | None = None  # the owner's person_id (training.people); None: nobody
    owner_name: str | None = None  # shown only
    shared: bool = False  # shared with the class by the teacher

    def __post_init__(self):
        self.status = RunState(self.status)  # also from its string

    @property
    def active(self) -> bool:
        return self.status.active

    @property
    def progress(self) -> float:
        return min(1.0, self.step / self.total_steps) if self.total_steps else 0.0

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None:
            return None
        return (self.finished_at or time.time()) - self.started_at

    def to_dict(self) -> dict:
        return {**asdict(self), "status": self.status.value, "progress": self.progress,
                "duration_s": self.duration_s}


class Jobs:
    """The job API on one run store and one backend (the module-level functions use a shared one)."""

    def __init__(self, store: RunStore | None = None, backend: Backend | None = None,
                 max_per_device: int | None = None):
        self.store = store or RunStore()
        self.backend = backend or make_backend()  # $GLASSBOX_BACKEND: local (default) or ray
        # Runs on one device at a time: two would only share its time, and each would be slower.
        self.max_per_device = max_per_device or int(os.environ.get("GLASSBOX_JOBS_PER_DEVICE", "1"))

    # ---- starting ------------------------------------------------------------------
    def submit(self, spec, dataset, hyperparameters=None, owner: Person | str | None = None,
               owner_name: str | None = None, finetune: dict | None = None) -> str:
        """Record the run and start its worker; returns the run id at once. ``owner`` is the person
        starting it (a Person, or a person_id with ``owner_name``); None: nobody (single user). A
        person's active and kept runs are limited (``training.limits.make_room``: TooManyRuns).

        ``finetune``: a pretrained model's recipe (training.finetune), kept in run.json; its spec is then
        the model's own. Raises DatasetError (spec and data do not fit), HyperparameterError or DeviceError,
        each with a message for the user, before anything is recorded."""
        from training.data import DatasetError, fit_spec_to_dataset
        from training.hyperparameters import Hyperparameters, default_hyperparameters, steps_per_epoch

        spec = spec if finetune else fit_spec_to_dataset(spec, dataset)
        if hyperparameters is None:
            hp = default_hyperparameters(spec)
        elif isinstance(hyperparameters, dict):
            hp = Hyperparameters.from_dict(hyperparameters)
        else:
            hp = hyperparameters
        hp.check()
        self.backend.check_device(hp.device)  # a missing GPU is said now, not after the worker starts
        if len(dataset.x_train) == 0:
            raise DatasetError(f"the dataset '{dataset.name}' has no training examples")
        owner_id, owner_name = getattr(owner, "person_id", owner), getattr(owner, "name", owner_name)
        now = time.time()
        record = RunRecord(
            run_id="", status=RunState.QUEUED, model=spec.name, family=spec.family(), spec=spec.to_dict(),
            dataset={"name": dataset.name, "source": dataset.source, "meta": dataset.meta(),
                     "train_size": len(dataset.x_train), "val_size": len(dataset.x_val)},
            hyperparameters=hp.to_dict(),
            progress=RunProgress(total_steps=steps_per_epoch(len(dataset.x_train), hp.batch_size) * hp.epochs),
            times=RunTimes(submitted=now, queued=now, updated=now),
            job={"backend": getattr(self.backend, "name", type(self.backend).__name__),
                 "max_per_device": self.max_per_device},
            owner=owner_id, owner_name=owner_name, extra={"finetune": finetune} if finetune else {})
        with exclusive(person_lock(self.store.root, owner_id)):  # two quick clicks cannot both pass
            make_room(self, owner_id, TooManyRuns)
            run_id = self.store.create(spec.name, record)
        if dataset.source is None:
            self.store.save_dataset(run_id, dataset)
        self._launch(run_id, resume=False)
        return run_id

    def resume(self, run_id: str, by: Person | None = None) -> str:
        """Continue a stopped or failed run from its last checkpoint to its planned end."""
        self.check_allowed(run_id, by, "resume")
        self.reconcile(run_id)
        current = self.status(run_id)
        if not current.status.resumable:
            reasons = {RunState.FINISHED: "it has already finished",
                       RunState.DIVERGED: "its loss became NaN; train a new run with a lower learning rate instead",
                       RunState.QUEUED: "it is already waiting to run", RunState.RUNNING: "it is still running",
                       RunState.STOPPING: "it is still stopping"}
            raise JobError(f"run {run_id} cannot be resumed: {reasons.get(current.status, current.status)}")
        self.store.forget_worker(run_id)  # first: the old worker's pid is not to be taken for the new one's
        record = self.store.read(run_id)
        now = time.time()
        self.store.write(replace(record, status=RunState.QUEUED, message="", resumes=record.resumes + 1,
                                 job={**record.job, "backend": self.backend.name},  # this backend trains it now
                                 times=replace(record.times, queued=now, finished=None, updated=now)))
        self._launch(run_id, resume=True)
        return run_id

    def _launch(self, run_id: str, resume: bool) -> None:
        try:
            self.backend.launch(self.store.path(run_id), resume)
        except OSError as err:
            self._mark(run_id, RunState.FAILED, f"the worker could not be started: {err}")
            raise JobError(f"the training worker could not be started: {err}") from err

    # ---- looking (reads only) ----------------------------------------------------------
    def status(self, run_id: str) -> RunStatus:
        """The run as its folder says it is now. A pure read: see ``reconcile`` for the rest."""
        record = self.store.read(run_id)
        shown = record.status
        if shown.active and self.store.stop_asked_at(run_id) is not None:
            shown = RunState.STOPPING
        return self._summary(record, shown)

    def _summary(self, record: RunRecord, shown: RunState) -> RunStatus:
        progress, times = record.progress, record.times
        return RunStatus(
            run_id=record.run_id, status=shown, message=record.message, model=record.model, family=record.family,
            dataset=record.dataset.get("name", ""), device=record.device,
            step=progress.step, total_steps=progress.total_steps, epochs=record.hyperparameters.get("epochs", 0),
            best_val_acc=record.best_val_acc, last_val_acc=record.last_val_acc,
            submitted_at=times.submitted, started_at=times.started,
            finished_at=None if shown.active else times.finished,
            folder=str(self.store.path(record.run_id)),
            owner=record.owner, owner_name=record.owner_name, shared=record.shared)

    def list_runs(self) -> list[RunStatus]:
        """Every readable run in the store, newest first (a pure read, like ``status``)."""
        runs = []
        for run_id in self.store.run_ids():
            try:
                runs.append(self.status(run_id))
            except UNREADABLE:
                continue
        return runs

    def metrics(self, run_id: str) -> list[dict]:
        return self.store.metrics(run_id)

    def read_metrics(self, run_id: str, offset: int = 0) -> tuple[list[dict], int]:
        """New records since ``offset`` and the next offset: for a page that polls."""
        return self.store.read_metrics(run_id, offset)

    def wait(self, run_id: str, timeout_s: float | None = None, poll_s: float = 0.1) -> RunStatus:
        """Block until the run ends (for scripts and tests; never call it from a page). It
        reconciles as it waits, so a worker that dies ends the wait."""
        deadline = None if timeout_s is None else time.time() + timeout_s
        while True:
            self.reconcile(run_id)
            current = self.status(run_id)
            if not current.active:
                return current
            if deadline is not None and time.time() > deadline:
                raise TimeoutError(f"run {run_id} is still {current.status} after {timeout_s} s")
            time.sleep(poll_s)

    # ---- acting on what the workers did ------------------------------------------------
    def reconcile(self, run_id: str | None = None) -> list[str]:
        """Bring run.json in line with the workers, for one run or (None) every run; returns the
        ids of the runs it changed.

        A run still recorded as queued or running whose worker is gone is recorded as failed,
        with the reason (as stopped if a stop had been asked for). A worker that has ignored a
        stop for STOP_GRACE_S is ended, and its run recorded as stopped. A run that cannot be
        read is left alone (``status`` says what is wrong with it).
        """
        self.backend.collect_ended()
        changed = []
        for one in self.store.run_ids() if run_id is None else [run_id]:
            try:
                if self._reconcile(one):
                    changed.append(one)
            except UNREADABLE:
                continue
        return changed

    def _reconcile(self, run_id: str) -> bool:
        record = self.store.read(run_id)  # another backend's run (Ray's, from the command line): only it can tell
        if not record.status.active or record.job.get("backend", self.backend.name) != self.backend.name:
            return False
        folder = self.store.path(run_id)
        reason = self.backend.worker_gone(folder)
        stop_asked_at = self.store.stop_asked_at(run_id)
        if reason is not None:
            record = self.store.read(run_id)  # it may have ended cleanly since the first read
            if not record.status.active:
                return False
            if stop_asked_at is not None:
                self._mark(run_id, RunState.STOPPED, f"Stopped at step {record.progress.step}.")
            else:
                self._mark(run_id, RunState.FAILED, reason[:1].upper() + reason[1:] + ".")
            return True
        if stop_asked_at is not None and time.time() - stop_asked_at > STOP_GRACE_S:
            self.backend.kill(folder)
            self._mark(run_id, RunState.STOPPED, "Stopped (the worker did not respond, so it was ended); "
                                                 "it can resume from its last checkpoint.")
            return True
        return False

    def _mark(self, run_id: str, state: RunState, message: str) -> RunRecord:
        """Record the end of a run whose worker is gone (the worker can no longer write it)."""
        record = self.store.read(run_id)
        now = time.time()
        record = replace(record, status=state, message=message, times=replace(record.times, finished=now, updated=now))
        self.store.write(record)
        return record

    # ---- who may act --------------------------------------------------------------------
    def check_allowed(self, run_id: str, by: Person | None, action: str) -> None:
        """JobError (in words) unless ``by`` may ``action`` the run: its owner, the teacher, or
        anyone in single-user mode (``by=None``). RunNotFound if there is no such run."""
        if by is None:
            return
        record = self.store.read(run_id)
        why = refusal(by, record.owner, record.owner_name, action)
        if why is not None:
            raise JobError(why)

    def share(self, run_id: str, shared: bool = True, by: Person | None = None) -> RunStatus:
        """Share a run with the class (or stop sharing it): every student then sees it and may use
        its model. Only the teacher may; the run must have ended and have a saved model."""
        why = share_refusal(by)
        if why is not None:
            raise JobError(why)
        self.reconcile(run_id)
        record = self.store.read(run_id)
        if record.status.active:  # its worker is the only writer of run.json while it lives
            raise JobError(f"run {run_id} is still training; share it once it has finished or been stopped")
        if shared and not self.store.checkpoint_steps(run_id):
            raise JobError(f"run {run_id} has no saved model to share")
        if record.shared != shared:
            self.store.write(replace(record, shared=shared, times=replace(record.times, updated=time.time())))
        return self.status(run_id)

    # ---- stopping and deleting -------------------------------------------------------
    def stop(self, run_id: str, by: Person | None = None, wait_s: float = 1.0) -> RunStatus:
        """Ask the run to stop; waits up to ``wait_s`` for it to have stopped, then says where it
        is. A worker that ignores the request is ended by a later ``reconcile``."""
        self.check_allowed(run_id, by, "stop")
        self.reconcile(run_id)
        current = self.status(run_id)
        if not current.active:
            return current
        self.store.ask_to_stop(run_id)
        self.backend.request_stop(self.store.path(run_id))
        deadline = time.time() + wait_s
        while current.active and time.time() < deadline:
            time.sleep(0.02)
            self.reconcile(run_id)
            current = self.status(run_id)
        return current

    def cancel(self, run_id: str, by: Person | None = None) -> None:
        """Take a run still waiting for its turn out of the queue and remove it (``training.limits.cancel_waiting``)."""
        self.check_allowed(run_id, by, "cancel")
        cancel_waiting(self, run_id, by, JobError)

    def delete(self, run_id: str, by: Person | None = None) -> None:
        self.check_allowed(run_id, by, "delete")
        self.reconcile(run_id)
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


def submit(spec, dataset, hyperparameters=None, owner: Person | str | None = None,
           owner_name: str | None = None, finetune: dict | None = None) -> str:
    return default_jobs().submit(spec, dataset, hyperparameters, owner, owner_name, finetune)


def cancel(run_id: str, by: Person | None = None) -> None:
    default_jobs().cancel(run_id, by)


def status(run_id: str) -> RunStatus:
    return default_jobs().status(run_id)


def reconcile(run_id: str | None = None) -> list[str]:
    return default_jobs().reconcile(run_id)


def stop(run_id: str, by: Person | None = None, wait_s: float = 1.0) -> RunStatus:
    return default_jobs().stop(run_id, by, wait_s)


def resume(run_id: str, by: Person | None = None) -> str:
    return default_jobs().resume(run_id, by)


def share(run_id: str, shared: bool = True, by: Person | None = None) -> RunStatus:
    return default_jobs().share(run_id, shared, by)


def list_runs() -> list[RunStatus]:
    return default_jobs().list_runs()


def metrics(run_id: str) -> list[dict]:
    return default_jobs().metrics(run_id)


def read_metrics(run_id: str, offset: int = 0) -> tuple[list[dict], int]:
    return default_jobs().read_metrics(run_id, offset)


def wait(run_id: str, timeout_s: float | None = None) -> RunStatus:
    return default_jobs().wait(run_id, timeout_s)


def delete(run_id: str, by: Person | None = None) -> None:
    default_jobs().delete(run_id, by)
