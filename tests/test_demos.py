"""The shipped demo models (models.demos, models/demo_runs): each loads offline and reaches the
accuracy recorded with it, recomputed here on the built-in data; each is a clean run folder of
the run store with small checkpoints; installing one into a store gives a run that training.jobs
reads, also when two sessions install it at once, and only the teacher may delete it; the Model
page makes one the current model; and the command that retrains them gives the same weights
twice."""
from __future__ import annotations

import json
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from app_pages import common, inspect_target, ready_models
from explain.probe import validation_predictions
from models import demos
from tests.app_helpers import open_page, run, texts
from training import demo_runs
from training.datasets import load_dataset
from training.jobs import JobError
from training.people import Person, can_see
from training.record import RunState
from training.store import RUN_ID, RunStore

MB = 2**20
MAIN = ["digits-cnn", "sentiment-lstm", "sentiment-transformer"]
ALL = MAIN + ["digits-cnn-too-fast", "digits-cnn-tiny-data"]
TARGETS = {"digits-cnn": 0.90, "sentiment-lstm": 0.85, "sentiment-transformer": 0.85}
TOLERANCE = 0.001  # 0.1 percentage point
STUDENT, TEACHER = Person("a" * 32, "Ada"), Person("b" * 32, "Ms Lee", teacher=True)


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to reach the network fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("a demo model tried to reach the network")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def run_record(name: str) -> dict:
    return json.loads((demos.run_folder(name) / "run.json").read_text(encoding="utf-8"))


def run_dataset(name: str):
    """The data the demo was trained on, rebuilt from its run's recipe (as the app does)."""
    source = run_record(name)["dataset"]["source"]
    return load_dataset(source["builtin"], **source["options"])


def accuracy(model, x, y) -> float:
    predicted, _ = validation_predictions(model, x)
    return float((predicted == y.numpy()).mean())


def test_every_demo_is_listed_main_ones_first():
    assert demos.names() == ALL
    assert [demos.info(n).lesson_only for n in ALL] == [False, False, False, True, True]
    with pytest.raises(ValueError, match="no demo model called 'mnist-cnn'.*digits-cnn, sentiment-lstm"):
        demos.load("mnist-cnn")
    with pytest.raises(demos.UnknownDemo):
        demos.run_folder("nope")


@pytest.mark.parametrize("name", ALL)
def test_a_demo_loads_offline_and_reaches_its_recorded_accuracy(name, offline):
    about, model = demos.info(name), demos.load(name)
    assert model.spec.name == about.preset and model.meta.run_id == about.run_id
    assert model.meta.step == about.final_step == max(demos.checkpoint_steps(name))
    dataset = run_dataset(name)
    val_acc = accuracy(model, dataset.x_val, dataset.y_val)
    train_acc = accuracy(model, dataset.x_train, dataset.y_train)
    assert val_acc == pytest.approx(about.val_acc, abs=TOLERANCE)
    assert train_acc == pytest.approx(about.train_acc, abs=TOLERANCE)
    record = run_record(name)
    assert record["status"] == about.state
    if about.state == "finished":  # the trainer measured the final model at the end of its last epoch
        assert record["last_val_acc"] == pytest.approx(val_acc, abs=TOLERANCE)


@pytest.mark.parametrize("name", MAIN)
def test_the_main_demos_meet_their_targets(name):
    assert demos.info(name).state == "finished"
    assert demos.info(name).val_acc >= TARGETS[name]


def test_the_too_fast_demo_diverged_and_kept_its_metrics_up_to_there():
    about, record = demos.info("digits-cnn-too-fast"), run_record("digits-cnn-too-fast")
    assert about.state == record["status"] == "diverged" and "NaN" in record["message"]
    assert record["hyperparameters"]["optimizer"] == "sgd" and record["hyperparameters"]["lr"] >= 1
    metrics = [json.loads(line) for line in (demos.run_folder("digits-cnn-too-fast") / "metrics.jsonl").open()]
    train = [m for m in metrics if m["type"] == "train"]
    assert len(train) >= 2 and train[-1]["loss"] > 10 * train[0]["loss"]  # the loss grew before it broke
    assert metrics[-1]["type"] == "diverged" and metrics[-1]["step"] > about.final_step
    assert about.val_acc < 0.2  # what is left is a guess


