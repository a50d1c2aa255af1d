"""Jobs end to end, with real worker processes: a run goes queued -> running -> finished in its
own process; a stop lands within a second or two; a second job waits as ``queued`` while the
first holds the device; a worker killed with SIGKILL leaves a ``failed`` run (and this process
unharmed) that resumes from its last checkpoint; errors in the worker become plain messages.
``status`` and ``list_runs`` only read; ``reconcile`` records what became of the workers.

The lifecycle tests (``backend_name``) run on both backends: the local worker process, and a Ray
actor on the real local Ray cluster of the test session (tests/conftest.py ``ray_address``),
whose records reach the run folder only through Ray.

Timing is never asserted beyond generous bounds: the machine may be busy.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from tests.waiting import until as wait_until
from training import jobs as jobs_module
from training.backends.local import LocalProcessBackend, track_child
from training.device_queue import queue_place
from training.jobs import JobError, Jobs
from training.people import Person
from training.record import RunState
from training.store import RunStore
from training.trainer import Hyperparameters, checkpoint_schedule
from tests.test_trainer import quadrant_images, tiny_cnn

WAIT_S = 60  # generous: only a hung worker should hit it


@pytest.fixture(autouse=True)
def one_thread_workers(monkeypatch):
    """Workers inherit this: with two intra-op threads on a busy two-core machine, tiny models
    can slow down many times over (threads waiting for each other), which only makes tests slow."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")




def until(condition, timeout_s=WAIT_S, poll_s=0.02):
    return wait_until(condition, timeout_s, poll_s)


def long_run(jobs, epochs=1000):
    """A run that trains for far longer than any test waits (unless stopped)."""
    data = quadrant_images(n_train=512, n_val=64)
    return jobs.submit(tiny_cnn(data), data, Hyperparameters(batch_size=16, epochs=epochs))


def reconciled_status(jobs, run_id):
    """The status after reconciling, as a page that watches the run sees it."""
    jobs.reconcile(run_id)
    return jobs.status(run_id)


def training_has_begun(jobs, run_id):
    """A first metrics record is out (run.json's progress is written only once a second)."""
    return any(r["type"] == "train" for r in jobs.read_metrics(run_id)[0])


def worker_pid(jobs, run_id) -> int:
    """The process the run trains in: the local worker's pid file, or the Ray actor's own answer."""
    folder = jobs.store.path(run_id)
    if jobs.backend.name == "ray":
        return jobs.backend.where(folder)["pid"]
    return int((folder / "pid").read_text().split()[0])


