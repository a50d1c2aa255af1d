"""The training worker: ``python -m training.worker RUN_FOLDER [--resume]``, or a warm one:
``python -m training.worker --warm``, which loads torch and the trainer first and then waits for
its run (one JSON line on stdin: {"run_dir": ..., "resume": false}), so that a run starts
training without waiting for a fresh interpreter to import torch (``training.backends.local``
keeps one ready). A warm worker is used for one run, then ends like any other.

One process per run, started by ``training.jobs``. It is handed nothing but the run folder: it
reads run.json, rebuilds the dataset (a built-in one from its name and options, an uploaded
one from the tensors saved beside run.json), waits for a free slot on its device
(``training.device_queue``), trains, and records everything in the folder as it goes. Whatever happens to it (an exception, running out
of memory, a kill) happens in this process and never in the app's server.

While the worker lives, it alone writes run.json. A stop is asked for with a ``stop`` file in
the run folder and a SIGTERM: before training starts the signal ends the worker at once;
during training it only raises a flag, which the trainer reads between steps, so the run stops
cleanly with a checkpoint where it stopped.

Only the standard library is imported at the top, so that the signal handler and the
heartbeat are in place a few milliseconds after the process starts, long before torch loads.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import traceback
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

from training.device_queue import StopRequested, device_slot
from training.record import RunState

HEARTBEAT_EVERY_S = 1.0


_stop_flag = threading.Event()
_raise_on_stop = True  # False once the trainer runs: from then on a stop is a flag it reads


def _on_sigterm(signum, frame):
    _stop_flag.set()
    if _raise_on_stop:
        raise StopRequested()


def main(argv: list[str] | None = None) -> int:
    global _raise_on_stop
    signal.signal(signal.SIGTERM, _on_sigterm)
    args = sys.argv[1:] if argv is None else argv
    run_dir = Path(args[0]).resolve()
    resume = "--resume" in args[1:]
    _start_heartbeat(run_dir / "heartbeat")
    run = None
    try:
        if (run_dir / "stop").exists():
            raise StopRequested()
        from training.store import RunStore  # torch loads here

        store = RunStore(run_dir.parent.parent)
        run = RunFile(store, run_dir.name)
        exit_code = train_run(run, store, resume)
        _raise_on_stop = False
        return exit_code
    except StopRequested:
        _raise_on_stop = False
        record_end(run, run_dir, RunState.STOPPED, "Stopped before training began.")
        return 0
    except BaseException as err:  # noqa: BLE001 - every failure must end up in run.json, in words
        _raise_on_stop = False
        traceback.print_exc()  # into worker.log, for whoever wants the details
        record_end(run, run_dir, RunState.FAILED, explain_failure(err))
        return 1


def warm_main() -> int:
    """Load what training needs, then wait for a run (see the module docstring). An empty line,
    or the end of stdin (the server ended, or let this worker go), ends it without a run."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))  # nobody's run yet: just end
    preload()
    print("ready", flush=True)  # to the server, which may wait for it (a benchmark, a test)
    line = sys.stdin.readline()
    if not line.strip():
        return 0
    order = json.loads(line)
    for name, value in order.get("env", {}).items():  # what the server has now (see LATE_VARIABLES)
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    run_dir = Path(order["run_dir"])
    log = os.open(run_dir / "worker.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(log, 1)  # from now on, everything printed goes to the run's log, as for a cold worker
    os.dup2(log, 2)
    os.close(log)
    return main([str(run_dir)] + (["--resume"] if order.get("resume") else []))


_preloaded: dict[str, object] = {}  # the built-in datasets a warm worker made while it waited, by source


def _source_key(source: dict) -> str:
    return json.dumps(source, sort_keys=True)


def preload() -> None:
    """Import what a run needs, make the built-in datasets that need no download (their default
    options), and take torch's first, slow, steps once (a tiny forward and backward pass), so
    that the run's first step comes as quickly as its later ones."""
    import torch

    import models  # noqa: F401 - loaded now, used by the run
    import training.store  # noqa: F401
    import training.trainer  # noqa: F401
    from training.datasets import builtin_names, load_dataset, needs_download
    from training.devices import worker_cpu_threads

    for name in builtin_names():
        if not needs_download(name):
            try:
                dataset = load_dataset(name)
            except Exception:  # noqa: BLE001 - a run that needs it builds it again, and says what is wrong
                continue
            _preloaded[_source_key(dataset.source)] = dataset

    torch.set_num_threads(worker_cpu_threads())
    layer = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.LazyLinear(2))
    optimizer = torch.optim.AdamW(layer.parameters())
    torch.nn.functional.cross_entropy(layer(torch.zeros(2, 1, 6, 6)), torch.zeros(2, dtype=torch.long)).backward()
    optimizer.step()


