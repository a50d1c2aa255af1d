"""The server's side of a Ray run (``training.backends.ray``): a ``Follower`` thread pulls what
the run's actor records and writes it into the run folder with the run store's own code.

At most one process follows a run at a time (``follow_lock``): a command-line run and the app's
server may both look at it, and only one of them writes. ``ray.json`` in the run folder says
which actor the run has and how much of its records have been written, so that whoever follows
next (a restarted server) carries on where the last one stopped.
"""
from __future__ import annotations

import json
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from models.files import write_atomically
from training.store import RunStore

# Ray starts a cluster of its own when a call finds this process not connected (a follower still
# pulling while the server shuts down): never here, where a cluster is always joined on purpose.
os.environ.setdefault("RAY_ENABLE_AUTO_CONNECT", "0")

NAMESPACE = "glassbox"  # of every actor Glassbox makes: runs' and spares
# {"actor": name, "metrics_offset": bytes pulled, "steps": checkpoints pulled, "line": the line it
# waited in (training.backends.ray_turns), "round": its round there}
FOLLOW_FILE = "ray.json"
FOLLOW_LOCK = "ray.lock"  # held by the one process that follows the run's actor
LOCK_WAIT_S = 0.5
PULL_EVERY_S = 0.25  # the worker records metrics every 0.25 s; a pull costs the training process a little
# The optimizer state (what a resume needs beside the weights; for an LSTM, megabytes) is brought
# in at most this often while training, and always at the end: the worker saves it every 2 s, and
# copying it that often slowed an LSTM's training by a fifth on a 2-core machine. A worker that
# dies loses at most this much of it: its run resumes from an earlier checkpoint.
OPTIMIZER_EVERY_S = 15.0
DIED = ("the Ray worker of this run was killed, or its machine was lost "
        "(perhaps it ran out of memory)")


