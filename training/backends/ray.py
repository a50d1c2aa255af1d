"""The Ray backend: each run trains in a Ray actor, on whichever machine of the cluster Ray picks.

    GLASSBOX_BACKEND=ray RAY_ADDRESS=10.0.0.5:6379 make run

``launch`` puts the run in Glassbox's own line (``training.backends.ray_turns``); at its turn,
when the cluster has room, the run's actor is made. No filesystem is shared with the server: the
files of the run that training needs (run.json, an uploaded dataset's tensors, the checkpoint a
resume starts from) are read from its folder and handed to the actor
(``training.backends.ray_actor.RunActor``) through Ray. A follower thread in the server then pulls what the actor's worker records (metrics lines,
checkpoints, the optimizer state, run.json) four times a second and writes it into the run
folder with the run store's own code, atomically, so the app reads a Ray run exactly like a
local one; a ``ray.json`` in the folder says which actor the run has and how far it has been
followed.

The actor is detached and named (``run-<run_id>-<attempt>``, or ``spare-...`` for a spare that
took the run, in the ``glassbox`` namespace), so it
outlives a restart of the server: a new server finds it by name the first time ``Jobs.reconcile``
looks at the run, and carries on following from where ``ray.json`` says. When the actor's run has
ended and its last records are written, the follower ends the actor. A stop is a call on the
actor (its worker finds the stop file between steps); an actor that dies (killed, out of
memory, its machine lost) fails its pulls, and the run is recorded as failed with the reason,
keeping everything already pulled.

Devices: a run whose device is ``cuda``, or ``auto`` on a cluster with GPUs, asks Ray for one GPU;
otherwise for GLASSBOX_RAY_CPUS CPUs (default 1); and every run also for GLASSBOX_RAY_RESOURCES.

Turns: a run waits ``queued`` in Glassbox's own line (round-robin across owners, as local runs),
and gets its actor only when the cluster has room for it; with ``warm_up``, a spare actor that
has torch loaded takes the next run. See ``training.backends.ray_turns`` for both, and why.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import replace
from pathlib import Path

from training.backends.ray_follow import FOLLOW_FILE, NAMESPACE, Follower, kill_actor, read_follow_state
from training.backends.ray_shapes import shape_for
from training.backends.ray_turns import Turns, waiting_ticket
from training.store import RUN_FILE, STOP_FILE, RunStore
START_GRACE_S = 30.0  # a run with no actor yet is presumed lost after this long
FORGET_AFTER_S = 60.0  # a follower whose actor is gone is dropped after this long
KILL_WAIT_S = 5.0
ANSWER_WAIT_S = 0.5  # a placed actor answers in milliseconds
PROBE_TIMEOUT_S = 3.0

_connect_lock = threading.Lock()
_followers: dict[str, "Follower"] = {}  # by run folder: one follower per run in this process
_followers_lock = threading.Lock()


def connect(address: str | None = None, env_vars: dict | None = None) -> None:
    """Join the Ray cluster at ``address`` (default: $RAY_ADDRESS, else a cluster started on this
    machine) once per process. Actors get this code (``models``, ``training``) from here, and
    ``env_vars`` as their environment (tests give them a GLASSBOX_HOME of their own)."""
    try:
        import ray
    except ImportError as err:
        raise OSError("Ray is not installed here (pip install -r requirements.txt)") from err

    with _connect_lock:
        if ray.is_initialized():
            return
        import models
        import training

        address = address or os.environ.get("RAY_ADDRESS") or "auto"
        if address != "auto":
            probe(address)  # Ray itself waits minutes for a head that is not there
        runtime_env = {"py_modules": [models, training], "excludes": ["__pycache__"]}
        if env_vars:
            runtime_env["env_vars"] = dict(env_vars)
        try:
            ray.init(address=address, namespace=NAMESPACE, runtime_env=runtime_env, log_to_driver=False,
                     configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise OSError(f"the Ray cluster at {address} cannot be reached ({err})") from err


def probe(address: str) -> None:
    """OSError, at once and in words, unless something listens at ``address`` ("host:port")."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_S).close()
    except (OSError, ValueError) as err:
        raise OSError(f"the Ray cluster at {address} cannot be reached (is `ray start` running there?)") from err


def stop_following() -> None:
    """Stop every follower of this process (before leaving Ray); the actors train on."""
    with _followers_lock:
        followers = list(_followers.values())
        _followers.clear()
    for follower in followers:
        follower.detached.set()
    for follower in followers:
        follower.thread.join(KILL_WAIT_S)


def cluster_devices() -> dict:
    """The cluster's machines and what is free now: {"machines": [{"node", "cpus", "gpus"}, ...],
    "free_cpus", "free_gpus"} (Ray tells what is free for the whole cluster, not per machine)."""
    connect()
    import ray

    machines = [{"node": node.get("NodeManagerHostname") or node.get("NodeManagerAddress"),
                 "cpus": int(node.get("Resources", {}).get("CPU", 0)),
                 "gpus": int(node.get("Resources", {}).get("GPU", 0))}
                for node in ray.nodes() if node.get("Alive")]
    free = ray.available_resources()
    return {"machines": machines, "free_cpus": int(free.get("CPU", 0)), "free_gpus": int(free.get("GPU", 0))}


