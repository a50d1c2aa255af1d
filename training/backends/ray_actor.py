"""What runs on a Ray node for one run: ``RunActor`` trains it and hands its records back.

The Ray backend (``training.backends.ray``) makes one detached, named actor of this class per
run attempt, or hands the attempt to a spare one that has loaded torch already
(``training.backends.ray_turns``). No filesystem is shared with the server: the actor is given
the files of the run that training reads (run.json, an uploaded dataset's tensors, and for a resume the checkpoint
and optimizer state to continue from) as bytes, writes them into a run folder of its own in a
temporary directory on its node, and trains there with the same code as the local worker
(``training.worker.train_run``, without the file-based device queue: Ray gave the actor its
device). The server pulls what the worker wrote (``pull``) and writes it into the real run
folder with the run store's own code; nothing here knows where the server keeps its runs.

This module imports no Ray: the backend wraps the class with ``ray.remote`` when it launches.
"""
from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import traceback
from pathlib import Path

METRICS_CHUNK_BYTES = 4 * 1024 * 1024  # at most this much of metrics.jsonl per pull


class RunActor:
    """Trains one run in a thread of its own; every method answers at once (a threaded actor).

    Made with ``run`` (run_id, files, resume), it starts on that run at once (a cold start). Made
    without, it is a spare (``training.backends.ray_turns``): it loads what training needs (torch,
    the trainer, the built-in datasets; ``training.worker.preload``) and waits, holding no file,
    until ``begin`` hands it a run.
    """

    def __init__(self, cpu_threads: int = 1, run: tuple | None = None):
        os.environ["GLASSBOX_WORKER_THREADS"] = str(max(1, cpu_threads))  # the CPUs Ray gave this actor
        self.run_id: str | None = None
        self.taken = threading.Lock()
        self.warm = threading.Event()  # preloading is over (a cold actor loads as it trains)
        self.done = threading.Event()
        if run is None:
            threading.Thread(target=self._preload, name="preload", daemon=True).start()
        else:
            self.warm.set()
            self.begin(*run)

    def _preload(self) -> None:
        try:
            from training.worker import preload

            preload()
        except BaseException:  # noqa: BLE001 - a run handed over loads what it needs itself, and says what fails
            traceback.print_exc()
        finally:
            self.warm.set()

    def ready(self) -> bool:
        """Answers once the spare has loaded everything (at once for a cold actor)."""
        self.warm.wait()
        return True

    def run_of(self) -> str | None:
        """The run this actor trains, or None while it is a spare."""
        return self.run_id

    def begin(self, run_id: str, files: dict[str, bytes], resume: bool) -> bool:
        """Take the run (its files, as bytes) and start training it; False if this actor already
        has a run (two servers handed the same spare a run: only the first gets it)."""
        with self.taken:
            if self.run_id is not None:
                return False
            self.run_id = run_id
        self.resume = resume
        self.home = Path(tempfile.mkdtemp(prefix="glassbox-ray-"))
        self.folder = self.home / "runs" / run_id
        for name, payload in files.items():
            path = self.folder / name
            if self.folder.resolve() not in path.resolve().parents:
                raise ValueError(f"a run file outside the run folder: {name}")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(payload)
        (self.folder / "checkpoints").mkdir(exist_ok=True)
        threading.Thread(target=self._train, name=f"train-{run_id}", daemon=True).start()
        return True

    def _train(self) -> None:
        from training.device_queue import StopRequested
        from training.record import RunState
        from training.worker import RunFile, explain_failure, record_end, train_run

        run = None
        self.warm.wait()  # a spare handed a run early finishes loading first
        try:
            from training.store import RunStore  # torch loads here (or was, by a spare)

            store = RunStore(self.home)
            run = RunFile(store, self.run_id)
            run.set(job={**run.record.job, "node": node_name()})
            if run.stop_requested():
                raise StopRequested()
            train_run(run, store, self.resume, device_queue=False)
        except StopRequested:
            record_end(run, self.folder, RunState.STOPPED, "Stopped before training began.")
        except BaseException as err:  # noqa: BLE001 - every failure must reach run.json, in words
            traceback.print_exc()  # into the Ray worker's log, for whoever wants the details
            record_end(run, self.folder, RunState.FAILED, explain_failure(err))
        finally:
            self.done.set()

    def stop(self) -> None:
        """Ask training to stop (the trainer looks for the stop file between steps)."""
        if self.run_id is not None:
            (self.folder / "stop").write_text("stop")

    def where(self) -> dict:
        """The node and the process this actor trains in (tests kill the process)."""
        return {"node": node_name(), "pid": os.getpid()}

    def pull(self, metrics_offset: int, have_steps: list[int], optimizer_token: str | None,
             want_optimizer: bool = True) -> dict:
        """What the worker wrote since the server's last pull:

            done          training has ended: everything below is final
            optimizer     (token, bytes) of optimizer.safetensors when it changed and is wanted
                          (always once training has ended), else None
            checkpoints   {step: {file name: bytes}} of complete checkpoints the server lacks
            metrics       complete metrics.jsonl lines from byte ``metrics_offset`` on
            record        run.json's bytes

        Read in the order the worker writes them (its optimizer state after its checkpoint,
        run.json after the metrics), so what comes back is never ahead of itself.
        """
        done = self.done.is_set()
        checkpoints = self.folder / "checkpoints"
        optimizer = None
        path = checkpoints / "optimizer.safetensors"
        try:
            stat = path.stat()
            token = f"{stat.st_mtime_ns}-{stat.st_size}"
            if token != optimizer_token and (want_optimizer or done):
                optimizer = (token, path.read_bytes())
        except OSError:
            pass
        new_checkpoints = {}
        for folder in sorted(checkpoints.glob("step_*")):
            step = int(folder.name.split("_", 1)[1])
            if step not in have_steps:
                new_checkpoints[step] = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
        try:
            with open(self.folder / "metrics.jsonl", "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                handle.seek(metrics_offset)
                chunk = handle.read(METRICS_CHUNK_BYTES)
        except FileNotFoundError:
            size, chunk = 0, b""
        chunk = chunk[:chunk.rfind(b"\n") + 1]
        more = bool(chunk) and metrics_offset + len(chunk) < size  # a long history comes in several pulls
        return {"done": done and not more, "optimizer": optimizer, "checkpoints": new_checkpoints,
                "metrics": chunk, "record": (self.folder / "run.json").read_bytes()}

    def close(self) -> None:
        """Remove this actor's copy of the run (the server has everything by now)."""
        if self.run_id is not None:
            shutil.rmtree(self.home, ignore_errors=True)


def node_name() -> str:
    """This machine as a person knows it: its host name."""
    return socket.gethostname()
