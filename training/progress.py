"""Where a run is, in words: the line under the progress bar and the status sentence.

    progress = describe_progress(jobs.status(run_id), records)
    progress.fraction  # 0..1 for the bar
    progress.text      # 'epoch 2/5 · step 120/300 · 1,850 samples/s · about 12 s left · cpu'

Pure: a run's status (a ``training.jobs.RunStatus`` or anything with its fields) and its
metrics records in, text out; ``now`` can be given, so tests never depend on the clock.
"""
from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from training.record import RunState

RATE_WINDOW_S = 10.0  # the speed is measured over the last this many seconds of records

# Status -> (tone, sentence without a message, sentence with the run's message). The tone
# picks how the page shows it: info, success, warning or error.
STATUS_WORDS = {
    RunState.QUEUED: ("info", "Queued: waiting for the device (another run may be training first).", None),
    RunState.RUNNING: ("info", "Running.", None),
    RunState.STOPPING: ("info", "Stopping: saving where it got to.", None),
    RunState.STOPPED: ("warning", "Stopped. Resume to continue from where it stopped.",
                        "{message} Resume to continue from there."),
    RunState.FINISHED: ("success", "Finished.", None),
    RunState.DIVERGED: ("error", "Diverged: the loss became NaN or infinite. Try a lower learning rate.",
                        "Diverged. {message}"),
    RunState.FAILED: ("error", "Failed, without a recorded reason.", "Failed. {message}"),
}


@dataclass(frozen=True)
class Progress:
    fraction: float  # 0..1
    text: str
    samples_per_s: float | None
    seconds_left: float | None


def status_words(status: RunState | str, message: str = "") -> tuple[str, str]:
    """(tone, sentence) for a run's status, with the run's own message where it matters: the
    advice when it diverged, the reason when it failed, where it stopped."""
    tone, plain, with_message = STATUS_WORDS.get(status, ("info", f"{status[:1].upper()}{status[1:]}.", None))
    message = (message or "").strip()
    return tone, with_message.format(message=message) if message and with_message else plain


@dataclass(frozen=True)
class StatusText:
    tone: str  # info, success, warning or error: how the page shows the sentence
    label: str  # the runs table's cell: 'starting', 'queued', 'running 45%', 'finished', ...
    sentence: str  # the live panel's: 'Running on cpu.', 'Queued: waiting for ...', ...


def describe_status(run, records: Sequence[Mapping] = (), waiting_for: str | None = None,
                    now: float | None = None) -> StatusText:
    """A run's state in words, for the runs table (``label``) and the live panel (``sentence``).

    Both come from here, from one read of the run and its records, so the table never says
    'queued' (or an older percentage) while the panel says 'Running'. ``waiting_for`` names the
    run training ahead of a queued one (None: nothing is ahead, so its worker is starting); the
    percentage is the progress bar's (``describe_progress``), records included.
    """
    tone, sentence = status_words(run.status, run.message)
    label = str(run.status)
    if run.status == RunState.QUEUED:
        if waiting_for:
            sentence = f"Queued: waiting for the run {waiting_for} to finish (one run trains at a time)."
        else:
            label, sentence = "starting", "Starting: loading the model and the data…"
    elif run.status == RunState.RUNNING:
        fraction = describe_progress(run, records, now).fraction
        label = f"running {int(fraction * 100)}%"  # as the progress bar rounds it
        if run.device:
            sentence = f"Running on {run.device}."
    elif run.status == RunState.FINISHED and run.last_val_acc is not None:
        sentence = (f"Finished: {run.last_val_acc:.1%} of the validation examples right at the end "
                    f"(best {run.best_val_acc:.1%}).")
    return StatusText(tone, label, sentence)


def run_ahead(run, runs: Sequence):
    """The run training now that a queued ``run`` waits for (one run trains at a time), or None."""
    if run.status != RunState.QUEUED:
        return None
    return next((other for other in runs if other.status == RunState.RUNNING and other.run_id != run.run_id), None)


def describe_progress(run, records: Sequence[Mapping], now: float | None = None) -> Progress:
    """The progress bar's fraction and text for ``run`` (step, total_steps, epochs, device,
    status, started_at, finished_at) given its metrics records."""
    now = time.time() if now is None else now
    total = int(run.total_steps or 0)
    step = min(int(run.step or 0), total) if total else int(run.step or 0)
    last_step = _last_train_step(records)
    if last_step is not None and (not total or last_step <= total):
        step = max(step, last_step)  # records are written at once; run.json only once a second
    fraction = min(1.0, step / total) if total else 0.0
    if run.status == RunState.FINISHED:
        fraction, step = 1.0, total or step
    epochs = int(run.epochs or 0)
    parts = []
    if epochs and total:
        per_epoch = total / epochs
        epoch = min(epochs, max(1, math.ceil(step / per_epoch - 1e-9)))  # update n belongs to epoch ⌈n / per epoch⌉
        parts.append(f"epoch {epoch:,}/{epochs:,}")
    parts.append(f"step {step:,}/{total:,}" if total else f"step {step:,}")
    rate, steps_per_s = training_rate(records, now)
    seconds_left = None
    if run.status == RunState.QUEUED:
        parts.append("waiting to start")
    elif run.status in (RunState.RUNNING, RunState.STOPPING):
        if rate is not None:
            parts.append(f"{rate:,.0f} samples/s")
        if steps_per_s and total:
            seconds_left = max(0.0, (total - step) / steps_per_s)
            parts.append(f"about {format_duration(seconds_left)} left")
    elif run.started_at is not None and run.finished_at is not None:
        parts.append(f"took {format_duration(run.finished_at - run.started_at)}")
    if run.device:
        parts.append(str(run.device))
    return Progress(fraction, " · ".join(parts), rate, seconds_left)


def _last_train_step(records: Sequence[Mapping]) -> int | None:
    for record in reversed(records):
        if record.get("type") == "train" and isinstance(record.get("step"), (int, float)):
            return int(record["step"])
    return None


def training_rate(records: Sequence[Mapping], now: float | None = None,
                  window_s: float = RATE_WINDOW_S) -> tuple[float | None, float | None]:
    """(samples per second, steps per second) over the last ``window_s`` seconds of records.

    Samples/s is the median of what the trainer measured in the window; steps/s comes from the
    records' steps and times, so it includes validation and checkpoints: what the time left
    depends on.
    Records before the last resume are ignored (their times belong to another process).
    """
    train = []
    for record in records:
        if record.get("type") == "resume":
            train = []
        elif record.get("type") == "train" and _number(record.get("time")) and _number(record.get("step")):
            train.append(record)
    if not train:
        return None, None
    last = train[-1]
    window = [r for r in train if last["time"] - r["time"] <= window_s]
    first = window[0]
    measured = [float(r["samples_per_s"]) for r in window if _number(r.get("samples_per_s"))]
    samples = float(np.median(measured)) if measured else None  # one slow window (a checkpoint) is not the speed
    elapsed, steps = last["time"] - first["time"], last["step"] - first["step"]
    steps_per_s = steps / elapsed if elapsed > 0 and steps > 0 else None
    return samples, steps_per_s


def format_duration(seconds: float) -> str:
    """'12 s', '3 min 5 s', '1 h 5 min' (rounded up to whole seconds: 0.2 s reads '1 s')."""
    seconds = max(0, math.ceil(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
