"""Fair training for a class (issue 13, part 2), against hand-computed references.

- The device's line is round-robin over owners: the queue's own functions, and real processes
  waiting in ``device_slot``, take the device in the order worked out by hand for three owners;
  so do runs submitted through ``Jobs`` on both backends (``turns_backend``: a local device with
  one slot, and the test session's real Ray cluster where every run asks for its one
  ``glassbox_slot``), each shown its place in line while it waits.
- A person has one active run at a time (``GLASSBOX_RUNS_PER_PERSON``): a second submit raises
  ``TooManyRuns`` (a ``JobError``) naming the first; they keep ``GLASSBOX_RUNS_KEPT_PER_PERSON``
  runs, their oldest ended ones removed first (never a shared one, never someone else's).
- A queued run can be cancelled (it leaves the line and is removed); a training one cannot.
- A warm worker (torch already imported) trains a run exactly as a fresh one does, writes to the
  run's log, and is replaced after use; killing it fails the run, not this process. With Ray, the
  warm worker is a spare actor: it takes the next run (its name in ray.json, its pid), trains it
  as a cold actor does, and is replaced; it is killed at once when a run needs what it holds, no
  spare holds the slot while a run waits for it, and a restarted server adopts it (or ends it).
- Uploads and an attention view are refused past their limits, with the numbers in words; the
  bytes an attention view holds equal a count made by hand from the model's sizes.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from explain.attention import held_bytes, inspect_attention, inspection_bytes, longest_that_fits
from models import build_model, presets
from tests.test_explain_attention import SENTENCE, sentence_ids, token_model
from tests.test_trainer import quadrant_images, tiny_cnn
from tests.waiting import until
from training import limits
from training.backends import local
from training.backends.local import LocalProcessBackend
from training.data import DatasetError
from training.datasets import dataset_from_upload
from training.device_queue import queue_order, queue_place
from training.jobs import JobError, Jobs, TooManyRuns
from training.limits import Waiting, fair_order, round_for
from training.people import Person
from training.record import RunRecord, RunState, RunTimes
from training.store import RunStore
from training.trainer import Hyperparameters

REPO = Path(__file__).resolve().parents[1]
WAIT_S = 120  # generous: only a hung process should hit it
ADA, BEN, CAL = Person("a" * 32, "Ada"), Person("b" * 32, "Ben"), Person("c" * 32, "Cal")
TEACHER = Person("t" * 32, "Teacher", teacher=True)


@pytest.fixture(autouse=True)
def one_thread_workers(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    for name in limits.DEFAULTS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(params=["local", "ray"])
def turns_backend(request, monkeypatch):
    """Each backend in turn, with room for one run at a time: a local device with one slot
    (``max_per_device=1``), or the session's Ray cluster, where every run then asks for its one
    ``glassbox_slot`` (a stand-in for a GPU: CPUs are left over, as on a one-GPU machine)."""
    if request.param == "ray":
        from tests.ray_cluster import SLOT

        request.getfixturevalue("ray_address")
        monkeypatch.setenv("GLASSBOX_RAY_RESOURCES", json.dumps({SLOT: 1}))
    monkeypatch.setenv("GLASSBOX_BACKEND", request.param)
    return request.param



# ---- the order of the line ---------------------------------------------------------------
def join(line: list[Waiting], holding: list[Waiting], ticket: str, owner: str) -> None:
    line.append(Waiting(ticket, owner, round_for(owner, line, holding)))


def test_rounds_give_every_owner_a_turn_before_anyone_has_a_second():
    # Ada's first run trains (round 0). Then, in this order: Ada twice, Ben twice, Cal, Ben.
    holding = [Waiting("0-a0", "ada", 0)]
    line: list[Waiting] = []
    for ticket, owner in [("1-a1", "ada"), ("2-a2", "ada"), ("3-b1", "ben"), ("4-b2", "ben"), ("5-c1", "cal"),
                          ("6-b3", "ben")]:
        join(line, holding, ticket, owner)
    # By hand: Ada is on the device now, so round 0 is Ben's and Cal's first runs (in the order
    # they came); round 1: Ada's first waiting run, Ben's second; round 2: Ada's and Ben's next.
    assert [w.round for w in line] == [1, 2, 0, 1, 0, 2]
    assert fair_order(line) == ["3-b1", "5-c1", "1-a1", "4-b2", "2-a2", "6-b3"]


def test_the_order_holds_as_runs_leave_the_line_and_newcomers_join_the_current_round():
    line: list[Waiting] = []
    join(line, [], "1-a1", "ada")
    join(line, [], "2-a2", "ada")
    join(line, [], "3-b1", "ben")
    assert fair_order(line) == ["1-a1", "3-b1", "2-a2"]
    first = line.pop(0)  # a1 takes the device
    holding = [first]
    join(line, holding, "4-c1", "cal")  # Cal joins round 0, the one being served: before Ada's second
    assert fair_order(line) == ["3-b1", "4-c1", "2-a2"]


def test_without_owners_the_line_is_first_come_first_served():
    line: list[Waiting] = []
    for ticket in ["1-x", "2-y", "3-z"]:
        join(line, [Waiting("0-w", "", 0)], ticket, "")
    assert fair_order(line) == ["1-x", "2-y", "3-z"]


SLOT_USER = """
import sys, time
from pathlib import Path
from training.device_queue import device_slot
root, name, owner = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
ticket = f"{time.time():017.6f}-{name}"
with device_slot(root, "cpu", 1, ticket, lambda: False, owner=owner):
    with open(root / "order.txt", "a") as log:
        log.write(name + "\\n")
    while name == "blocker" and not (root / "go").exists():
        time.sleep(0.02)
    time.sleep(0.05)