class RayBackend:
    """Runs as Ray actors, followed from this process (see the module docstring)."""

    name = "ray"

    def __init__(self, address: str | None = None, env_vars: dict | None = None):
        self.address, self.env_vars = address, env_vars

    # ---- the Backend interface -------------------------------------------------------
    def check_device(self, device: str) -> None:
        from training.devices import DeviceError

        if device == "mps":
            raise DeviceError("a Ray cluster trains on CUDA GPUs or CPUs; choose the device 'auto', 'cuda' or 'cpu'")
        try:
            gpus = self._cluster_gpus() if device == "cuda" else None
        except OSError as err:  # said as the reason the device cannot be had, before anything is recorded
            raise DeviceError(str(err)) from err
        if gpus == 0:
            raise DeviceError("the Ray cluster has no GPU; choose the device 'auto' or 'cpu'")

    def launch(self, run_dir: Path, resume: bool) -> None:
        """Put the run in its line (``ray_turns``); it gets its actor, now if the cluster has room."""
        self._connect()
        store = RunStore(run_dir.parent.parent)
        record = store.read(run_dir.name)
        shape = shape_for(record.hyperparameters.get("device", "auto"), self._cluster_gpus())
        waits_for = "cuda" if "GPU" in shape else "cpu"  # the page says whose line it is in (the actor says more)
        if record.device != waits_for:
            record = replace(record, device=waits_for)
            store.write(record)
        with _followers_lock:  # the last attempt's follower (its actor is gone) is not this one's
            last = _followers.pop(str(run_dir), None)
        if last is not None:
            last.detached.set()  # it must never write into the new attempt's records
        (run_dir / FOLLOW_FILE).unlink(missing_ok=True)
        turns.join(run_dir, record, shape, self.follow)

    def warm_up(self) -> None:
        """Keep a spare actor with torch loaded for the next run (the app calls this; see ``ray_turns``)."""
        self._connect()
        turns.warm_up(shape_for("auto", self._cluster_gpus()))

    def request_stop(self, run_dir: Path) -> None:
        if turns.leave(run_dir):  # still waiting for its turn: nothing to save
            return
        follower = self._follower_for(run_dir)
        if follower is None:
            return
        if follower.started or self._answers(follower.handle):
            follower.handle.stop.remote()
        else:  # still waiting for Ray to give it a machine: nothing to save
            kill_actor(follower.handle)

    def kill(self, run_dir: Path) -> None:
        turns.leave(run_dir)
        follower = self._follower_for(run_dir)
        if follower is None:
            return
        kill_actor(follower.handle)
        follower.thread.join(KILL_WAIT_S)

    def worker_gone(self, run_dir: Path) -> str | None:
        """None while the run waits for its turn, or its actor lives (or Ray has yet to place it).
        A follower of this process is started here for a run whose actor another server process
        started (a restart), and its line is served here from now on."""
        if waiting_ticket(run_dir) is not None:  # first: a ticket leaves the line only after ray.json is written
            self._connect()
            turns.watch(run_dir.parent.parent, self.follow)
            return None
        follower = self._follower_for(run_dir)
        if follower is not None:
            return follower.gone
        if read_follow_state(run_dir) is None:
            if (run_dir / STOP_FILE).exists():
                return "it was stopped while it waited for its turn"
            return None if _age(run_dir / RUN_FILE) < START_GRACE_S else "the Ray actor never started"
        return ("the Ray actor of this run is gone (its machine may have been lost, or Ray was "
                "restarted)")

    def collect_ended(self) -> None:
        with _followers_lock:
            for key, follower in list(_followers.items()):
                if follower.gone_at is not None and time.time() - follower.gone_at > FORGET_AFTER_S:
                    del _followers[key]

    # ---- beyond the interface --------------------------------------------------------
    def where(self, run_dir: Path) -> dict | None:
        """{"node", "pid"} of the process the run trains in, or None if it has no live actor."""
        import ray

        follower = self._follower_for(run_dir)
        if follower is None or follower.gone is not None:
            return None
        try:
            return ray.get(follower.handle.where.remote(), timeout=30)
        except ray.exceptions.RayError:
            return None

    def detach(self) -> None:
        """Stop following (as a server that shuts down does); the actors train on."""
        with _followers_lock:
            mine = [(key, f) for key, f in _followers.items() if f.backend is self]
            for key, _ in mine:
                del _followers[key]
        for _, follower in mine:
            follower.detached.set()
            follower.thread.join(KILL_WAIT_S)

    # ---- helpers ---------------------------------------------------------------------
    @staticmethod
    def _answers(handle) -> bool:
        """Whether the actor has a machine and runs (one that Ray has yet to place cannot answer)."""
        import ray

        try:
            ray.get(handle.where.remote(), timeout=ANSWER_WAIT_S)
            return True
        except ray.exceptions.RayError:  # not placed yet (a timeout), or gone
            return False

    def _connect(self) -> None:
        connect(self.address, self.env_vars)

    def _cluster_gpus(self) -> int:
        import ray

        self._connect()
        return int(ray.cluster_resources().get("GPU", 0))

    def _follower_for(self, run_dir: Path) -> "Follower | None":
        """This process's follower of the run, started now if its actor lives but nobody here
        follows it yet (after a restart of the server); None if there is no actor to follow."""
        import ray

        state = read_follow_state(run_dir)
        with _followers_lock:
            follower = _followers.get(str(run_dir))
        if follower is not None and (state is None or follower.state["actor"] == state["actor"]):
            return follower
        if state is None:
            return None
        self._connect()
        try:
            handle = ray.get_actor(state["actor"], namespace=NAMESPACE)
        except ValueError:
            return None
        return self.follow(run_dir, handle, state)

    def follow(self, run_dir: Path, handle, state: dict) -> "Follower":
        """Follow the run's actor from this process (unless a follower of that actor is there)."""
        with _followers_lock:
            follower = _followers.get(str(run_dir))
            if follower is None or follower.state["actor"] != state["actor"]:
                if follower is not None:
                    follower.detached.set()
                follower = _followers[str(run_dir)] = Follower(self, run_dir, handle, state)
                follower.thread.start()
        return follower


turns = Turns()  # one per process, like the followers


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return float("inf")