def train_run(run: "RunFile", store, resume: bool, device_queue: bool = True) -> int:
    """Train the run in this process, recording into ``store``. ``device_queue=False``: the
    caller has the device to itself already (a Ray actor, to which Ray gave its device)."""
    global _raise_on_stop
    from models import ModelSpec, build_model
    from training.devices import device_label, pick_device, worker_cpu_threads
    from training.hyperparameters import Hyperparameters
    from training.trainer import Trainer

    hp = Hyperparameters.from_dict(run.record.hyperparameters).check()
    device = pick_device(hp.device)
    if device.type == "cpu":
        import torch

        torch.set_num_threads(worker_cpu_threads())
    run.set(status=RunState.QUEUED, device=device_label(device), pid=os.getpid())
    limit = int(run.record.job.get("max_per_device", 1))
    ticket = f"{run.record.times.queued or time.time():017.6f}-{run.run_id}"
    slot = (device_slot(store.root, _device_key(device), limit, ticket, lambda: run.stop_requested(),
                        owner=run.record.owner) if device_queue else nullcontext())
    with slot:
        times = run.record.times
        run.set(status=RunState.RUNNING, message="", times=replace(times, started=times.started or time.time()))
        dataset = load_run_dataset(store, run.run_id, run.record)
        recorder = RunRecorder(run, store, dataset.meta())
        start_step, optimizer_state = resume_point(store, run.run_id) if resume else (0, None)
        finetune = run.record.extra.get("finetune")  # a pretrained model's fine-tune (training.finetune)
        if start_step or optimizer_state:
            model = store.load_model(run.run_id, start_step)
        elif finetune:
            from training.finetune_run import start_run_model

            model = start_run_model(finetune, dataset.class_names, hp.seed, run.record.model)
        else:
            model = build_model(ModelSpec.from_dict(run.record.spec), seed=hp.seed)
        if resume:  # readers drop what the lost attempt recorded after this step (it is redone)
            recorder.writer.write({"type": "resume", "step": start_step, "optimizer_restored": optimizer_state is not None,
                                   "time": time.time()})
        if finetune:
            from training.finetune_run import trainer_options

            options = trainer_options(model, finetune, hp)
        trainer = Trainer(model, dataset, hp, [recorder], **(options if finetune else {}))
        _raise_on_stop = False
        if _stop_flag.is_set():  # a SIGTERM that arrived just before the switch
            raise StopRequested()
        result = trainer.fit(start_step, optimizer_state)
        recorder.close()
        # Recorded before the device is let go: the next run never starts before this one ended.
        record_end(run, None, result.status, result.message, step=result.step)
    return 0


class RunFile:
    """run.json as this worker keeps it (a ``RunRecord``): the worker is its only writer while it runs."""

    PROGRESS_EVERY_S = 1.0  # progress is also in metrics.jsonl; run.json needs it only roughly

    def __init__(self, store, run_id: str):
        self.store, self.run_id = store, run_id
        self.folder = store.path(run_id)
        self.record = store.read(run_id)
        self._written_at = 0.0

    def set(self, **changes) -> None:
        """Change fields of the record and write now (a status, a time, anything a reader must see at once)."""
        self.record = replace(self.record, **changes)
        self._written_at = time.time()
        self.record.times = replace(self.record.times, updated=self._written_at)
        self.store.write(self.record)

    def note(self, **changes) -> None:
        """Change, but write at most once a second: progress that training updates often."""
        self.record = replace(self.record, **changes)
        if time.time() - self._written_at >= self.PROGRESS_EVERY_S:
            self.set()

    def set_progress(self, **changes) -> None:
        self.set(progress=replace(self.record.progress, **changes))

    def note_progress(self, **changes) -> None:
        self.note(progress=replace(self.record.progress, **changes))

    def stop_requested(self) -> bool:
        return _stop_flag.is_set() or (self.folder / "stop").exists()


def record_end(run: RunFile | None, run_dir: Path | None, status: RunState, message: str,
                step: int | None = None) -> None:
    """The final status; written even when run.json could not be read at start (then read now)."""
    try:
        if run is None:
            from training.store import RunStore

            run = RunFile(RunStore(run_dir.parent.parent), run_dir.name)
        times = replace(run.record.times, finished=time.time())
        progress = run.record.progress if step is None else replace(run.record.progress, step=step)
        run.set(status=status, message=message, times=times, progress=progress)
    except Exception:  # noqa: BLE001 - nothing more can be recorded; the server will see the exit code
        traceback.print_exc()


