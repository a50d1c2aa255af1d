"""The run store: one folder per training run, written as training happens.

    $GLASSBOX_HOME/runs/<run_id>/        (GLASSBOX_HOME defaults to ~/.glassbox)
        run.json                  spec, dataset, hyperparameters, status, times, device, progress
                                  (read and written as a ``training.record.RunRecord``, only here)
        metrics.jsonl             one JSON record per line, append-only
        checkpoints/step_N/       Glassbox checkpoints (spec.json, model.safetensors, meta.json)
        checkpoints/optimizer.safetensors   the optimizer state of the latest checkpoint (resume)
        data.safetensors, dataset.json      uploaded data only: built-in data is rebuilt from its name
        pid, heartbeat, stop, worker.log    the worker's process id, liveness, stop request, output

Every file is written so that a reader, or a worker killed half-way, never leaves half of one
behind: run.json and the optimizer state are written to a temporary file and renamed over the
old one; a checkpoint folder is written under a temporary name and renamed when complete;
metrics lines are appended one ``write`` at a time, and a reader ignores a torn last line.
Nothing here unpickles anything: tensors are safetensors, everything else JSON.
"""
from __future__ import annotations

import json
import math
import os
import re
import secrets
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import safetensors.torch
import torch

from models.files import write_atomically
from training.record import RunRecord, RunState  # noqa: F401 - RunState: the store's states, imported from here too

RUN_FILE, METRICS_FILE, CHECKPOINTS_DIR = "run.json", "metrics.jsonl", "checkpoints"
OPTIMIZER_FILE = "optimizer.safetensors"
DATA_FILE, DATASET_FILE = "data.safetensors", "dataset.json"
PID_FILE, HEARTBEAT_FILE, STOP_FILE, LOG_FILE = "pid", "heartbeat", "stop", "worker.log"
RUN_ID = re.compile(r"^\d{8}-\d{6}-[a-z0-9-]{1,60}$")  # 20261124-101500-digits-cnn-ab12
STEP_DIR = re.compile(r"^step_(\d+)$")
DATA_TENSORS = ("x_train", "y_train", "x_val", "y_val")


class RunNotFound(LookupError):
    """No run with that id in this store."""


def default_root() -> Path:
    return Path(os.environ.get("GLASSBOX_HOME") or Path.home() / ".glassbox").expanduser()


def new_run_id(model_name: str) -> str:
    """Sortable by time and readable: '20261124-101500-digits-cnn-ab12'."""
    slug = re.sub(r"[^a-z0-9]+", "-", model_name.lower()).strip("-")[:40] or "model"
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}-{secrets.token_hex(2)}"


def to_json_line(record: dict) -> bytes:
    """One metrics line; NaN and infinities (invalid JSON) become null."""
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
    return json.dumps(clean, separators=(",", ":"), allow_nan=False).encode("utf-8") + b"\n"


class MetricsWriter:
    """Appends records to metrics.jsonl, each line in one write() so that it lands whole or not at all."""

    def __init__(self, path: Path):
        self._file = open(path, "ab", buffering=0)
        # A worker killed mid-line leaves a torn line without "\n"; end it, so the next record
        # starts on a line of its own (the reader skips the torn one).
        if self._file.tell() > 0:
            with open(path, "rb") as reader:
                reader.seek(-1, os.SEEK_END)
                if reader.read(1) != b"\n":
                    self._file.write(b"\n")

    def write(self, record: dict) -> None:
        self._file.write(to_json_line(record))

    def write_lines(self, chunk: bytes) -> None:
        """Append complete lines written elsewhere (a Ray worker's), in one write."""
        self._file.write(chunk)

    def close(self) -> None:
        self._file.close()


