"""The limits that keep a shared server fair and safe for a class, and the settings that change them.

    runs_per_person()        GLASSBOX_RUNS_PER_PERSON        active runs (queued or training) per person (1)
    runs_kept_per_person()   GLASSBOX_RUNS_KEPT_PER_PERSON   runs kept per person; starting one more removes
                                                             that person's oldest ended runs (20)
    max_upload_bytes()       GLASSBOX_MAX_UPLOAD_MB          the largest uploaded dataset file (50 MB)
    max_model_upload_bytes() GLASSBOX_MAX_MODEL_UPLOAD_MB    the largest uploaded model .zip (100 MB: a fine-tuned
                                                             all-MiniLM-L6-v2 is 87 MB; BERT-base's 420 MB is not)
    view_memory_bytes()      GLASSBOX_VIEW_MEMORY_MB         the arrays one inspection of one input may
                                                             make the server hold (64 MB)

Every limit is read from the environment when it is used, so a test (or a teacher restarting
the server) can change it; a value that is not a whole number above zero is ignored in favour
of the default, which ``describe_settings`` says in words.

Runs made without an owner (before classes, or from the command line) count for nobody: the
per-person limits apply only to runs that have an owner. Runs a teacher shared with the class
are never removed to make room.

Also here: the order in which queued runs take a device (``fair_order``, round-robin over their
owners), and the queue's wait estimate (``estimate_wait_s``). Only the standard library: the
worker imports this before torch loads.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

DEFAULTS = {
    "GLASSBOX_RUNS_PER_PERSON": 1,
    "GLASSBOX_RUNS_KEPT_PER_PERSON": 20,
    "GLASSBOX_MAX_UPLOAD_MB": 50,
    "GLASSBOX_MAX_MODEL_UPLOAD_MB": 100,
    "GLASSBOX_VIEW_MEMORY_MB": 64,
}
MB = 2**20


def setting(name: str) -> int:
    """A whole number above zero from the environment, or the default when unset or not one."""
    raw = os.environ.get(name, "").strip()
    try:
        value = int(raw)
    except ValueError:
        return DEFAULTS[name]
    return value if value > 0 else DEFAULTS[name]


def bad_settings() -> list[str]:
    """The limit settings that were given but could not be used, in words (for the server's log or page)."""
    said = []
    for name, default in DEFAULTS.items():
        raw = os.environ.get(name, "").strip()
        if raw and setting(name) == default and raw != str(default):
            said.append(f"{name}={raw!r} is not a whole number above zero, so the default {default} is used")
    return said


def runs_per_person() -> int:
    return setting("GLASSBOX_RUNS_PER_PERSON")


def runs_kept_per_person() -> int:
    return setting("GLASSBOX_RUNS_KEPT_PER_PERSON")


def max_upload_bytes() -> int:
    return setting("GLASSBOX_MAX_UPLOAD_MB") * MB


def max_model_upload_bytes() -> int:
    """Never below the data limit; .streamlit/config.toml's server.maxUploadSize must be at least this."""
    return max(setting("GLASSBOX_MAX_MODEL_UPLOAD_MB"), setting("GLASSBOX_MAX_UPLOAD_MB")) * MB


def view_memory_bytes() -> int:
    return setting("GLASSBOX_VIEW_MEMORY_MB") * MB


def size_words(n_bytes: float) -> str:
    return f"{n_bytes / MB:,.0f} MB" if n_bytes >= MB else f"{n_bytes / 2**10:,.0f} KB"


# ---- a person's runs ---------------------------------------------------------------------------
class RunLimit(ValueError):
    """A person's limit on runs is reached; ``active`` holds the ids of their active runs."""

    def __init__(self, message: str, active: Sequence[str] = ()):
        super().__init__(message)
        self.active = list(active)


def person_lock(root: Path, owner: str | None) -> Path:
    """The lock file that makes one person's submits take turns (nobody's runs share one)."""
    name = hashlib.sha256((owner or "").encode()).hexdigest()[:16]
    return Path(root) / "locks" / f"person-{name}.lock"


def too_many_runs(own_runs: Sequence, allowed: int) -> str | None:
    """Why one more run is refused (in words), or None: ``own_runs`` are one person's runs."""
    active = [run for run in own_runs if run.active]
    if len(active) < allowed:
        return None
    names = ", ".join(f"{run.model} on {run.dataset}" for run in active)
    which = "a run" if len(active) == 1 else f"{len(active)} runs"
    rule = "one run at a time per person" if allowed == 1 else f"at most {allowed} runs at a time per person"
    them = "it" if len(active) == 1 else "one of them"
    return (f"You already have {which} training or waiting ({names}): {rule}, so that everyone in the class "
            f"gets a turn. Stop {them} to start this one.")


def make_room(jobs, owner: str | None, error=RunLimit) -> list[str]:
    """Before ``owner`` starts a run on ``jobs`` (a ``training.jobs.Jobs``): raise ``error``
    (a RunLimit) if they have ``runs_per_person()`` active runs, else remove their oldest ended
    runs beyond ``runs_kept_per_person()`` and return the removed ids. Nobody's runs are not limited."""
    if owner is None:
        return []
    jobs.reconcile()
    own = [run for run in jobs.list_runs() if run.owner == owner]
    why = too_many_runs(own, runs_per_person())
    if why is not None:
        raise error(why, [run.run_id for run in own if run.active])
    removed = []
    for run_id in runs_to_remove(own, owner, runs_kept_per_person()):
        try:
            jobs.store.delete(run_id)
            removed.append(run_id)
        except (OSError, LookupError):  # removed meanwhile
            continue
    return removed


def cancel_waiting(jobs, run_id: str, by, error=ValueError) -> None:
    """Take a run of ``jobs`` (a ``training.jobs.Jobs``) that still waits for its turn out of the
    queue and remove it: it has trained nothing. ``error`` (in words) if ``by`` may not, or if it
    has started training (Stop keeps what it learned)."""
    jobs.reconcile(run_id)
    why = cancel_refusal(jobs.store.read(run_id), by)
    if why is not None:
        raise error(why)
    jobs.store.ask_to_stop(run_id)
    jobs.backend.kill(jobs.store.path(run_id))  # a waiting worker has nothing to save
    jobs.store.delete(run_id)


def cancel_refusal(record, by) -> str | None:
    """Why ``by`` cannot cancel the run of this RunRecord (None: they can): it must be theirs
    (or ``by`` the teacher, or None: single user) and still waiting for its turn."""
    if by is not None and not getattr(by, "teacher", False) and record.owner != getattr(by, "person_id", by):
        return f"run {record.run_id} is not yours, so you cannot cancel it"
    if not record.status.active:
        return f"run {record.run_id} is not waiting any more: it has {record.status.value}"
    if record.status != "queued" or record.times.started is not None:
        return f"run {record.run_id} has already started training; use Stop, which keeps what it learned"
    return None


# ---- runs kept per person ------------------------------------------------------------------
def runs_to_remove(runs: Iterable, owner: str, keep: int) -> list[str]:
    """The ids of ``owner``'s runs to remove so that, with one more run, they keep at most ``keep``:
    the oldest ended runs first; active runs and runs shared with the class are never removed.
    ``runs`` are RunStatus-like (run_id, owner, active, shared, submitted_at)."""
    own = [run for run in runs if getattr(run, "owner", None) == owner]
    excess = len(own) + 1 - keep
    if excess <= 0:
        return []
    removable = sorted((run for run in own if not run.active and not getattr(run, "shared", False)),
                       key=lambda run: run.submitted_at)
    return [run.run_id for run in removable[:excess]]


# ---- the queue's order -----------------------------------------------------------------------
@dataclass(frozen=True)
class Waiting:
    """A run in a device's line (or holding the device): its ticket (it sorts by queue time),
    whose it is ("" for nobody) and the round it was given when it joined (``round_for``)."""

    ticket: str
    owner: str = ""
    round: int = 0


def round_for(owner: str | None, waiting: Sequence[Waiting], holding: Sequence[Waiting]) -> int:
    """The round a run joining the line gets: round-robin over the owners.

    The line is served round by round, and within a round in the order the runs joined. The
    current round is the one the device is serving (the latest round holding it; with nobody
    on it, the earliest waiting). A run joins the current round unless its owner already has a
    run in it, waiting or training: then it goes one round after their latest. So every owner's
    first run comes before anyone's second, an owner whose run trains now waits for everyone
    else's turn, and runs of nobody (one shared turn) keep first come, first served.
    """
    current = max((h.round for h in holding), default=min((w.round for w in waiting), default=0))
    own = [w.round for w in [*waiting, *holding] if w.owner == (owner or "")]
    return max(current, max(own) + 1) if own else current


def fair_order(waiting: Sequence[Waiting]) -> list[str]:
    """The tickets in the order they take the device: by round, then by the time they joined."""
    return [w.ticket for w in sorted(waiting, key=lambda w: (w.round, w.ticket))]


# ---- the wait --------------------------------------------------------------------------------
def remaining_s(run, now: float) -> float | None:
    """Seconds a training run still needs at the pace it has kept so far (None: not known yet)."""
    if run.started_at is None or not run.step or not run.total_steps:
        return None
    pace = run.step / max(1e-6, now - run.started_at)  # steps per second
    return max(0.0, (run.total_steps - run.step) / pace)


def estimate_wait_s(ahead: Sequence, running: Sequence, now: float) -> float | None:
    """About how long a queued run waits: what the runs on its device still need, then each run
    ahead of it at the pace of the device's current run. None when no pace is known yet."""
    paces = [run.step / max(1e-6, now - run.started_at) for run in running
             if run.started_at is not None and run.step]
    if running and not paces:
        return None
    left = [remaining_s(run, now) for run in running]
    if any(value is None for value in left):
        return None
    if ahead and not paces:
        return None
    pace = sum(paces) / len(paces) if paces else 1.0
    return min(left, default=0.0) + sum((run.total_steps or 0) / pace for run in ahead)
