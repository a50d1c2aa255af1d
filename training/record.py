"""What run.json holds, as types: a run's state (``RunState``) and its record (``RunRecord``).

    record = RunRecord.from_dict(json.loads(text))    # ValueError if it is not a run's record
    record.status is RunState.RUNNING; record.times.started; record.progress.step
    text = json.dumps(record.to_dict())              # the same keys and strings as ever

``training.store`` reads and writes run.json through ``RunRecord`` only; nothing else builds or
patches the dict. On disk nothing changed: the field names are the keys run.json always had, and
a state is stored as its string ("queued", "finished", ...). Keys this version does not know are
kept (``extra``) and written back unchanged, so an older reader never drops what a newer writer
added.

Only the standard library: the worker imports this before torch loads.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum


class RunState(StrEnum):
    """Where a run is. A StrEnum: equal to its string, which is what run.json stores."""

    QUEUED = "queued"  # recorded, waiting for its worker or for a free device
    RUNNING = "running"
    STOPPING = "stopping"  # shown, never stored: a stop was asked for and the worker is finishing
    FINISHED = "finished"
    STOPPED = "stopped"  # by request; it can resume from its last checkpoint
    DIVERGED = "diverged"  # the loss became NaN or infinite
    FAILED = "failed"  # an error, or the worker died; it can resume from its last checkpoint

    @property
    def active(self) -> bool:
        """Not ended: a worker is (or should be) working on it."""
        return self in ACTIVE

    @property
    def resumable(self) -> bool:
        return self in RESUMABLE


ACTIVE = frozenset({RunState.QUEUED, RunState.RUNNING, RunState.STOPPING})
TERMINAL = frozenset(RunState) - ACTIVE
RESUMABLE = frozenset({RunState.STOPPED, RunState.FAILED})


def _split(cls, data, what: str) -> tuple[dict, dict]:
    """(the keys that are fields of ``cls``, the others) of a JSON object."""
    if not isinstance(data, dict):
        raise ValueError(f"{what} must be a JSON object, not {type(data).__name__}")
    names = {f.name for f in fields(cls)} - {"extra"}
    return ({k: v for k, v in data.items() if k in names},
            {k: v for k, v in data.items() if k not in names})


def _plain(obj) -> dict:
    """A record part as JSON-ready data: its fields in order, then the keys it did not know."""
    data = {f.name: getattr(obj, f.name) for f in fields(obj) if f.name != "extra"}
    return {**data, **obj.extra}


@dataclass
class RunTimes:
    """Seconds since the epoch; None until it happened."""

    submitted: float = 0.0
    queued: float | None = None  # last put in the queue (by submit, or by a resume)
    started: float | None = None  # first began training
    finished: float | None = None  # last ended (cleared by a resume)
    updated: float | None = None  # run.json last written
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data) -> "RunTimes":
        known, extra = _split(cls, data, "times")
        return cls(**known, extra=extra)


@dataclass
class RunProgress:
    step: int = 0  # optimizer updates done (written at most once a second while training)
    epoch: float = 0
    total_steps: int = 0
    steps_per_epoch: int | None = None  # known once training starts
    checkpoint_steps: list[int] | None = None  # the planned checkpoint schedule
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data) -> "RunProgress":
        known, extra = _split(cls, data, "progress")
        return cls(**known, extra=extra)


@dataclass
class RunRecord:
    """One run, as run.json stores it."""

    run_id: str
    status: RunState
    message: str = ""  # why it ended, in words ("" while all is well)
    model: str = ""  # the model's name
    family: str = ""  # CNN, LSTM, Transformer, ...
    spec: dict = field(default_factory=dict)  # ModelSpec.to_dict()
    dataset: dict = field(default_factory=dict)  # name, source (a built-in's recipe; None: uploaded), meta, sizes
    hyperparameters: dict = field(default_factory=dict)  # Hyperparameters.to_dict()
    device: str | None = None  # where it trains, e.g. "cpu" or "cuda (NVIDIA H100 80GB HBM3)"
    best_val_acc: float | None = None
    last_val_acc: float | None = None
    resumes: int = 0
    progress: RunProgress = field(default_factory=RunProgress)
    times: RunTimes = field(default_factory=RunTimes)
    job: dict = field(default_factory=dict)  # backend, max_per_device
    device_detail: str | None = None  # the worker's torch device, e.g. "cuda:0"
    amp: str | None = None  # the autocast dtype, or "off"
    pid: int | None = None  # the worker's process id
    extra: dict = field(default_factory=dict)  # keys this version does not know, kept as they were
    owner: str | None = None  # who started it: a person_id (training.people); None: nobody (command line, one user)
    owner_name: str | None = None  # their name when they started it, only ever shown
    shared: bool = False  # the teacher shared it with the class: every student sees it and may use its model

    def __post_init__(self):
        # A state may be given as its string, and the nested parts as run.json's dicts.
        self.status = RunState(self.status)
        if isinstance(self.progress, dict):
            self.progress = RunProgress.from_dict(self.progress)
        if isinstance(self.times, dict):
            self.times = RunTimes.from_dict(self.times)

    @classmethod
    def from_dict(cls, data) -> "RunRecord":
        """The record in a run.json; ValueError (in words) if it is not one."""
        known, extra = _split(cls, data, "run.json")
        if not isinstance(known.get("run_id"), str):
            raise ValueError("run.json has no run id")
        try:
            known["status"] = RunState(known.get("status"))
        except ValueError:
            raise ValueError(f"run.json has no valid status ({known.get('status')!r})") from None
        if known["status"] is RunState.STOPPING:
            raise ValueError("run.json says 'stopping', a state that is only ever shown")
        for name in ("spec", "dataset", "hyperparameters", "job"):
            if not isinstance(known.get(name, {}), dict):
                raise ValueError(f"{name} in run.json must be a JSON object")
        for name in ("owner", "owner_name"):
            if not isinstance(known.get(name), (str, type(None))):
                raise ValueError(f"{name} in run.json must be a string or null")
        if not isinstance(known.get("shared", False), bool):
            raise ValueError("shared in run.json must be true or false")
        known["progress"] = RunProgress.from_dict(known.get("progress", {}))
        known["times"] = RunTimes.from_dict(known.get("times", {}))
        return cls(**known, extra=extra)

    def to_dict(self) -> dict:
        """run.json's content: the keys and strings it always had."""
        data = _plain(self)
        data.update(status=self.status.value, progress=_plain(self.progress), times=_plain(self.times))
        return data