class RunStore:
    def __init__(self, root: str | Path | None = None):
        self.root = Path(root).expanduser() if root is not None else default_root()
        self.runs_dir = self.root / "runs"

    # ---- runs ------------------------------------------------------------------------
    def path(self, run_id: str) -> Path:
        if not isinstance(run_id, str) or not RUN_ID.match(run_id):  # also keeps paths inside the store
            raise RunNotFound(f"'{run_id}' is not a run id")
        return self.runs_dir / run_id

    def create(self, model_name: str, record: RunRecord | dict) -> str:
        """A new run folder holding ``record`` as run.json (under its new run_id); returns the id.

        ``record`` may also be run.json's content as a dict (its run_id is filled in here)."""
        data = record.to_dict() if isinstance(record, RunRecord) else dict(record)
        RunRecord.from_dict({**data, "run_id": ""})  # a record that cannot be read back makes no folder
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        while True:
            run_id = new_run_id(model_name)
            try:
                self.path(run_id).mkdir()
                break
            except FileExistsError:  # same second, same random suffix: draw again
                continue
        (self.path(run_id) / CHECKPOINTS_DIR).mkdir()
        self.write(RunRecord.from_dict({**data, "run_id": run_id}))
        return run_id

    def exists(self, run_id: str) -> bool:
        try:
            return (self.path(run_id) / RUN_FILE).is_file()
        except RunNotFound:
            return False

    def read(self, run_id: str) -> RunRecord:
        """The run's record; RunNotFound if there is no such run, ValueError if run.json is damaged."""
        try:
            data = json.loads((self.path(run_id) / RUN_FILE).read_bytes())
        except FileNotFoundError:
            raise RunNotFound(f"there is no run '{run_id}' in {self.runs_dir}") from None
        try:
            return RunRecord.from_dict(data)
        except ValueError as err:
            raise ValueError(f"the run '{run_id}' has a damaged run.json: {err}") from None

    def write(self, record: RunRecord) -> None:
        """Replace run.json with ``record``, atomically: a reader sees the old one or the new one."""
        payload = json.dumps(record.to_dict(), indent=1).encode("utf-8")
        write_atomically(self.path(record.run_id) / RUN_FILE, payload, durable=False)

    def update(self, run_id: str, **changes) -> RunRecord:
        """Read, change fields, write back. Only one process may write a run at a time:
        its worker while the worker lives, the server otherwise."""
        record = replace(self.read(run_id), **changes)
        self.write(record)
        return record

    def run_ids(self) -> list[str]:
        """Newest first (ids begin with the time they were made)."""
        if not self.runs_dir.is_dir():
            return []
        ids = [p.name for p in self.runs_dir.iterdir() if RUN_ID.match(p.name) and (p / RUN_FILE).is_file()]
        return sorted(ids, reverse=True)

    def delete(self, run_id: str) -> None:
        shutil.rmtree(self.path(run_id), ignore_errors=True)

    # ---- the worker's files: a stop request, and what the last worker left -------------
    def ask_to_stop(self, run_id: str) -> None:
        """Leave the lasting stop request (the worker looks for it between steps)."""
        path = self.path(run_id) / STOP_FILE
        if not path.exists():
            write_atomically(path, str(time.time()).encode())

    def stop_asked_at(self, run_id: str) -> float | None:
        """When a stop was asked for (seconds since the epoch), or None if it was not."""
        try:
            return (self.path(run_id) / STOP_FILE).stat().st_mtime
        except OSError:
            return None

    def forget_worker(self, run_id: str) -> None:
        """Before a resume: drop the stop request and the old worker's pid, which is not to be
        taken for the new worker's."""
        folder = self.path(run_id)
        (folder / STOP_FILE).unlink(missing_ok=True)
        (folder / PID_FILE).unlink(missing_ok=True)

    # ---- metrics ---------------------------------------------------------------------
    def metrics_writer(self, run_id: str) -> MetricsWriter:
        return MetricsWriter(self.path(run_id) / METRICS_FILE)

    def read_metrics(self, run_id: str, offset: int = 0) -> tuple[list[dict], int]:
        """Records from byte ``offset`` on, and the offset to read from next time (for polling).

        Only complete lines are read; a line still being written is left for the next call, and
        a line torn by a killed worker (never completed) is skipped.
        """
        path = self.path(run_id) / METRICS_FILE
        try:
            with open(path, "rb") as handle:
                handle.seek(offset)
                chunk = handle.read()
        except FileNotFoundError:
            return [], offset
        end = chunk.rfind(b"\n") + 1
        records = []
        for line in chunk[:end].splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records, offset + end

    def metrics(self, run_id: str) -> list[dict]:
        """The run's history as the model lived it: a resume from step S drops the records that
        the lost attempt wrote after S, since that training was redone."""
        history: list[dict] = []
        for record in self.read_metrics(run_id)[0]:
            if record.get("type") == "resume":
                history = [r for r in history if r.get("step", 0) <= record.get("step", 0)]
            history.append(record)
        return history

    # ---- checkpoints -----------------------------------------------------------------
    def checkpoint_path(self, run_id: str, step: int) -> Path:
        return self.path(run_id) / CHECKPOINTS_DIR / f"step_{int(step)}"

    def checkpoint_steps(self, run_id: str) -> list[int]:
        """Steps with a complete checkpoint, in order (folders still being written are hidden)."""
        folder = self.path(run_id) / CHECKPOINTS_DIR
        if not folder.is_dir():
            return []
        return sorted(int(m.group(1)) for p in folder.iterdir() if (m := STEP_DIR.match(p.name)))

    def save_checkpoint(self, run_id: str, step: int, model, meta: dict) -> Path:
        """The model as a Glassbox checkpoint folder, which appears under its name only when complete."""
        from models.checkpoint import save_checkpoint

        if model.is_pretrained:  # a fine-tuned pretrained model: a Hugging Face folder (models.pretrained.finetuned)
            from models.pretrained.finetuned import save_finetuned

            return self._publish(run_id, step, lambda folder: save_finetuned(model, folder, meta))
        return self._publish(run_id, step, lambda folder: save_checkpoint(model, folder, meta=meta))

    def _publish(self, run_id: str, step: int, write) -> Path:
        """Run ``write(folder)`` on a hidden folder, then give it its name step_N."""
        final = self.checkpoint_path(run_id, step)
        temporary = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}."))
        try:
            write(temporary)
            if final.exists():  # redone after a resume: the new one replaces the old
                old = final.with_name(f".{final.name}.old-{secrets.token_hex(3)}")
                os.replace(final, old)
                shutil.rmtree(old, ignore_errors=True)
            os.replace(temporary, final)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
        return final

    def load_model(self, run_id: str, step: int | None = None):
        """The model at ``step`` (default: the latest checkpoint), on the CPU in eval mode."""
        from models.checkpoint import load_checkpoint

        steps = self.checkpoint_steps(run_id)
        if not steps:
            raise RunNotFound(f"run '{run_id}' has no checkpoint yet")
        if step is None:
            step = steps[-1]
        if step not in steps:
            raise RunNotFound(f"run '{run_id}' has no checkpoint at step {step}; it has {steps}")
        return load_checkpoint(self.checkpoint_path(run_id, step))

    def save_optimizer_state(self, run_id: str, step: int, state: dict) -> None:
        tensors: dict[str, torch.Tensor] = {}
        structure = _encode(state, tensors, "s")
        payload = safetensors.torch.save(tensors, metadata={"step": str(int(step)), "structure": json.dumps(structure)})
        write_atomically(self.path(run_id) / CHECKPOINTS_DIR / OPTIMIZER_FILE, payload)

    def save_optimizer_file(self, run_id: str, payload: bytes) -> None:
        """The bytes of an optimizer state saved elsewhere (a Ray worker's ``save_optimizer_state``)."""
        write_atomically(self.path(run_id) / CHECKPOINTS_DIR / OPTIMIZER_FILE, payload)

    def save_checkpoint_files(self, run_id: str, step: int, files: dict[str, bytes]) -> Path:
        """A checkpoint written elsewhere (a Ray worker's), by file name, published whole like any other."""
        def write(folder: Path) -> None:
            for name, payload in files.items():
                (folder / Path(name).name).write_bytes(payload)  # a bare name: nothing lands outside the folder

        return self._publish(run_id, step, write)

    def load_optimizer_state(self, run_id: str) -> tuple[int, dict] | None:
        """(step, state) of the latest saved optimizer state, or None if there is none."""
        path = self.path(run_id) / CHECKPOINTS_DIR / OPTIMIZER_FILE
        if not path.is_file():
            return None
        with safetensors.safe_open(path, "pt") as handle:
            metadata = handle.metadata()
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        return int(metadata["step"]), _decode(json.loads(metadata["structure"]), tensors)

    # ---- uploaded datasets -----------------------------------------------------------
    def save_dataset(self, run_id: str, dataset) -> None:
        """Uploaded data has no recipe to rebuild it from, so its tensors travel in the run folder."""
        folder = self.path(run_id)
        tensors = {name: getattr(dataset, name).detach().cpu().contiguous() for name in DATA_TENSORS}
        write_atomically(folder / DATA_FILE, safetensors.torch.save(tensors))
        about = {key: getattr(dataset, key) for key in
                 ("name", "input_kind", "class_names", "vocab", "normalization", "image_options", "description")}
        write_atomically(folder / DATASET_FILE, json.dumps(about, default=_to_plain).encode("utf-8"))

    def load_dataset(self, run_id: str):
        from training.data import Dataset

        folder = self.path(run_id)
        tensors = safetensors.torch.load((folder / DATA_FILE).read_bytes())
        about = json.loads((folder / DATASET_FILE).read_bytes())
        return Dataset(**about, **{name: tensors[name] for name in DATA_TENSORS},
                       preprocess=_no_preprocess, source=None)