@contextmanager
def follow_lock(run_dir: Path, give_up: threading.Event):
    """Hold the run's follow lock (yields True), waiting for it while another process follows the
    run (a command-line run and the app's server both look at it); yields False if ``give_up``
    is set first. The OS lets go of it when its holder ends, even when killed."""
    fd = os.open(run_dir / FOLLOW_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        while not _try_lock(fd):
            if give_up.wait(LOCK_WAIT_S):
                yield False
                return
        yield True
    finally:
        os.close(fd)


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows: no lock; one server per store is assumed there
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def read_follow_state(run_dir: Path) -> dict | None:
    try:
        state = json.loads((run_dir / FOLLOW_FILE).read_bytes())
        return state if isinstance(state, dict) and isinstance(state.get("actor"), str) else None
    except (OSError, ValueError):
        return None


class Follower:
    """Pulls one actor's records into its run folder, in a thread, until the actor's run ends."""

    def __init__(self, backend, run_dir: Path, handle, state: dict):
        self.backend, self.run_dir, self.handle = backend, run_dir, handle
        self.store, self.run_id = RunStore(run_dir.parent.parent), run_dir.name
        self.state = {**state, "metrics_offset": int(state.get("metrics_offset", 0)),  # and its line, its round
                      "steps": [int(s) for s in state.get("steps", [])]}
        self.optimizer_token: str | None = None
        self.optimizer_at = float("-inf")  # when the optimizer state was last brought in
        self.record_bytes: bytes | None = None
        self.started = False  # the actor has answered: Ray gave it a machine
        self.gone: str | None = None  # why following ended: the actor finished, or died
        self.gone_at: float | None = None
        self.detached = threading.Event()
        self.thread = threading.Thread(target=self._follow, name=f"follow-{self.run_id}", daemon=True)

    def _follow(self) -> None:
        try:
            with follow_lock(self.run_dir, self.detached) as held:
                if not held:
                    return
                state = read_follow_state(self.run_dir)  # another process may have followed it meanwhile
                if state is None or state["actor"] != self.state["actor"]:
                    return  # the run has a newer actor; ``RayBackend._follower_for`` follows that one
                self.state.update(metrics_offset=int(state.get("metrics_offset", 0)),
                                  steps=[int(s) for s in state.get("steps", [])])
                self._pull_until_done()
        except FileNotFoundError:  # the run was deleted
            self._end("the run was deleted")

    def _pull_until_done(self) -> None:
        import ray

        pending = None
        while not self.detached.is_set():
            if pending is None:
                want_optimizer = time.time() - self.optimizer_at >= OPTIMIZER_EVERY_S
                pending = self.handle.pull.remote(self.state["metrics_offset"], self.state["steps"],
                                                  self.optimizer_token, want_optimizer)
            try:
                ready, _ = ray.wait([pending], timeout=1.0)
            except Exception:  # noqa: BLE001 - this process left Ray (it shuts down): as if detached
                return
            if not ready or self.detached.is_set():
                continue
            try:
                reply = ray.get(pending)
            except ray.exceptions.RayError as err:
                self._end(died_reason(err))
                return
            pending = None
            self.started = True
            try:
                self._write(reply)
            except FileNotFoundError:  # the run was deleted meanwhile
                self._release()
                raise
            if reply["done"]:
                self._end("the worker ended")
                return
            self.detached.wait(PULL_EVERY_S)

    def _write(self, reply: dict) -> None:
        """Into the run folder in the order a local worker writes: checkpoints, then the optimizer
        state, the metrics, and run.json last (a reader that sees the run ended has it all)."""
        changed = False
        for step, files in sorted(reply["checkpoints"].items()):
            self.store.save_checkpoint_files(self.run_id, int(step), files)
            self.state["steps"].append(int(step))
            changed = True
        if reply["optimizer"] is not None:
            self.optimizer_at = time.time()
            self.optimizer_token, payload = reply["optimizer"]
            self.store.save_optimizer_file(self.run_id, payload)
        if reply["metrics"]:
            writer = self.store.metrics_writer(self.run_id)
            try:
                writer.write_lines(reply["metrics"])
            finally:
                writer.close()
            self.state["metrics_offset"] += len(reply["metrics"])
            changed = True
        if changed:
            write_atomically(self.run_dir / FOLLOW_FILE, json.dumps(self.state).encode())
        if reply["done"]:  # before run.json says so: a run seen ended has let go of its device
            self._release()
        if reply["record"] != self.record_bytes:
            from training.record import RunRecord

            record = RunRecord.from_dict(json.loads(reply["record"]))
            # The worker records its end a moment before the actor's training is over, so a pull
            # can bring an ended run.json without the last optimizer state (it comes with the
            # ``done`` pull); written now, a resume begun at once would start from an older step.
            if record.status.active or reply["done"]:
                self.store.write(record)
                self.record_bytes = reply["record"]

    def _release(self) -> None:
        """The actor's work is all here: let it clean up and end, freeing its device."""
        import ray

        try:
            ray.get(self.handle.close.remote(), timeout=10)
        except ray.exceptions.RayError:
            pass
        kill_actor(self.handle)

    def _end(self, reason: str) -> None:
        self.gone_at = time.time()
        self.gone = reason


def died_reason(err: Exception) -> str:
    """Why an actor's call failed, in words."""
    import ray

    if isinstance(err, ray.exceptions.OutOfMemoryError) or "out of memory" in str(err).lower():
        return "the Ray worker of this run ran out of memory; try a smaller batch size or model"
    if isinstance(err, ray.exceptions.RayActorError):
        text = str(err)
        if "creation task" in text:  # the actor never started: e.g. this code cannot import there
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            return f"the Ray worker could not start the run ({lines[-1][:300] if lines else 'no reason given'})"
        return DIED
    return f"the Ray worker of this run failed: {type(err).__name__}"


def kill_actor(handle) -> None:
    import ray

    try:
        ray.kill(handle, no_restart=True)
    except ValueError:  # already gone
        pass
