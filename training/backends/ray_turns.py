"""Whose turn it is on the Ray cluster, and the spare actors that let a turn start at once.

Fair turns. The server, not Ray, decides when each run gets its actor. A Ray run joins a line
of ``training.device_queue`` (``$GLASSBOX_HOME/queue/ray-<shape>/``, one line per resource shape,
e.g. ``ray-cpu1`` or ``ray-cpu1-gpu1``), in the round ``training.limits.round_for`` gives it, so
the line is round-robin across owners exactly as for local runs, and ``queue_place`` tells the
Train page where a waiting Ray run stands. The head of a line gets its actor only once the
cluster has its shape free (``ray.available_resources``); while anything this process asked Ray
for is not yet placed, nothing more is asked, so a free resource is never counted twice. Why not
Ray's scheduler: it starts waiting actors in its own order, and a waiting actor has no place in
any line the page could show. Tickets hold no process (pid 0): the line outlives the server, and
whoever serves it next (a restarted server, the command line) removes the ticket of a run that
was deleted, stopped or started meanwhile. One process serves a line at a time (its lock file).

Warm start. A cold start is ~1 s for Ray to place the actor and start its process, ~1.1 s to
import torch, ~1 s for the data and the model. After ``warm_up`` (the app calls it), a spare
actor per resource shape (the shape of a run on device *auto*, and of each run launched since)
is started ahead: it imports torch and Glassbox's training modules, makes the built-in datasets
(``training.worker.preload``), and waits. The next run of its shape is handed to it (its files
through ``RunActor.begin``) instead of a new actor, and a new spare is started behind it. The
rules that keep this fair, and keep a spare from holding a GPU a waiting run needs:

- a spare is started only while no run waits in any Ray line of this server, and only on
  resources the cluster has free: it never takes what a run waits for;
- when the head of a line cannot be placed, every idle spare that holds a resource it lacks is
  killed at once (a spare of the run's own shape is handed the run instead);
- spares are detached actors named ``spare-<shape>-<random>`` in the ``glassbox`` namespace, so a
  restarted server finds them (``ray.util.list_named_actors``) and adopts one per shape it wants,
  killing the rest, and any process that serves a line (the command line too) kills the idle
  spares of others while a run lacks room; a spare writes no file before it has a run, so ``ray stop`` (which ends every
  actor) leaves nothing behind.

Why a spare actor and not a pool of worker processes or a placement group: a spare is exactly
what a run's actor would be (same resources, same code), so the hand-over needs nothing new from
Ray, and a run that fails in it fails the same way; one spare per shape bounds what is held.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

from models.files import write_atomically
from training.backends.ray_follow import FOLLOW_FILE, NAMESPACE, kill_actor, read_follow_state
from training.device_queue import exclusive, join_line, queue_order, waiting_tickets
from training.record import RunState
from training.backends.ray_shapes import LINE_PREFIX, actor_options, fits, line_key, run_files, shape_for
from training.store import STOP_FILE, RunStore
SPARE_PREFIX = "spare-"
SERVE_EVERY_S = 0.25
HAND_OVER_WAIT_S = 30.0
ANSWER_WAIT_S = 2.0
SWEEP_EVERY_S = 2.0  # while a run lacks room, other servers' idle spares are looked for this often
MAX_SHAPES_WARM = 2  # spares are kept for at most this many shapes: the ones used last


def ticket_of(record) -> str:
    return f"{record.times.queued or time.time():017.6f}-{record.run_id}"


def waiting_ticket(run_dir: Path) -> Path | None:
    """The run's ticket in a Ray line, if it waits in one."""
    return next((run_dir.parent.parent / "queue").glob(f"{LINE_PREFIX}*/*-{run_dir.name}"), None)


def _done(ref) -> bool:
    import ray

    return bool(ray.wait([ref], timeout=0)[0])


class Spare:
    """A spare actor of one shape, with what it has answered so far."""

    def __init__(self, handle, name: str, shape: dict[str, float]):
        self.handle, self.name, self.shape = handle, name, shape
        self.placed_ref = handle.run_of.remote()  # answers once Ray has placed it
        self.ready_ref = handle.ready.remote()  # answers once it has loaded everything

    def placed(self) -> bool:
        return _done(self.placed_ref)

    def ready(self) -> bool:
        return _done(self.ready_ref)

    def alive(self) -> bool:
        import ray

        if not self.placed():
            return True
        try:
            ray.get(self.placed_ref)
            return True
        except ray.exceptions.RayError:
            return False