"""


def test_real_processes_take_the_device_round_robin_over_three_owners(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def start(name: str, owner: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", SLOT_USER, str(tmp_path), name, owner], cwd=REPO, env=env)

    processes = [start("blocker", "ada")]
    until(lambda: (tmp_path / "order.txt").exists(), WAIT_S)  # Ada's run holds the device
    joined = []
    for name, owner in [("a1", "ada"), ("a2", "ada"), ("b1", "ben"), ("b2", "ben"), ("c1", "cal"), ("b3", "ben")]:
        processes.append(start(name, owner))
        joined.append(name)
        until(lambda: len(queue_order(tmp_path, "cpu")) == len(joined), WAIT_S)  # in line before the next joins
    expected = ["b1", "c1", "a1", "b2", "a2", "b3"]  # worked out by hand above
    assert [ticket.split("-", 1)[1] for ticket in queue_order(tmp_path, "cpu")] == expected
    assert queue_place(tmp_path, "a2") == ("cpu", 5, ["b1", "c1", "a1", "b2"])
    (tmp_path / "go").touch()
    for process in processes:
        assert process.wait(WAIT_S) == 0
    assert (tmp_path / "order.txt").read_text().split() == ["blocker"] + expected
    assert queue_order(tmp_path, "cpu") == [] and queue_place(tmp_path, "a2") is None


# ---- a person's runs -------------------------------------------------------------------------
def long_run(jobs: Jobs, owner=None, epochs: int = 1000) -> str:
    data = quadrant_images(n_train=256, n_val=32)
    return jobs.submit(tiny_cnn(data), data, Hyperparameters(batch_size=16, epochs=epochs), owner=owner)


def test_one_active_run_per_person_a_second_is_refused_with_the_first_named(make_jobs, monkeypatch, turns_backend):
    jobs = make_jobs(max_per_device=1)
    first = long_run(jobs, owner=ADA)
    with pytest.raises(TooManyRuns) as refused:
        long_run(jobs, owner=ADA)
    assert isinstance(refused.value, JobError) and refused.value.active == [first]
    assert str(refused.value) == ("You already have a run training or waiting (tiny-cnn on quadrants): one run at a "
                                  "time per person, so that everyone in the class gets a turn. Stop it to start "
                                  "this one.")
    assert [run.run_id for run in jobs.list_runs()] == [first]  # nothing was recorded
    other = long_run(jobs, owner=BEN)  # someone else may
    nobodys = [long_run(jobs), long_run(jobs)]  # runs of nobody (single user, command line) are not limited
    monkeypatch.setenv("GLASSBOX_RUNS_PER_PERSON", "2")
    second = long_run(jobs, owner=ADA)
    with pytest.raises(TooManyRuns, match="at most 2 runs at a time per person"):
        long_run(jobs, owner=ADA)
    monkeypatch.setenv("GLASSBOX_RUNS_PER_PERSON", "1")
    for run_id in (first, second):
        assert jobs.stop(run_id, by=ADA, wait_s=10).status == "stopped"
    third = long_run(jobs, owner=ADA)  # once stopped, Ada can train again
    owners = {run.run_id: run.owner for run in jobs.list_runs()}
    assert owners[third] == ADA.person_id and owners[other] == BEN.person_id
    assert owners[nobodys[0]] is None and jobs.status(third).owner_name == "Ada"


def fake_ended_run(store: RunStore, owner: Person | None, submitted: float, shared: bool = False,
                   status: RunState = RunState.FINISHED) -> str:
    record = RunRecord(run_id="", status=status, model="m", dataset={"name": "d"},
                       times=RunTimes(submitted=submitted, finished=submitted + 1),
                       owner=owner.person_id if owner else None, owner_name=owner.name if owner else None,
                       shared=shared)
    run_id = store.create(f"m-{submitted:.0f}", record)
    time.sleep(0.01)
    return run_id


def test_runs_kept_per_person_remove_their_oldest_ended_runs_first(make_jobs, monkeypatch):
    monkeypatch.setenv("GLASSBOX_RUNS_KEPT_PER_PERSON", "3")
    jobs = make_jobs()
    store = jobs.store
    oldest = fake_ended_run(store, ADA, 100)
    shared = fake_ended_run(store, ADA, 150, shared=True)  # the teacher shared it: kept
    older = fake_ended_run(store, ADA, 200, status=RunState.STOPPED)
    newer = fake_ended_run(store, ADA, 300)
    bens = [fake_ended_run(store, BEN, t) for t in (50, 60, 70)]
    nobodys = fake_ended_run(store, None, 10)
    # Ada has 4 runs and keeps 3 with the new one: 2 must go, the oldest ended ones not shared.
    assert limits.make_room(jobs, ADA.person_id) == [oldest, older]
    assert sorted(store.run_ids()) == sorted([shared, newer, *bens, nobodys])
    assert limits.make_room(jobs, BEN.person_id) == [bens[0]]
    assert limits.make_room(jobs, None) == []  # nobody's runs are not limited


def test_a_queued_run_can_be_cancelled_by_its_owner_and_a_training_one_cannot(make_jobs, turns_backend):
    jobs = make_jobs(max_per_device=1)
    training = long_run(jobs, owner=ADA)
    until(lambda: any(r["type"] == "train" for r in jobs.read_metrics(training)[0]), WAIT_S)
    waiting = long_run(jobs, owner=BEN)
    until(lambda: queue_place(jobs.store.root, waiting) is not None, WAIT_S)  # its worker is in line
    assert queue_place(jobs.store.root, waiting)[1:] == (1, [])
    with pytest.raises(JobError, match="you cannot cancel this run: it is Ben's run"):
        jobs.cancel(waiting, by=ADA)
    with pytest.raises(JobError, match="already started training; use Stop"):
        jobs.cancel(training, by=ADA)
    jobs.cancel(waiting, by=BEN)
    assert not jobs.store.exists(waiting) and queue_place(jobs.store.root, waiting) is None
    assert jobs.status(training).status == "running"


def short_run(jobs: Jobs, owner: Person) -> str:
    data = quadrant_images(n_train=32, n_val=16)
    return jobs.submit(tiny_cnn(data), data, Hyperparameters(batch_size=16, epochs=1), owner=owner)


def test_runs_submitted_by_three_owners_take_turns_round_robin_with_their_place_shown(make_jobs, monkeypatch,
                                                                                      turns_backend):
    monkeypatch.setenv("GLASSBOX_RUNS_PER_PERSON", "3")
    jobs = make_jobs(max_per_device=1)
    root = jobs.store.root
    blocker = long_run(jobs, owner=ADA)
    until(lambda: any(r["type"] == "train" for r in jobs.read_metrics(blocker)[0]), WAIT_S)  # Ada's run trains
    names = {}
    for name, owner in [("a1", ADA), ("b1", BEN), ("c1", CAL)]:
        names[name] = short_run(jobs, owner)
        until(lambda: queue_place(root, names[name]) is not None, WAIT_S)  # in line before the next joins
    # By hand (as in test_rounds_...): Ada trains, so Ben's and Cal's first runs come before her
    # waiting one, though she asked first.
    expected = ["b1", "c1", "a1"]
    assert queue_place(root, names["a1"])[1:] == (3, [names["b1"], names["c1"]])
    assert queue_place(root, names["c1"])[1:] == (2, [names["b1"]])
    assert all(jobs.status(run_id).status == "queued" for run_id in names.values())
    assert jobs.stop(blocker, wait_s=10).status == "stopped"
    finals = {name: jobs.wait(run_id, timeout_s=WAIT_S) for name, run_id in names.items()}
    assert all(final.status == "finished" for final in finals.values()), finals
    assert sorted(finals, key=lambda name: finals[name].started_at) == expected
    for earlier, later in zip(expected, expected[1:]):  # one at a time: each began after the one before ended
        assert finals[earlier].finished_at <= finals[later].started_at
    assert all(queue_place(root, run_id) is None for run_id in names.values())


# ---- warm workers ------------------------------------------------------------------------------
@pytest.fixture
def spares():
    yield local.spares
    local.spares.shut()


def test_a_warm_worker_trains_the_run_like_a_fresh_one_and_is_replaced(make_jobs, spares):
    jobs = make_jobs()
    backend = jobs.backend
    assert isinstance(backend, LocalProcessBackend)
    data = quadrant_images(n_train=128, n_val=32)
    hp = Hyperparameters(batch_size=16, epochs=3, lr=3e-3)
    cold = jobs.submit(tiny_cnn(data), data, hp)
    assert jobs.wait(cold, timeout_s=WAIT_S).status == "finished"

    backend.warm_up()
    assert spares.wait_ready(WAIT_S)
    spare_pid = spares._spare.pid
    warm = jobs.submit(tiny_cnn(data), data, hp)
    assert int((jobs.store.path(warm) / "pid").read_text().split()[0]) == spare_pid  # the spare took it
    final = jobs.wait(warm, timeout_s=WAIT_S)
    assert final.status == "finished" and final.message == "Finished 24 steps."
    def fixed(run_id):  # step 1's record and every validation (which records fall between depends on time)
        return [{k: v for k, v in r.items() if k not in ("time", "samples_per_s", "val_time_s")} for r in jobs.metrics(run_id)
                if r["type"] == "val" or (r["type"] == "train" and r["step"] == 1)]

    assert len(fixed(warm)) == 4 and fixed(warm) == fixed(cold)  # same seed and data: the same numbers
    assert spares.wait_ready(WAIT_S) and spares._spare.pid != spare_pid  # a fresh spare waits for the next run


def test_killing_a_warm_worker_fails_its_run_and_leaves_this_process_alone(make_jobs, spares):
    jobs = make_jobs()
    jobs.backend.warm_up()
    assert spares.wait_ready(WAIT_S)
    run_id = long_run(jobs, owner=ADA)
    until(lambda: any(r["type"] == "train" for r in jobs.read_metrics(run_id)[0]), WAIT_S)
    pid = int((jobs.store.path(run_id) / "pid").read_text().split()[0])
    os.kill(pid, 9)
    final = jobs.wait(run_id, timeout_s=WAIT_S)
    assert final.status == "failed" and "killed" in final.message
    assert (jobs.store.path(run_id) / "worker.log").exists()


def test_a_changed_setting_is_not_served_by_a_spare_started_before_it(make_jobs, spares, monkeypatch):
    jobs = make_jobs()
    jobs.backend.warm_up()
    assert spares.wait_ready(WAIT_S)
    monkeypatch.setenv("GLASSBOX_WORKER_THREADS", "1")  # read by torch's set-up, which the spare already did
    assert spares.take(jobs.store.root / "none", resume=False) is None


@pytest.fixture
def ray_spares(ray_address, monkeypatch):
    """The Ray backend's turns and spares, every run asking for the test cluster's one slot; no
    spare is left at the end."""
    from tests.ray_cluster import SLOT
    from training.backends.ray import turns

    monkeypatch.setenv("GLASSBOX_BACKEND", "ray")
    monkeypatch.setenv("GLASSBOX_RAY_RESOURCES", json.dumps({SLOT: 1}))
    turns.shut()
    yield turns
    turns.shut()


def spare_names() -> list[str]:
    """The spare actors alive on the cluster (found by name, as a restarted server finds them)."""
    from ray.util import list_named_actors

    return sorted(name for name in list_named_actors() if name.startswith("spare-"))


def actor_of(jobs: Jobs, run_id: str) -> str:
    return json.loads((jobs.store.path(run_id) / "ray.json").read_text())["actor"]


def test_a_ray_spare_takes_the_next_run_trains_it_like_a_cold_actor_is_replaced_and_is_found_after_a_restart(
        make_jobs, ray_spares):
    import ray

    from training.backends.ray_shapes import line_key, shape_for
    from training.backends.ray_turns import Turns

    jobs = make_jobs()
    data = quadrant_images(n_train=128, n_val=32)
    hp = Hyperparameters(batch_size=16, epochs=3, lr=3e-3)
    cold = jobs.submit(tiny_cnn(data), data, hp)
    assert jobs.wait(cold, timeout_s=WAIT_S).status == "finished"
    assert actor_of(jobs, cold) == f"run-{cold}-0" and spare_names() == []  # no spare unless warm_up

    jobs.backend.warm_up()
    assert ray_spares.wait_ready(WAIT_S)
    [spare] = spare_names()
    spare_pid = ray.get(ray.get_actor(spare, namespace="glassbox").where.remote())["pid"]
    warm = jobs.submit(tiny_cnn(data), data, hp)
    assert actor_of(jobs, warm) == spare  # the spare took it
    final = jobs.wait(warm, timeout_s=WAIT_S)
    assert final.status == "finished" and final.message == "Finished 24 steps."
    assert jobs.store.read(warm).pid == spare_pid

    def fixed(run_id):  # step 1's record and every validation (which records fall between depends on time)
        return [{k: v for k, v in r.items() if k not in ("time", "samples_per_s", "val_time_s")}
                for r in jobs.metrics(run_id) if r["type"] == "val" or (r["type"] == "train" and r["step"] == 1)]

    assert len(fixed(warm)) == 4 and fixed(warm) == fixed(cold)  # same seed and data: the same numbers
    assert ray_spares.wait_ready(WAIT_S) and spare_names() != [spare]  # a fresh spare for the next run
    with pytest.raises(ValueError):  # the used one ended with its run
        ray.get_actor(spare, namespace="glassbox")

    # A restarted server finds the spare by its name and adopts it (it wants its shape).
    [fresh] = spare_names()
    shape = shape_for("auto", 0)
    restarted = Turns()
    restarted.warm_up(shape)
    assert restarted.spares[line_key(shape)].name == fresh and spare_names() == [fresh]
    # Both servers are gone, and their spare lives on (a detached actor), holding the slot: a
    # process that wants no spares (this one now; the command line) ends it when a run needs it.
    with ray_spares.lock:
        ray_spares.wanted.clear()
        ray_spares.spares.clear()
    restarted.spares.clear()
    needs_slot = jobs.submit(tiny_cnn(data), data, Hyperparameters(batch_size=16, epochs=1000))
    until(lambda: any(r["type"] == "train" for r in jobs.read_metrics(needs_slot)[0]), WAIT_S)
    assert actor_of(jobs, needs_slot) == f"run-{needs_slot}-0" and spare_names() == []
    assert jobs.stop(needs_slot, wait_s=10).status == "stopped"


def test_no_ray_spare_holds_the_slot_a_run_waits_for(make_jobs, ray_spares, monkeypatch):
    import ray

    jobs = make_jobs()
    jobs.backend.warm_up()
    assert ray_spares.wait_ready(WAIT_S)
    [spare] = spare_names()  # it holds the cluster's one slot (and one of its two CPUs)
    assert ray.available_resources().get("glassbox_slot", 0) == 0
    # A run of another shape (two CPUs and the slot) would wait for what the spare holds: the
    # spare is killed at once, and the run gets an actor of its own.
    monkeypatch.setenv("GLASSBOX_RAY_CPUS", "2")
    first = long_run(jobs, owner=ADA)
    until(lambda: any(r["type"] == "train" for r in jobs.read_metrics(first)[0]), WAIT_S)
    assert actor_of(jobs, first) == f"run-{first}-0"
    with pytest.raises(ValueError):
        ray.get_actor(spare, namespace="glassbox")
    # While a run waits for the slot, no spare is started (one would take the slot first).
    waiting = long_run(jobs, owner=BEN)
    assert queue_place(jobs.store.root, waiting)[1:] == (1, [])
    for _ in range(8):
        time.sleep(0.25)
        ray_spares.serve()
        assert spare_names() == [] and jobs.status(waiting).status == "queued"
    assert jobs.stop(first, wait_s=10).status == "stopped"
    until(lambda: any(r["type"] == "train" for r in jobs.read_metrics(waiting)[0]), WAIT_S)
    assert actor_of(jobs, waiting) == f"run-{waiting}-0" and spare_names() == []  # the slot is taken again
    assert jobs.stop(waiting, wait_s=10).status == "stopped"
    assert ray_spares.wait_ready(WAIT_S) and len(spare_names()) == 1  # nobody waits: a spare again


def test_the_train_page_shows_a_waiting_ray_runs_place_in_line_and_cancels_it(ray_spares, monkeypatch):
    import re

    from app_pages import train_run
    from tests.app_helpers import run, texts
    from tests.test_app_train import click_train, student
    from tests.test_app_train import long_run as digits_run
    from training import jobs as jobs_module

    blocker = digits_run()  # nobody's run holds the cluster's one slot
    try:
        until(lambda: jobs_module.status(blocker).step > 0, WAIT_S)  # its pace is known: the wait can be estimated
        at = student(monkeypatch, "Ben")
        mine = click_train(at)
        assert jobs_module.status(mine).status == "queued" and queue_place(jobs_module.default_jobs().store.root, mine)

        def place() -> list[str]:
            return [c for c in texts(run(at).caption) if c.startswith("Number ")]

        until(lambda: place(), WAIT_S)
        (line,) = place()
        assert re.fullmatch(r"Number 1 in line for the cpu \(runs take turns, one person after another\): nothing "
                            r"waits before it; it should start in about \d[\w ]*\. Cancel takes it out of the line\.",
                            line), line
        at.button(key=train_run.CANCEL).click()
        run(at)
        assert not jobs_module.default_jobs().store.exists(mine)
        assert queue_place(jobs_module.default_jobs().store.root, mine) is None
        assert jobs_module.status(blocker).status == "running"  # the run training was not touched
        assert jobs_module.stop(blocker, wait_s=10).status == "stopped"
    finally:
        jobs_module.default_jobs().backend.kill(jobs_module.default_jobs().store.path(blocker))


# ---- uploads and views ------------------------------------------------------------------------
def test_an_upload_over_the_limit_is_refused_with_the_sizes(monkeypatch):
    monkeypatch.setenv("GLASSBOX_MAX_UPLOAD_MB", "1")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("cats/1.bin", np.random.default_rng(0).bytes(3 * 2**20 // 2))
    with pytest.raises(DatasetError, match=r"is 1\.5 MB; uploads are limited to 1\.0 MB on this server"):
        dataset_from_upload(buffer.getvalue(), "big.zip")
    with pytest.raises(DatasetError, match=r"a text file is limited to 1\.0 MB"):
        dataset_from_upload(b"text,label\n" + b"x" * (2**20 + 1), "big.csv")
    monkeypatch.setenv("GLASSBOX_MAX_UPLOAD_MB", "not a number")
    assert limits.max_upload_bytes() == 50 * 2**20
    assert limits.bad_settings() == ["GLASSBOX_MAX_UPLOAD_MB='not a number' is not a whole number above zero, so "
                                     "the default 50 is used"]


def test_an_attention_view_holds_the_bytes_counted_by_hand_and_no_copy():
    model = token_model()  # 2 blocks, 4 heads, d = 64; a sentence of 9 words and [CLS]: T = 10
    inspection = inspect_attention(model, sentence_ids(SENTENCE))
    t, layers, heads, d, classes, words = 10, 2, 4, 64, 2, 9
    by_hand = 4 * (layers * (2 * heads * t * t + 7 * t * d) + t * d + d)  # float32 bytes
    assert inspection_bytes(model.spec, t) == by_hand == 45_056
    extra = 4 * (classes + words * classes)  # the prediction, and after each word
    assert inspection.held_bytes == by_hand + extra
    every_array = [inspection.patterns, inspection.scores, inspection.queries, inspection.keys, inspection.values,
                   *inspection.activations.values()]
    naive = sum(a.nbytes for a in every_array)
    assert held_bytes(every_array) == by_hand < naive  # the activations share the stacked arrays' memory
    assert np.shares_memory(inspection.activations["blocks.1.attn.pattern"], inspection.patterns)


def test_a_text_too_long_for_the_view_memory_is_refused_in_words(monkeypatch):
    spec = presets.get("sentiment-transformer")  # MiniLM's sizes: 6 blocks, 12 heads, d = 384
    spec.transformer.num_layers, spec.transformer.num_heads, spec.transformer.d_model = 6, 12, 384
    by_hand = 4 * (6 * (2 * 12 * 512 * 512 + 7 * 512 * 384) + 512 * 384 + 384)
    assert inspection_bytes(spec, 512) == by_hand > limits.view_memory_bytes() == 64 * 2**20
    fits = longest_that_fits(spec, 64 * 2**20)
    assert inspection_bytes(spec, fits) <= 64 * 2**20 < inspection_bytes(spec, fits + 1)

    monkeypatch.setenv("GLASSBOX_VIEW_MEMORY_MB", "1")
    long_spec = presets.get("sentiment-transformer")  # 2 blocks, 4 heads, d = 64, for texts of up to 400 tokens
    long_spec.input.vocab_size, long_spec.input.max_len = 14, 400
    model = build_model(long_spec, seed=0).eval()
    budget_fits = longest_that_fits(model.spec, 2**20)
    with pytest.raises(ValueError) as refused:
        inspect_attention(model, torch.full((300,), 3))
    assert str(refused.value) == (
        f"This text is 301 tokens long, and the attention of its 2 blocks × 4 heads over it would take "
        f"{inspection_bytes(model.spec, 301) / 2**20:,.0f} MB of the server's memory; one view may take 1 MB (the "
        f"whole class shares this server), which is up to {budget_fits} tokens for sentiment-transformer. "
        "Try a shorter text")
    fitting = inspect_attention(model, torch.full((budget_fits - 1,), 3))  # with [CLS]: budget_fits positions
    prediction = fitting.probabilities.nbytes + (0 if fitting.prefix_probabilities is None
                                                 else fitting.prefix_probabilities.nbytes)
    assert fitting.held_bytes - prediction == inspection_bytes(model.spec, budget_fits) <= 2**20