def test_the_tiny_data_demo_over_fits():
    about, record = demos.info("digits-cnn-tiny-data"), run_record("digits-cnn-tiny-data")
    full = run_record("digits-cnn")["dataset"]
    assert record["dataset"]["train_size"] <= 200 < full["train_size"]
    assert record["dataset"]["val_size"] == full["val_size"]  # the same validation examples
    assert about.train_acc >= 0.98 and about.train_acc - about.val_acc >= 0.08
    assert about.val_acc < demos.info("digits-cnn").val_acc


def test_digits_train_size_keeps_every_class_and_the_same_validation_set():
    full, tiny = load_dataset("digits"), load_dataset("digits", train_size=100)
    assert len(tiny.x_train) == 100 and torch.bincount(tiny.y_train).tolist() == [10] * 10
    assert torch.equal(tiny.y_val, full.y_val)
    assert full.source["options"]["train_size"] == 0 and len(full.x_train) == 1438


@pytest.mark.parametrize("name", ALL)
def test_a_demo_is_a_clean_run_folder_with_small_checkpoints(name):
    folder, about = demos.run_folder(name), demos.info(name)
    assert folder.name == about.run_id and RUN_ID.match(about.run_id)
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoints", "metrics.jsonl", "run.json"]
    record = run_record(name)
    assert record["run_id"] == about.run_id and record["shared"] and record["owner"] is None
    steps = demos.checkpoint_steps(name)
    assert len(steps) >= 2 and steps[0] == 0 and record["progress"]["checkpoint_steps"] == steps
    assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == sorted(f"step_{s}" for s in steps)
    for step in steps:
        checkpoint = folder / "checkpoints" / f"step_{step}"
        assert sorted(p.name for p in checkpoint.iterdir()) == ["meta.json", "model.safetensors", "spec.json"]
        assert sum(p.stat().st_size for p in checkpoint.iterdir()) < MB
        assert json.loads((checkpoint / "meta.json").read_text())["run_id"] == about.run_id


def test_all_demos_together_stay_small():
    total = sum(p.stat().st_size for p in demos.DEMO_ROOT.rglob("*") if p.is_file())
    assert total < 5 * MB


# ---- in a run store -------------------------------------------------------------------------
@pytest.mark.parametrize("name", ALL)
def test_an_installed_demo_is_a_run_that_jobs_reads(name, make_jobs):
    jobs, about = make_jobs(), demos.info(name)
    assert demo_runs.install(name, jobs.store) == about.run_id
    status = jobs.status(about.run_id)
    assert status.status == RunState(about.state) and not status.active
    assert status.shared and status.owner is None and status.owner_name == "Glassbox"
    assert jobs.store.checkpoint_steps(about.run_id) == demos.checkpoint_steps(name)
    assert len(jobs.store.checkpoint_steps(about.run_id)) >= 2
    assert [r.run_id for r in jobs.list_runs()] == [about.run_id]
    assert jobs.metrics(about.run_id) and jobs.reconcile() == []  # an ended run: nothing to reconcile
    model = jobs.store.load_model(about.run_id)
    assert model.meta.run_id == about.run_id and model.meta.step == about.final_step


def test_a_damaged_or_deleted_demo_is_installed_again(make_jobs):
    jobs = make_jobs()
    run_id = demo_runs.install("digits-cnn", jobs.store)
    (jobs.store.checkpoint_path(run_id, 0) / "model.safetensors").unlink()
    (jobs.store.path(run_id) / "metrics.jsonl").write_text("torn")
    assert not demo_runs.is_installed("digits-cnn", jobs.store)
    demo_runs.install("digits-cnn", jobs.store)
    assert demo_runs.is_installed("digits-cnn", jobs.store)
    assert (jobs.store.path(run_id) / "metrics.jsonl").read_bytes() == \
        (demos.run_folder("digits-cnn") / "metrics.jsonl").read_bytes()
    jobs.delete(run_id)
    assert not jobs.store.exists(run_id)
    demo_runs.install("digits-cnn", jobs.store)
    assert jobs.status(run_id).status is RunState.FINISHED
    assert [p.name for p in jobs.store.runs_dir.iterdir()] == [run_id]  # no hidden copies left behind