def test_a_run_trains_in_a_worker_process_and_records_everything(backend_name, tmp_path, monkeypatch):
    monkeypatch.setenv("GLASSBOX_HOME", str(tmp_path))  # the module-level API uses the same store
    data = quadrant_images(n_train=256, n_val=64)
    run_id = jobs_module.submit(tiny_cnn(data), data, Hyperparameters(batch_size=16, epochs=20, lr=3e-3))
    assert jobs_module.status(run_id).status == "queued"  # submit returned before the worker began
    seen = []
    while not seen or seen[-1] not in ("finished", "failed"):
        current = jobs_module.status(run_id)
        if not seen or seen[-1] != current.status:
            seen.append(current.status)
        time.sleep(0.01)
    assert seen == ["queued", "running", "finished"], jobs_module.status(run_id).message

    final = jobs_module.wait(run_id, timeout_s=WAIT_S)
    assert final.device == "cpu" and final.message == "Finished 320 steps."
    assert final.step == final.total_steps == 320 and final.progress == 1.0
    assert final.submitted_at <= final.started_at <= final.finished_at and final.duration_s > 0
    assert final.best_val_acc > 0.8 and final.model == "tiny-cnn" and final.family == "CNN"

    folder = tmp_path / "runs" / run_id
    record = json.loads((folder / "run.json").read_text())
    assert record["spec"]["name"] == "tiny-cnn" and record["hyperparameters"]["epochs"] == 20
    assert record["dataset"]["name"] == "quadrants" and record["dataset"]["source"] is None
    assert (folder / "data.safetensors").is_file()  # uploaded data travels in the run folder
    assert record["job"]["backend"] == backend_name
    if backend_name == "local":
        assert int((folder / "pid").read_text().split()[0]) != os.getpid()
    else:  # the actor said where it trained; this process followed it, and let it go at the end
        assert record["job"]["node"] and record["pid"] != os.getpid()
        assert json.loads((folder / "ray.json").read_text())["metrics_offset"] == (folder / "metrics.jsonl").stat().st_size

    lines = (folder / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is valid JSON
    assert [r["epoch"] for r in records if r["type"] == "val"] == list(range(1, 21))
    train_steps = [r["step"] for r in records if r["type"] == "train"]
    assert train_steps == sorted(train_steps) and train_steps[0] == 1 and train_steps[-1] == 320
    assert jobs_module.metrics(run_id) == records

    store = RunStore(tmp_path)
    assert store.checkpoint_steps(run_id) == checkpoint_schedule(320)
    assert store.load_model(run_id).meta.step == 320
    assert [r.run_id for r in jobs_module.list_runs()] == [run_id]
    with pytest.raises(JobError, match="already finished"):
        jobs_module.resume(run_id)


def test_stop_lands_quickly_and_resume_continues_to_the_end(make_jobs, backend_name):
    jobs = make_jobs()
    run_id = long_run(jobs, epochs=30)
    until(lambda: training_has_begun(jobs, run_id))
    stopped = jobs.stop(run_id, wait_s=3.0)  # takes effect within a second; generous bound here
    assert stopped.status == "stopped", stopped
    assert stopped.step < stopped.total_steps
    assert stopped.step in jobs.store.checkpoint_steps(run_id)  # saved where it stopped

    jobs.resume(run_id)
    final = jobs.wait(run_id, timeout_s=WAIT_S)
    assert final.status == "finished" and final.step == final.total_steps, final.message
    history = jobs.metrics(run_id)
    resumes = [r for r in history if r["type"] == "resume"]
    assert resumes == [{**resumes[0], "step": stopped.step, "optimizer_restored": True}]
    steps = [r["step"] for r in history if r["type"] == "train"]
    assert steps == sorted(steps) and steps[-1] == final.total_steps  # appended, never rewritten
    assert jobs.store.checkpoint_steps(run_id)[-1] == final.total_steps


def test_jobs_beyond_the_limit_wait_queued_and_can_be_stopped_while_waiting(make_jobs):
    jobs = make_jobs(max_per_device=1)
    first = long_run(jobs)
    until(lambda: training_has_begun(jobs, first))
    data = quadrant_images(n_train=64, n_val=16)
    second = jobs.submit(tiny_cnn(data), data, Hyperparameters(batch_size=16, epochs=2))
    third = jobs.submit(tiny_cnn(data), data, Hyperparameters(batch_size=16, epochs=2))
    # Both workers start, learn their device, and wait for it.
    until(lambda: jobs.status(second).device == "cpu" and jobs.status(third).device == "cpu")
    time.sleep(0.5)
    assert jobs.status(second).status == "queued" and jobs.status(third).status == "queued"

    assert jobs.stop(third, wait_s=3.0).status == "stopped"
    assert jobs.status(second).status == "queued"
    assert jobs.stop(first, wait_s=3.0).status == "stopped"
    done = jobs.wait(second, timeout_s=WAIT_S)
    assert done.status == "finished"
    assert done.started_at >= jobs.status(first).finished_at  # it began only once the first had ended
    assert jobs.status(third).status == "stopped" and jobs.metrics(third) == []


def test_a_killed_worker_marks_the_run_failed_and_it_can_resume(make_jobs, backend_name):
    jobs = make_jobs()
    run_id = long_run(jobs, epochs=30)
    until(lambda: training_has_begun(jobs, run_id) and len(jobs.store.checkpoint_steps(run_id)) > 3)
    pid = worker_pid(jobs, run_id)
    assert pid != os.getpid()
    os.kill(pid, signal.SIGKILL)
    failed = until(lambda: (s := reconciled_status(jobs, run_id)).status == "failed" and s)
    assert "killed" in failed.message and "out of memory" in failed.message
    assert os.getpid() > 0 and jobs.list_runs()[0].status == "failed"  # this process carries on
    kept = jobs.metrics(run_id)  # what was recorded before the kill is kept
    assert [r for r in kept if r["type"] == "train"]

    checkpoints = jobs.store.checkpoint_steps(run_id)
    with_optimizer = jobs.store.load_optimizer_state(run_id)[0]  # resume starts there (<= the latest)
    assert with_optimizer in checkpoints
    jobs.resume(run_id)
    final = jobs.wait(run_id, timeout_s=WAIT_S)
    assert final.status == "finished", final.message
    resume = [r for r in jobs.metrics(run_id) if r["type"] == "resume"]
    assert resume == [{**resume[0], "step": with_optimizer, "optimizer_restored": True}]
    steps = [r["step"] for r in jobs.metrics(run_id) if r["type"] == "train"]
    assert steps == sorted(steps) and steps[-1] == final.total_steps


def test_a_new_jobs_object_finds_a_running_worker_and_follows_it_to_the_end(make_jobs, backend_name):
    """A restart of the server: the first Jobs lets go of its runs (for Ray, its followers stop
    and the actor trains on unwatched), a new one on the same store picks the run up again."""
    first = make_jobs()
    data = quadrant_images(n_train=512, n_val=64)
    paced = Hyperparameters(batch_size=16, epochs=12, pace_s=5.0)  # still training when the second looks
    run_id = first.submit(tiny_cnn(data), data, paced)
    until(lambda: training_has_begun(first, run_id))
    if backend_name == "ray":
        first.backend.detach()
        before = len(first.metrics(run_id))
        time.sleep(1.0)  # the actor trains on; nobody brings its records in
        assert len(first.metrics(run_id)) == before
    second = make_jobs()
    assert second.backend is not first.backend
    final = second.wait(run_id, timeout_s=WAIT_S)
    assert final.status == "finished" and final.step == final.total_steps == 384, final.message
    records = second.metrics(run_id)
    steps = [r["step"] for r in records if r["type"] == "train"]
    assert steps == sorted(set(steps)) and steps[-1] == 384  # nothing lost, nothing twice
    assert [r["epoch"] for r in records if r["type"] == "val"] == list(range(1, 13))
    assert second.store.checkpoint_steps(run_id) == checkpoint_schedule(384)
    if backend_name == "ray":  # the follower ended the actor once its last records were in
        import ray

        with pytest.raises(ValueError):
            ray.get_actor(json.loads((second.store.path(run_id) / "ray.json").read_text())["actor"], namespace="glassbox")


def test_ray_runs_beyond_the_clusters_cpus_wait_queued_and_can_be_stopped_while_waiting(make_jobs, ray_address,
                                                                                         monkeypatch):
    """A run gets its actor when the cluster has the CPUs it asks for (one each; the test cluster
    has two): a third run waits as ``queued`` in Glassbox's line, a stop takes it out at once."""
    monkeypatch.setenv("GLASSBOX_BACKEND", "ray")
    jobs = make_jobs()
    first, second = long_run(jobs), long_run(jobs)
    until(lambda: training_has_begun(jobs, first) and training_has_begun(jobs, second))
    third = long_run(jobs)
    time.sleep(1.0)
    assert reconciled_status(jobs, third).status == "queued" and jobs.status(third).device == "cpu"
    assert queue_place(jobs.store.root, third)[1:] == (1, [])  # in Glassbox's line, not Ray's
    assert jobs.stop(third, wait_s=3.0).status == "stopped"
    assert jobs.metrics(third) == [] and jobs.status(first).status == "running"
    for run_id in (first, second):
        assert jobs.stop(run_id, wait_s=3.0).status == "stopped"


class _InProcessActor:
    """A Ray actor handle's stand-in for a ``RunActor`` trained in this process: each call's
    answer is put in Ray's object store, as an actor's would be. ``pull_late`` makes the first
    pull after training ended read the actor's ``done`` just before it was set (the actor answers
    pulls in a thread of their own, while its training thread records the end); the pulls after
    that wait for ``go``."""

    class _Method:
        def __init__(self, call):
            self.call = call

        def remote(self, *args):
            import ray

            return ray.put(self.call(*args))

    def __init__(self, actor):
        self.actor = actor
        self.late_pull_written, self.go = threading.Event(), threading.Event()
        self.pull, self.close = self._Method(self._pull), self._Method(lambda: actor.close())
        self._late = False

    def _pull(self, *args):
        if self._late:
            self.late_pull_written.set()  # the follower has written what the late pull brought
            self.go.wait(WAIT_S)
        elif self.actor.done.is_set():
            self._late = True
            self.actor.done.clear()  # as if this pull read it a moment before training's thread set it
            try:
                return self.actor.pull(*args)
            finally:
                self.actor.done.set()
        return self.actor.pull(*args)


class _NoWorker:
    """A backend that starts nothing (the test makes the run's actor itself)."""

    name = "ray"

    def check_device(self, device):
        pass

    def launch(self, run_dir, resume):
        pass


def test_a_ray_run_is_recorded_as_ended_only_once_the_state_it_resumes_from_is_in(tmp_path, ray_address,
                                                                                    monkeypatch):
    """The follower brings the optimizer state in only now and then while the run trains (and
    with the actor's last answer); a pull that found training not yet over but run.json already
    saying "stopped" must not write that run.json: a resume started then would continue from the
    older optimizer state's step, not from where the run stopped."""
    from training.backends.ray_actor import RunActor
    from training.backends.ray_follow import FOLLOW_FILE, Follower
    from training.backends.ray_shapes import run_files
    from training.worker import resume_point

    monkeypatch.setenv("GLASSBOX_WORKER_THREADS", "1")  # the actor sets it; restored after
    threads = torch.get_num_threads()  # the actor's training, in this process, sets it
    jobs = Jobs(RunStore(tmp_path), backend=_NoWorker())
    run_id = long_run(jobs, epochs=30)
    run_dir = jobs.store.path(run_id)
    files, _ = run_files(run_dir, resume=False)
    actor = RunActor(1, (run_id, files, False))
    handle = _InProcessActor(actor)
    state = {"actor": f"run-{run_id}-0", "metrics_offset": 0, "steps": []}
    (run_dir / FOLLOW_FILE).write_text(json.dumps(state))
    follower = Follower(None, run_dir, handle, state)
    follower.thread.start()
    try:
        until(lambda: jobs.store.load_optimizer_state(run_id) is not None)  # the first pull brings it in
        brought_in = jobs.store.load_optimizer_state(run_id)[0]
        until(lambda: any(r["type"] == "train" and r["step"] > brought_in for r in jobs.metrics(run_id)))
        actor.stop()
        assert actor.done.wait(WAIT_S)
        assert handle.late_pull_written.wait(WAIT_S)
        seen = jobs.status(run_id)  # what a page (or Jobs.stop) sees before the actor's last answer
        if not seen.active:
            assert resume_point(jobs.store, run_id)[0] == seen.step, "ended, but a resume would not start there"
        handle.go.set()
        follower.thread.join(WAIT_S)
        assert follower.gone == "the worker ended"
        stopped = jobs.status(run_id)
        assert stopped.status == "stopped" and brought_in < stopped.step < stopped.total_steps
        assert resume_point(jobs.store, run_id)[0] == stopped.step
        assert stopped.step == json.loads((run_dir / "run.json").read_text())["progress"]["step"]
    finally:
        handle.go.set()
        follower.detached.set()
        if not actor.done.is_set():
            actor.stop()
            actor.done.wait(WAIT_S)
        actor.close()
        torch.set_num_threads(threads)


def test_errors_in_the_worker_become_plain_messages(make_jobs):
    jobs = make_jobs(max_per_device=2)  # both at once
    data = quadrant_images(n_train=64, n_val=16)
    broken = quadrant_images(n_train=64, n_val=16)
    broken.y_train[5] = 7  # a label for a class the model does not have
    nan = quadrant_images(n_train=64, n_val=16)
    nan.x_train[:] = float("nan")
    broken_id = jobs.submit(tiny_cnn(data), broken, Hyperparameters(batch_size=16, epochs=2))
    nan_id = jobs.submit(tiny_cnn(data), nan, Hyperparameters(batch_size=16, epochs=2, lr=0.01))
    failed = jobs.wait(broken_id, timeout_s=WAIT_S)
    assert failed.status == "failed"
    assert failed.message.startswith("Training failed:") and "out of bounds" in failed.message
    diverged = jobs.wait(nan_id, timeout_s=WAIT_S)
    assert diverged.status == "diverged"
    assert diverged.message == ("The loss became NaN/infinite at step 1; try a lower learning rate "
                                "(e.g. 0.001 instead of 0.01).")
    assert jobs.store.checkpoint_steps(nan_id) == [0]
    with pytest.raises(JobError, match="lower learning rate"):
        jobs.resume(nan_id)


def test_bad_requests_are_refused_before_anything_starts(make_jobs):
    jobs = make_jobs()
    data = quadrant_images(n_train=64, n_val=16)
    with pytest.raises(ValueError, match="learning rate"):
        jobs.submit(tiny_cnn(data), data, {"lr": -1.0})
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            jobs.submit(tiny_cnn(data), data, Hyperparameters(device="cuda"))
    assert jobs.list_runs() == []


# ---- liveness, without a real worker -------------------------------------------------------
def fake_run(jobs, status="running"):
    data = quadrant_images(n_train=16, n_val=4)
    run_id = jobs.store.create("fake", {"status": status, "model": "fake", "dataset": {"name": "x"},
                                        "times": {"submitted": time.time()}, "progress": {}})
    return run_id, data


class SleepingBackend(LocalProcessBackend):
    """A 'worker' that only sleeps, and (optionally) ignores SIGTERM: a worker stuck in a long step."""

    def __init__(self, ignore_sigterm: bool):
        self.ignore_sigterm = ignore_sigterm

    def launch(self, run_dir, resume):
        code = "import signal, time\n"
        if self.ignore_sigterm:
            code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        code += "print('ready', flush=True)\ntime.sleep(60)\n"
        child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
        assert child.stdout.readline().strip() == b"ready"  # its signal handling is in place
        track_child(child)
        self.child = child
        (run_dir / "pid").write_text(f"{child.pid} {time.time()}")


def test_a_worker_that_ignores_a_stop_is_ended_after_a_grace_period(make_jobs, monkeypatch):
    monkeypatch.setattr(jobs_module, "STOP_GRACE_S", 0.5)
    jobs = make_jobs(backend=SleepingBackend(ignore_sigterm=True))
    run_id, _ = fake_run(jobs)
    jobs.backend.launch(jobs.store.path(run_id), False)
    assert jobs.stop(run_id, wait_s=0.1).status == "stopping"
    time.sleep(0.6)
    assert jobs.status(run_id).status == "stopping"  # looking enforces nothing
    assert jobs.backend.child.poll() is None
    assert jobs.reconcile(run_id) == [run_id]
    final = jobs.status(run_id)
    assert final.status == "stopped" and "did not respond" in final.message
    assert jobs.backend.child.poll() is not None  # ended by force


def test_a_worker_that_dies_on_the_stop_signal_counts_as_stopped(make_jobs):
    jobs = make_jobs(backend=SleepingBackend(ignore_sigterm=False))
    run_id, _ = fake_run(jobs)
    jobs.backend.launch(jobs.store.path(run_id), False)
    assert jobs.stop(run_id, wait_s=3.0).status == "stopped"


def test_a_run_whose_worker_vanished_while_the_server_was_away_is_failed(make_jobs):
    jobs = make_jobs()
    run_id, _ = fake_run(jobs)
    folder = jobs.store.path(run_id)
    (folder / "pid").write_text(f"{2 ** 22 + 12345} {time.time() - 100}")  # no such process, not our child
    assert jobs.status(run_id).status == "running"  # a look changes nothing
    assert jobs.reconcile() == [run_id]
    current = jobs.status(run_id)
    assert current.status == "failed" and "ended without saying why" in current.message
    assert jobs.store.read(run_id).status == "failed"  # recorded, not only shown
    assert jobs.reconcile() == []  # once is enough


def snapshot(jobs, run_id):
    """run.json's bytes and modification time, and the folder's file names."""
    folder = jobs.store.path(run_id)
    run_json = folder / "run.json"
    return run_json.read_bytes(), run_json.stat().st_mtime_ns, sorted(p.name for p in folder.iterdir())


def test_status_and_list_runs_only_read_and_reconcile_does_what_they_no_longer_do(make_jobs, monkeypatch):
    """A dead worker and a worker that ignores a stop: looking (status, list_runs) writes nothing
    and ends no process; reconcile records the first as failed and ends the second."""
    monkeypatch.setattr(jobs_module, "STOP_GRACE_S", 0.3)
    jobs = make_jobs(backend=SleepingBackend(ignore_sigterm=True))
    dead, _ = fake_run(jobs)
    (jobs.store.path(dead) / "pid").write_text(f"{2 ** 22 + 12345} {time.time() - 100}")
    stuck, _ = fake_run(jobs)
    jobs.backend.launch(jobs.store.path(stuck), False)
    jobs.store.ask_to_stop(stuck)
    time.sleep(0.4)  # past the grace period
    before = {run_id: snapshot(jobs, run_id) for run_id in (dead, stuck)}
    time.sleep(0.05)  # a write now would show in the modification time

    for _ in range(3):
        assert jobs.status(dead).status == "running"
        assert jobs.status(stuck).status == "stopping"
        assert {run.run_id: run.status for run in jobs.list_runs()} == {dead: "running", stuck: "stopping"}
    assert {run_id: snapshot(jobs, run_id) for run_id in (dead, stuck)} == before
    assert jobs.backend.child.poll() is None  # the stuck worker lives

    assert sorted(jobs.reconcile()) == sorted([dead, stuck])
    assert jobs.store.read(dead).status is RunState.FAILED
    assert "ended without saying why" in jobs.store.read(dead).message
    assert jobs.store.read(stuck).status is RunState.STOPPED
    assert jobs.backend.child.wait(timeout=5) is not None
    assert all(snapshot(jobs, run_id)[0] != before[run_id][0] for run_id in (dead, stuck))


def test_reconcile_leaves_a_run_it_cannot_read_alone(make_jobs):
    jobs = make_jobs()
    run_id, _ = fake_run(jobs)
    (jobs.store.path(run_id) / "run.json").write_bytes(b"{torn")
    assert jobs.reconcile() == [] and jobs.reconcile(run_id) == []
    assert jobs.reconcile("20990101-000000-gone-0000") == []
    assert (jobs.store.path(run_id) / "run.json").read_bytes() == b"{torn"


def test_the_worker_module_loads_without_torch_and_nothing_here_loads_streamlit():
    """The worker's signal handler and heartbeat must be in place before torch's slow import;
    and the engine must never pull Streamlit into a worker."""
    code = ("import sys, training.worker; print('torch' in sys.modules); "
            "import training.jobs, training.trainer, training.store, training.train; "
            "print('streamlit' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout.split()
    assert out == ["False", "False"]


@pytest.mark.parametrize("content", [b"[]", b'{"status": 3}', b'{"status": "finished", "times": []}', b"{torn"])
def test_a_damaged_run_json_is_skipped_by_the_list_and_explained_by_status(make_jobs, content):
    jobs = make_jobs()
    good, _ = fake_run(jobs, status="finished")
    bad, _ = fake_run(jobs, status="finished")
    (jobs.store.path(bad) / "run.json").write_bytes(content)
    assert [run.run_id for run in jobs.list_runs()] == [good]
    if content != b'{"status": "finished", "times": []}':
        with pytest.raises(ValueError):
            jobs.status(bad)


# ---- who may act (issue 13): enforced here, not only by the buttons the page draws ---------------
ADA, BEN = Person("a" * 32, "Ada"), Person("b" * 32, "Ben")
TEACHER = Person("c" * 32, "Ms Lee", teacher=True)


def test_only_the_owner_or_the_teacher_may_stop_resume_or_delete_a_run(make_jobs):
    jobs = make_jobs()
    data = quadrant_images(n_train=512, n_val=64)
    run_id = jobs.submit(tiny_cnn(data), data, Hyperparameters(batch_size=16, epochs=1000), owner=ADA)
    record = jobs.store.read(run_id)
    assert (record.owner, record.owner_name, record.shared) == (ADA.person_id, "Ada", False)
    assert (jobs.status(run_id).owner, jobs.status(run_id).owner_name) == (ADA.person_id, "Ada")
    until(lambda: training_has_begun(jobs, run_id))

    # Ben cannot stop Ada's run: a plain message, and the run trains on, no stop asked for.
    with pytest.raises(JobError, match=r"^you cannot stop this run: it is Ada's run, and only its owner or the "
                                       r"teacher can stop it$"):
        jobs.stop(run_id, by=BEN)
    assert jobs.store.stop_asked_at(run_id) is None and reconciled_status(jobs, run_id).status == "running"

    # The teacher can.
    assert jobs.stop(run_id, by=TEACHER, wait_s=3.0).status == "stopped"
    # Ben can neither resume nor delete it; nothing changes.
    with pytest.raises(JobError, match="cannot resume this run: it is Ada's run"):
        jobs.resume(run_id, by=BEN)
    with pytest.raises(JobError, match="cannot delete this run: it is Ada's run"):
        jobs.delete(run_id, by=BEN)
    assert jobs.status(run_id).status == "stopped" and jobs.store.exists(run_id)
    assert jobs.status(run_id).step in jobs.store.checkpoint_steps(run_id)

    # Ada resumes and stops her own run; the teacher deletes it.
    jobs.resume(run_id, by=ADA)
    assert jobs.status(run_id).active
    assert jobs.stop(run_id, by=ADA, wait_s=3.0).status == "stopped"
    jobs.delete(run_id, by=TEACHER)
    assert not jobs.store.exists(run_id)


def test_a_run_of_nobody_is_the_teachers_to_act_on_and_sharing_is_the_teachers_alone(make_jobs):
    jobs = make_jobs()
    data = quadrant_images(n_train=64, n_val=16)
    nobody = jobs.submit(tiny_cnn(data), data, Hyperparameters(batch_size=16, epochs=1))  # command line: no owner
    assert jobs.wait(nobody, timeout_s=WAIT_S).status == "finished"
    assert (jobs.status(nobody).owner, jobs.status(nobody).owner_name) == (None, None)
    with pytest.raises(JobError, match="it is nobody's run"):
        jobs.delete(nobody, by=ADA)
    with pytest.raises(JobError, match="only the teacher can share"):
        jobs.share(nobody, by=ADA)
    assert not jobs.status(nobody).shared

    shared = jobs.share(nobody, by=TEACHER)
    assert shared.shared and jobs.store.read(nobody).shared and jobs.list_runs()[0].shared
    assert jobs.share(nobody, shared=False, by=TEACHER).shared is False
    assert jobs.share(nobody, by=None).shared  # single-user mode: allowed, as everything

    # A run still training cannot be shared (its worker is the only writer of run.json), and one
    # with no saved model has nothing to share.
    active = long_run(jobs)
    with pytest.raises(JobError, match="still training"):
        jobs.share(active, by=TEACHER)
    jobs.stop(active, by=None, wait_s=3.0)
    for step in jobs.store.checkpoint_steps(active):  # as if it had stopped before its first save
        shutil.rmtree(jobs.store.checkpoint_path(active, step))
    with pytest.raises(JobError, match="no saved model"):
        jobs.share(active, by=TEACHER)
    jobs.delete(nobody)  # single-user mode: anyone may
    assert not jobs.store.exists(nobody)


def test_a_ray_cluster_that_is_not_there_is_said_at_once_in_words():
    """Ray itself would wait minutes for a head that is not running; the backend asks first."""
    from tests.ray_cluster import free_port
    from training.backends.ray import probe

    address = f"127.0.0.1:{free_port()}"  # free: nothing listens there
    with pytest.raises(OSError, match=f"the Ray cluster at {address} cannot be reached"):
        probe(address)