class Turns:
    """Serves the Ray lines of this process's run stores, and keeps its spares (one per process)."""

    def __init__(self):
        self.lock = threading.RLock()  # one round of serving at a time
        self.roots_lock = threading.Lock()
        # The stores whose lines this process serves, each with how to follow a run's actor once
        # it has one ((run_dir, handle, state) -> Follower; the backend that launched or watched
        # it last).
        self.roots: dict[Path, object] = {}
        self.asked: list = []  # followers of the run actors made here, until Ray has placed them
        self.wanted: dict[str, dict[str, float]] = {}  # line key -> shape, the last used last
        self.spares: dict[str, Spare] = {}  # by line key
        self.adopted = False
        self.swept_at = 0.0  # when the cluster's spares were last looked for
        self.thread: threading.Thread | None = None

    # ---- the lines -------------------------------------------------------------------------------
    def join(self, run_dir: Path, record, shape: dict[str, float], follow) -> None:
        """Put the run in its shape's line (its round: round-robin across owners)."""
        root, key = run_dir.parent.parent, line_key(shape)
        join_line(root, key, ticket_of(record), record.owner, holding=lambda: self.holders(root, key), pid=0)
        with self.lock:
            if self.wanted:  # warm: the next run of this shape finds a spare
                self.wanted.pop(key, None)
                self.wanted[key] = shape
                while len(self.wanted) > MAX_SHAPES_WARM:
                    self.wanted.pop(next(iter(self.wanted)))
        self.watch(root, follow, now=True)  # on an idle cluster the run starts at once

    @staticmethod
    def holders(root: Path, key: str) -> list:
        """The runs of a line that have their actor and are still active (whose, in which round)."""
        from training.limits import Waiting

        store, held = RunStore(root), []
        for run_id in store.run_ids():
            state = read_follow_state(store.path(run_id))
            if state is None or state.get("line") != key:
                continue
            try:
                record = store.read(run_id)
            except (OSError, ValueError, KeyError, TypeError, LookupError):
                continue
            if record.status.active:
                held.append(Waiting(run_id, record.owner or "", int(state.get("round", 0))))
        return held

    def leave(self, run_dir: Path) -> bool:
        """Take the run out of its line (a stop or a cancel before its turn); False if it was in none."""
        ticket = waiting_ticket(run_dir)
        if ticket is None:
            return False
        with exclusive(run_dir.parent.parent / "locks" / f"{ticket.parent.name}.line.lock"):
            ticket.unlink(missing_ok=True)
        return True

    def watch(self, root: Path, follow, now: bool = False) -> None:
        """Serve the Ray lines of the store at ``root`` from a thread while runs wait there (and
        at once if ``now``, or if they were not served here yet: after a restart of the server)."""
        with self.roots_lock:
            new = root not in self.roots
            self.roots[root] = follow
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._serve_forever, name="ray-turns", daemon=True)
                self.thread.start()
        if now or new:
            self.serve()

    def _serve_forever(self) -> None:
        while True:
            time.sleep(SERVE_EVERY_S)
            try:
                self.serve()
            except Exception:  # noqa: BLE001 - e.g. Ray left (the server shuts down); the next round tries again
                continue

    def serve(self) -> None:
        """One round: the head of each line gets a spare or an actor if the cluster has room; then
        spares are started where nobody waits."""
        import ray

        with self.roots_lock:
            idle = not self.roots
        if not ray.is_initialized() or (idle and not self.wanted and not self.spares):
            return  # nothing waits and no spare is wanted: nothing to ask Ray
        with self.lock:
            free = dict(ray.available_resources())
            gpus = int(ray.cluster_resources().get("GPU", 0))
            waiting = False
            with self.roots_lock:
                roots = list(self.roots.items())
            for root, follow in roots:
                served = self._serve_root(root, follow, free, gpus)
                waiting = waiting or served
                if not served:
                    with self.roots_lock:
                        if self.roots.get(root) is follow:
                            del self.roots[root]
            self._keep_spares(waiting, free)

    def placing(self) -> bool:
        """Whether something asked of Ray here is not placed yet (then what is free is not known)."""
        self.asked = [f for f in self.asked if not f.started and f.gone is None and not f.detached.is_set()]
        return bool(self.asked) or any(not spare.placed() for spare in self.spares.values())

    def _serve_root(self, root: Path, follow, free: dict, gpus: int) -> bool:
        """Serve the lines of one store; whether a run still waits there."""
        queues = root / "queue"
        keys = sorted(p.name for p in queues.iterdir() if p.name.startswith(LINE_PREFIX)) if queues.is_dir() else []
        waiting = False
        for key in keys:
            with exclusive(root / "locks" / f"{key}.line.lock"):
                head = self._head(root, key)
                if head is None:
                    continue
                waiting = True
                entry, record = head
                run_dir = RunStore(root).path(record.run_id)
                shape = shape_for(record.hyperparameters.get("device", "auto"), gpus)
                spare = self.spares.get(key)
                if spare is not None and spare.ready():
                    del self.spares[key]
                    if self._hand_over(run_dir, record, entry, key, spare, follow):
                        continue
                elif spare is not None and spare.placed():
                    continue  # it is loading what a new actor would load too: it will be the sooner
                for other_key, other in list(self.spares.items()):
                    if not other.placed():  # Ray could give it what this run needs at any moment
                        del self.spares[other_key]
                        kill_actor(other.handle)
                if self.placing():
                    continue  # what was asked for is not placed yet: the free resources are not known
                lacking = fits(shape, free)
                if not lacking:
                    self._start(run_dir, record, entry, key, shape, follow)
                    for name, amount in shape.items():
                        free[name] = free.get(name, 0.0) - amount
                    continue
                for other_key, other in list(self.spares.items()):  # spares never hold what a run waits for
                    if other_key != key and set(other.shape) & set(lacking):
                        del self.spares[other_key]
                        kill_actor(other.handle)
                if time.time() - self.swept_at > SWEEP_EVERY_S:  # nor do those of a server that has gone
                    self._sweep(adopt=False)
        return waiting

    @staticmethod
    def _head(root: Path, key: str):
        """(ticket entry, record) of the first run in the line that still waits; tickets of runs
        that no longer wait (deleted, stopped, started by another process) are removed."""
        store = RunStore(root)
        entries = {w.ticket: w for w in waiting_tickets(root, key)}
        for ticket in queue_order(root, key):
            run_id = ticket.split("-", 1)[1]
            run_dir = store.path(run_id)
            try:
                record = store.read(run_id)
            except (OSError, ValueError, KeyError, TypeError, LookupError):
                record = None
            if (record is not None and record.status == RunState.QUEUED and record.job.get("backend") == "ray"
                    and not (run_dir / STOP_FILE).exists() and read_follow_state(run_dir) is None):
                return entries[ticket], record
            (root / "queue" / key / ticket).unlink(missing_ok=True)
        return None

    def _hand_over(self, run_dir: Path, record, entry, key: str, spare: Spare, follow) -> bool:
        """Give the run to a ready spare; False (the spare is let go) if it would not take it."""
        import ray

        resume = record.resumes > 0
        files, steps = run_files(run_dir, resume)
        try:
            taken = ray.get(spare.handle.begin.remote(record.run_id, files, resume), timeout=HAND_OVER_WAIT_S)
        except ray.exceptions.RayError:
            taken = False
        if not taken:
            kill_actor(spare.handle)
            return False
        self._started(run_dir, spare.handle, {"actor": spare.name, "metrics_offset": 0, "steps": steps, "line": key,
                                              "round": entry.round}, entry, follow)
        return True

    def _started(self, run_dir: Path, handle, state: dict, entry, follow) -> None:
        """The run has its actor: say so in ray.json, and only then take its ticket out of the
        line (``RayBackend.worker_gone`` looks at them in the other order), then follow it."""
        write_atomically(run_dir / FOLLOW_FILE, json.dumps(state).encode())
        (run_dir.parent.parent / "queue" / state["line"] / entry.ticket).unlink(missing_ok=True)
        self.asked.append(follow(run_dir, handle, state))

    def _start(self, run_dir: Path, record, entry, key: str, shape: dict[str, float], follow) -> None:
        """Make the run's own actor (a cold start)."""
        import ray

        from training.backends.ray_actor import RunActor

        resume = record.resumes > 0
        files, steps = run_files(run_dir, resume)
        name = f"run-{record.run_id}-{record.resumes}"
        try:
            handle = ray.remote(RunActor).options(
                name=name, namespace=NAMESPACE, lifetime="detached", max_restarts=0, max_concurrency=4,
                **actor_options(shape)).remote(int(shape["CPU"]), (record.run_id, files, resume))
        except (ValueError, ray.exceptions.RayError) as err:
            store = RunStore(run_dir.parent.parent)
            now = time.time()
            store.write(replace(store.read(record.run_id), status=RunState.FAILED,
                                message=f"Ray could not start the run's actor ({err}).",
                                times=replace(record.times, finished=now, updated=now)))
            (run_dir.parent.parent / "queue" / key / entry.ticket).unlink(missing_ok=True)
            return
        self._started(run_dir, handle, {"actor": name, "metrics_offset": 0, "steps": steps, "line": key,
                                        "round": entry.round}, entry, follow)

    # ---- the spares ------------------------------------------------------------------------------
    def warm_up(self, shape: dict[str, float]) -> None:
        """Keep a spare of ``shape`` (and, from now on, of each shape launched) while nobody waits."""
        with self.lock:
            self.wanted.setdefault(line_key(shape), shape)
        self.serve()

    def wait_ready(self, timeout_s: float) -> bool:
        """Wait until a spare is ready for a run (benchmarks, tests)."""
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            self.serve()
            with self.lock:
                if any(spare.ready() for spare in self.spares.values()):
                    return True
            time.sleep(0.1)
        return False

    def shut(self) -> None:
        """Want no spares any more, and end those there are (tests; a server that wants none)."""
        with self.lock:
            self.wanted.clear()
            spares, self.spares = list(self.spares.values()), {}
        for spare in spares:
            kill_actor(spare.handle)

    def _keep_spares(self, waiting: bool, free: dict) -> None:
        for key, spare in list(self.spares.items()):
            if not spare.alive() or key not in self.wanted:
                del self.spares[key]
                kill_actor(spare.handle)
        if not self.wanted:
            return
        if not self.adopted:
            self._sweep(adopt=True)
        if waiting or self.placing():
            return  # a run waits (a spare would take what it needs), or the free resources are not known yet
        for key, shape in self.wanted.items():
            if key not in self.spares and not fits(shape, free):
                self.spares[key] = self._new_spare(key, shape)
                return  # one at a time: the next round sees what it took

    @staticmethod
    def _new_spare(key: str, shape: dict[str, float]) -> Spare:
        import ray

        from training.backends.ray_actor import RunActor

        name = f"{SPARE_PREFIX}{key}-{uuid.uuid4().hex[:8]}"
        handle = ray.remote(RunActor).options(name=name, namespace=NAMESPACE, lifetime="detached", max_restarts=0,
                                              max_concurrency=4, **actor_options(shape)).remote(int(shape["CPU"]))
        return Spare(handle, name, shape)

    def _sweep(self, adopt: bool) -> None:
        """Find the idle spares that are not this process's (a server before this one left them):
        keep one per wanted shape if ``adopt``, and end the rest."""
        import ray
        from ray.util import list_named_actors

        self.adopted = self.adopted or adopt
        self.swept_at = time.time()
        mine = {spare.name for spare in self.spares.values()}
        for name in list_named_actors():
            if not name.startswith(SPARE_PREFIX) or name in mine:
                continue
            try:
                handle = ray.get_actor(name, namespace=NAMESPACE)
            except ValueError:
                continue  # gone meanwhile
            try:
                run_id = ray.get(handle.run_of.remote(), timeout=ANSWER_WAIT_S)
            except ray.exceptions.RayError:  # not placed (it may take a GPU later) or dead: end it
                kill_actor(handle)
                continue
            if run_id is not None:
                continue  # it trains a run now: its follower looks after it
            key = name[len(SPARE_PREFIX):].rsplit("-", 1)[0]
            if adopt and key in self.wanted and key not in self.spares:
                self.spares[key] = Spare(handle, name, self.wanted[key])
            else:
                kill_actor(handle)