class CheckpointWriter:
    """Writes the checkpoints of one run, in exactly the format of ``models.checkpoint``, fast.

    ``save_checkpoint`` checks the spec and the weights against a freshly built reference model
    and serialises the spec on every call: a few milliseconds, paid a dozen times in the first
    steps of a run. Here the first checkpoint goes through it, and later ones (same model, so
    the same spec and the same weight names and shapes) reuse its spec.json and write only
    model.safetensors and meta.json; a test checks the files are byte-identical to
    ``save_checkpoint``'s. No fsync: a rename is atomic for a killed process, which is what
    the run store guards against.
    """

    def __init__(self, store: RunStore, run_id: str):
        self.store, self.run_id = store, run_id
        self._spec_json: bytes | None = None

    def save(self, step: int, model, meta: dict) -> Path:
        from models.checkpoint import FORMAT, FORMAT_KEY, META_FILE, SPEC_FILE, WEIGHTS_FILE

        if model.is_pretrained:  # a fine-tuned model has no spec.json to reuse
            return self.store.save_checkpoint(self.run_id, step, model, meta)
        if self._spec_json is None:
            folder = self.store.save_checkpoint(self.run_id, step, model, meta)
            self._spec_json = (folder / SPEC_FILE).read_bytes()
            return folder
        weights = {name: t.detach().to("cpu", copy=True).contiguous() for name, t in model.state_dict().items()}
        files = {
            WEIGHTS_FILE: safetensors.torch.save(weights, metadata={"format": "pt"}),
            META_FILE: json.dumps({**meta, FORMAT_KEY: FORMAT}, indent=2, ensure_ascii=False,
                                  default=_to_plain).encode("utf-8"),
            SPEC_FILE: self._spec_json,  # last, as save_checkpoint does
        }

        def write(folder: Path) -> None:
            for name, payload in files.items():
                (folder / name).write_bytes(payload)

        return self.store._publish(self.run_id, step, write)


def _no_preprocess(raw):
    raise RuntimeError("this dataset was rebuilt from saved tensors for training; it cannot prepare new inputs")


def _to_plain(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} cannot be stored as JSON")


# ---- an optimizer state_dict as safetensors + a JSON skeleton ------------------------------
# state_dicts nest dicts with int keys (parameter ids), lists, tuples, numbers and tensors; the
# skeleton keeps the nesting and key types, and names each tensor stored beside it.
def _encode(value, tensors: dict, path: str):
    if isinstance(value, torch.Tensor):
        tensors[path] = value.detach().to("cpu", copy=True).contiguous()
        return {"tensor": path}
    if isinstance(value, dict):
        return {"dict": [[key, _encode(item, tensors, f"{path}.{key}")] for key, item in value.items()]}
    if isinstance(value, (list, tuple)):
        return {"list": [_encode(item, tensors, f"{path}.{i}") for i, item in enumerate(value)]}
    return {"value": value}


def _decode(node: dict, tensors: dict):
    if "tensor" in node:
        return tensors[node["tensor"]]
    if "dict" in node:
        return {key: _decode(item, tensors) for key, item in node["dict"]}
    if "list" in node:
        return [_decode(item, tensors) for item in node["list"]]
    return node["value"]