class RunRecorder:
    """Turns a Trainer's records and checkpoints into the run folder.

    Writes are synchronous and cheap: metrics are one line each, run.json's progress is written
    at most once a second, checkpoints after the first skip the re-validation of an unchanged
    spec (``CheckpointWriter``). The optimizer state (what a resume needs beside the weights)
    is saved with a checkpoint only when the last save is OPTIMIZER_EVERY_S old, and always
    with the last one and with the one where a stop landed: the dense early checkpoints come
    milliseconds apart, and a resume starts from the checkpoint that has it.

    It implements ``training.callbacks.Callback`` without subclassing it, so that importing this
    module stays free of torch (see the module docstring).
    """

    OPTIMIZER_EVERY_S = 2.0

    def __init__(self, run: RunFile, store, meta: dict):
        from training.store import CheckpointWriter

        self.run, self.store, self.meta = run, store, meta
        self.writer = store.metrics_writer(run.run_id)
        self.checkpoints = CheckpointWriter(store, run.run_id)
        self.total_steps: int | None = None
        self._optimizer_saved_at = float("-inf")

    def on_start(self, info: dict) -> None:
        self.total_steps = info["total_steps"]
        self.run.set(device_detail=info["device"], amp=info["amp"])
        self.run.set_progress(total_steps=info["total_steps"], steps_per_epoch=info["steps_per_epoch"],
                              checkpoint_steps=info["checkpoint_steps"])

    def on_metrics(self, record: dict) -> None:
        self.writer.write(record)
        if record["type"] == "train":
            self.run.note_progress(step=record["step"], epoch=record["epoch"])
        elif record["type"] == "val":
            best = self.run.record.best_val_acc
            self.run.note(best_val_acc=record["val_acc"] if best is None else max(best, record["val_acc"]),
                          last_val_acc=record["val_acc"])

    def on_checkpoint(self, step: int, epoch: float, model, optimizer_state: dict) -> None:
        run_id = self.run.run_id
        self.checkpoints.save(step, model, meta={**self.meta, "run_id": run_id, "step": step, "epoch": epoch})
        now = time.time()
        if (now - self._optimizer_saved_at >= self.OPTIMIZER_EVERY_S or step == self.total_steps
                or self.run.stop_requested()):
            self.store.save_optimizer_state(run_id, step, optimizer_state)  # after the model: never ahead of it
            self._optimizer_saved_at = now

    def should_stop(self) -> bool:
        return self.run.stop_requested()

    def close(self) -> None:
        self.writer.close()


def resume_point(store, run_id: str) -> tuple[int, dict | None]:
    """(step, optimizer state) to resume from: the checkpoint the optimizer state was saved with,
    or, if that one is missing, the latest checkpoint with a fresh optimizer; (0, None) if none."""
    steps = store.checkpoint_steps(run_id)
    saved = store.load_optimizer_state(run_id)
    if saved is not None and saved[0] in steps:
        return saved
    return (steps[-1], None) if steps else (0, None)


def load_run_dataset(store, run_id: str, record):
    """The run's dataset: rebuilt from its recipe, or read back from the tensors saved at submit."""
    source = record.dataset.get("source")
    if source is None:
        return store.load_dataset(run_id)
    from training.data import DatasetError
    from training.datasets import load_dataset

    dataset = _preloaded.get(_source_key(source)) or load_dataset(source["builtin"], **source.get("options", {}))
    expected = record.dataset.get("meta", {})
    if (list(dataset.input_shape) != expected.get("input_shape", list(dataset.input_shape))
            or list(dataset.class_names) != expected.get("class_names", list(dataset.class_names))):
        raise DatasetError(f"the built-in dataset '{source['builtin']}' is not the same as when this run was "
                           "started (its inputs or classes changed); start a new run")
    return dataset


def _device_key(device) -> str:
    if device.type == "cuda":
        import torch

        return f"cuda{device.index if device.index is not None else torch.cuda.current_device()}"
    return device.type


# ---- liveness and failures -------------------------------------------------------------
def _start_heartbeat(path: Path) -> None:
    """Touch ``path`` every second: a server that did not start this worker can tell it lives."""

    def beat():
        while True:
            try:
                path.touch()
            except OSError:
                pass
            time.sleep(HEARTBEAT_EVERY_S)

    threading.Thread(target=beat, name="heartbeat", daemon=True).start()


def explain_failure(err: BaseException) -> str:
    """One line a student can act on."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    name = type(err).__name__
    if name == "OutOfMemoryError" or "out of memory" in text.lower():
        return "The GPU ran out of memory; try a smaller batch size or a smaller model."
    if isinstance(err, MemoryError):
        return "The computer ran out of memory; try a smaller batch size, model or dataset."
    if name in ("DeviceError", "DatasetError", "HyperparameterError", "CheckpointError", "SpecError"):
        return text[:1].upper() + text[1:] if text else name
    if isinstance(err, ModuleNotFoundError) and "training.datasets" in text:
        return "The built-in datasets are not available in this installation."
    return f"Training failed: {name}: {text}"[:500]


if __name__ == "__main__":
    sys.exit(warm_main() if sys.argv[1:] == ["--warm"] else main())