def test_installs_racing_leave_one_whole_copy(tmp_path):
    store = RunStore(tmp_path / "race")
    for attempt in range(3):
        start, errors = threading.Barrier(6), []

        def install():
            start.wait()
            try:
                demo_runs.install("digits-cnn", store)
            except Exception as err:  # noqa: BLE001 - any failure is the test's failure
                errors.append(err)

        threads = [threading.Thread(target=install) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert [p.name for p in store.runs_dir.iterdir()] == [demos.info("digits-cnn").run_id]
        assert demo_runs.files_of(store.path(demos.info("digits-cnn").run_id)) == \
            demo_runs.files_of(demos.run_folder("digits-cnn"))
        store.delete(demos.info("digits-cnn").run_id)  # the next round races on an empty store again


def test_in_a_class_every_student_sees_a_demo_and_only_the_teacher_deletes_it(make_jobs):
    jobs = make_jobs()
    run_id = demo_runs.install("digits-cnn", jobs.store)
    run = jobs.status(run_id)
    assert can_see(STUDENT, run.owner, run.shared)
    with pytest.raises(JobError, match="it is Glassbox's run, and only its owner or the teacher can delete it"):
        jobs.delete(run_id, by=STUDENT)
    jobs.delete(run_id, by=TEACHER)
    assert not jobs.store.exists(run_id)
    assert demo_runs.install("digits-cnn", jobs.store) == run_id  # back the next time someone uses it


# ---- in the app -----------------------------------------------------------------------------
def test_run_data_gives_the_demo_from_the_store(home):
    from app_pages import run_data

    model = run_data.demo_model("sentiment-lstm")
    run_id = demos.info("sentiment-lstm").run_id
    assert model.meta.run_id == run_id == run_data.demo_run_id("sentiment-lstm")
    assert (home / "runs" / run_id / "run.json").is_file()
    reference = demos.load("sentiment-lstm")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values()))
    with pytest.raises(ValueError, match="no demo model called"):
        run_data.demo_model("nope")


def test_the_model_page_makes_a_demo_current_and_the_sidebar_names_it_trained(home):
    at = open_page("model")
    assert "Ready-trained models" in texts(at.subheader)
    at.button(key=f"{ready_models.USE_DEMO}_digits-cnn").click()
    run(at)
    model, about = at.session_state[common.CURRENT_MODEL], demos.info("digits-cnn")
    assert model.meta.run_id == about.run_id and model.meta.step == about.final_step
    assert at.session_state[common.CURRENT_RUN] == about.run_id  # the Train page shows its run
    notice = texts(at.success)
    assert len(notice) == 1 and notice[0].startswith("Now using the ready-trained digits-cnn")
    assert f"{about.val_acc:.1%}" in notice[0]
    assert any("trained on digits" in text for text in texts(at.sidebar.markdown))
    assert at.button(key=f"{ready_models.USE_DEMO}_digits-cnn").disabled  # it is the current model
    at.switch_page("app_pages/inspect_cnn.py")  # its checkpoints are on the training-step slider
    run(at)
    slider = at.select_slider(key=f"{inspect_target.STEP}_{about.run_id}")
    assert list(slider.options) == [f"{s:,}" for s in demos.checkpoint_steps("digits-cnn")]
    assert slider.value == about.final_step
    at.switch_page("app_pages/model.py")
    run(at)
    at.button(key=f"{ready_models.USE_DEMO}_digits-cnn-too-fast").click()  # a lesson's one, in the expander
    run(at)
    assert at.session_state[common.CURRENT_MODEL].meta.run_id == demos.info("digits-cnn-too-fast").run_id
    assert "a guess" in texts(at.success)[0]
    at.switch_page("app_pages/train.py")
    run(at)
    assert any("digits-cnn" in text for text in texts(at.subheader))


# ---- the command that retrains them ---------------------------------------------------------
def test_retraining_a_demo_twice_gives_the_same_weights(tmp_path):
    from training import demos as command

    tiny = command.Demo("tiny", "digits-cnn", "digits", description="a test", keep=3,
                        settings={"epochs": 2}, options={"train_size": 64})
    with ThreadPoolExecutor(2) as pool:  # two workers at once: most of the time is their start-up
        trained = list(pool.map(lambda attempt: command.train(tiny, tmp_path / attempt, quiet=True),
                                ("first", "second")))
    shipped = [command.ship(tiny, folder, tmp_path / f"out-{i}") for i, folder in enumerate(trained)]
    for folder in shipped:
        assert sorted(p.name for p in folder.iterdir()) == ["checkpoints", "metrics.jsonl", "run.json"]
    steps = sorted(p.name for p in (shipped[0] / "checkpoints").iterdir())
    assert len(steps) == 3 and steps == sorted(p.name for p in (shipped[1] / "checkpoints").iterdir())
    for step in steps:
        first, second = (f / "checkpoints" / step / "model.safetensors" for f in shipped)
        assert first.read_bytes() == second.read_bytes()
