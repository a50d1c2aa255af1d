"""The run store: readable ids, atomic run.json read and written as a RunRecord (and run.json
files from before it still load), append-only metrics that survive a torn line, checkpoint
folders that appear only when complete, and plain-data optimizer and dataset files."""
from __future__ import annotations

import json
import os
import threading

import pytest
import torch

from models import build_model
from dataclasses import replace

from training.record import RunRecord, RunState
from training.store import METRICS_FILE, CheckpointWriter, RunNotFound, RunStore, default_root, new_run_id
from tests.test_trainer import keyword_sentences, quadrant_images, tiny_cnn


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path)


@pytest.fixture
def run_id(store):
    return store.create("digits-cnn", {"status": "queued", "times": {}, "progress": {}})


def test_run_ids_are_readable_sortable_and_safe(store, monkeypatch, tmp_path):
    run_id = new_run_id("Digits CNN (mine)!")
    assert run_id[:8].isdigit() and run_id[8] == "-" and "-digits-cnn-mine-" in run_id
    first = store.create("a", {"status": "queued"})
    assert store.read(first) == RunRecord(run_id=first, status=RunState.QUEUED)
    assert (store.path(first) / "checkpoints").is_dir()
    assert store.run_ids() == [first]
    for bad in ("../../etc", "x", "20261124-101500-../x"):
        with pytest.raises(RunNotFound):
            store.path(bad)
    with pytest.raises(RunNotFound, match="there is no run"):
        store.read("20000101-000000-nothing-0000")
    monkeypatch.setenv("GLASSBOX_HOME", str(tmp_path / "home"))
    assert default_root() == tmp_path / "home" and RunStore().root == tmp_path / "home"


def test_run_json_is_never_seen_half_written(store, run_id):
    big = replace(store.read(run_id), status=RunState.RUNNING, extra={"padding": "x" * 200_000})
    failures, done = [], threading.Event()

    def reader():
        while not done.is_set():
            try:
                store.read(run_id)
            except ValueError as err:  # a torn JSON document
                failures.append(err)

    thread = threading.Thread(target=reader)
    thread.start()
    for i in range(200):
        store.write(replace(big, extra={**big.extra, "i": i}))
    done.set()
    thread.join()
    assert failures == []
    assert store.read(run_id).extra["i"] == 199


def test_a_failed_write_leaves_the_old_run_json_and_no_temporary_file(store, run_id, monkeypatch):
    before = store.read(run_id)

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        store.update(run_id, status="finished")
    monkeypatch.undo()
    assert store.read(run_id) == before
    assert sorted(p.name for p in store.path(run_id).iterdir()) == ["checkpoints", "run.json"]


# A run.json as the code before RunRecord wrote it (a finished run, once resumed).
OLD_RUN_JSON = {
    "run_id": "20260101-101500-digits-cnn-ab12", "status": "finished", "message": "Finished 320 steps.",
    "model": "digits-cnn", "family": "CNN", "spec": {"name": "digits-cnn", "kind": "cnn"},
    "dataset": {"name": "digits", "source": {"builtin": "digits", "options": {}}, "meta": {"class_names": ["0"]},
                "train_size": 1000, "val_size": 200},
    "hyperparameters": {"optimizer": "adam", "lr": 0.001, "epochs": 5},
    "device": "cpu", "best_val_acc": 0.9, "last_val_acc": 0.875, "resumes": 1,
    "progress": {"step": 320, "epoch": 5.0, "total_steps": 320, "steps_per_epoch": 64, "checkpoint_steps": [0, 320]},
    "times": {"submitted": 1.0, "queued": 2.0, "started": 3.0, "finished": 4.0, "updated": 4.5},
    "job": {"backend": "local", "max_per_device": 1},
    "pid": 4242, "device_detail": "cpu", "amp": "off",
}


def test_a_run_json_written_before_run_record_loads_and_is_written_back_with_the_same_keys(store):
    folder = store.runs_dir / OLD_RUN_JSON["run_id"]
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({**OLD_RUN_JSON, "a_later_key": [1, 2]}, indent=1))
    record = store.read(OLD_RUN_JSON["run_id"])
    assert record.status is RunState.FINISHED and record.status == "finished" and not record.status.active
    assert record.progress.step == 320 and record.times.started == 3.0 and record.resumes == 1
    assert record.dataset["source"]["builtin"] == "digits" and record.pid == 4242
    assert record.extra == {"a_later_key": [1, 2]}  # unknown keys are kept, not dropped
    assert (record.owner, record.owner_name, record.shared) == (None, None, False)  # made before classes: nobody's
    store.write(record)
    # written back with the same keys and values, and the class's keys (issue 13) at their defaults
    assert json.loads((folder / "run.json").read_text()) == {**OLD_RUN_JSON, "a_later_key": [1, 2],
                                                             "owner": None, "owner_name": None, "shared": False}
    # a fresh run's record, as submit made it before RunRecord: no worker keys yet
    fresh = {key: OLD_RUN_JSON[key] for key in ("run_id", "spec", "dataset", "hyperparameters", "job")}
    fresh.update(status="queued", progress={"step": 0, "epoch": 0, "total_steps": 320},
                 times={"submitted": 1.0, "queued": 1.0, "started": None, "finished": None, "updated": 1.0})
    record = RunRecord.from_dict(fresh)
    assert record.status is RunState.QUEUED and record.status.active and record.pid is None
    assert record.to_dict().items() >= {**fresh, "progress": {**fresh["progress"], "steps_per_epoch": None,
                                                              "checkpoint_steps": None}}.items()


@pytest.mark.parametrize("content, words", [
    ([], "JSON object"), ({"status": "finished"}, "no run id"), ({"run_id": "x", "status": "done"}, "no valid status"),
    ({"run_id": "x", "status": "finished", "times": []}, "times"), ({"run_id": "x", "status": "stopping"}, "only"),
    ({"run_id": "x", "status": "finished", "owner": 7}, "owner"), ({"run_id": "x", "status": "finished", "shared": "yes"},
                                                                   "shared"),
])
def test_a_damaged_record_is_a_value_error_in_words(content, words):
    with pytest.raises(ValueError, match=words):
        RunRecord.from_dict(content)


def test_metrics_are_appended_and_read_incrementally(store, run_id):
    writer = store.metrics_writer(run_id)
    writer.write({"type": "train", "step": 1, "loss": 2.0})
    writer.write({"type": "train", "step": 2, "loss": float("nan")})  # NaN is not JSON: stored as null
    records, offset = store.read_metrics(run_id)
    assert records == [{"type": "train", "step": 1, "loss": 2.0}, {"type": "train", "step": 2, "loss": None}]
    writer.write({"type": "val", "step": 2, "val_acc": 0.5})
    more, offset2 = store.read_metrics(run_id, offset)
    assert more == [{"type": "val", "step": 2, "val_acc": 0.5}] and offset2 > offset
    assert store.read_metrics(run_id, offset2) == ([], offset2)
    lines = (store.path(run_id) / METRICS_FILE).read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 2]


def test_a_torn_last_line_is_ignored_and_a_resumed_writer_starts_a_new_line(store, run_id):
    writer = store.metrics_writer(run_id)
    writer.write({"type": "train", "step": 1})
    writer.close()
    with open(store.path(run_id) / METRICS_FILE, "ab") as handle:
        handle.write(b'{"type": "train", "st')  # a worker killed mid-write
    records, offset = store.read_metrics(run_id)
    assert records == [{"type": "train", "step": 1}]
    again = store.metrics_writer(run_id)  # the resumed worker
    again.write({"type": "resume", "step": 1})
    again.write({"type": "train", "step": 2})
    assert store.read_metrics(run_id, offset)[0] == [{"type": "resume", "step": 1}, {"type": "train", "step": 2}]


def test_history_drops_what_a_lost_attempt_recorded_after_the_resume_step(store, run_id):
    writer = store.metrics_writer(run_id)
    for record in ({"type": "train", "step": 5}, {"type": "val", "step": 8}, {"type": "train", "step": 10},
                   {"type": "resume", "step": 8}, {"type": "train", "step": 9}):
        writer.write(record)
    assert [(r["type"], r["step"]) for r in store.metrics(run_id)] == [
        ("train", 5), ("val", 8), ("resume", 8), ("train", 9)]


def test_checkpoints_appear_only_when_complete_and_can_be_redone(store, run_id):
    data = quadrant_images(n_train=32, n_val=8)
    model = build_model(tiny_cnn(data), seed=0)
    folder = store.path(run_id) / "checkpoints"
    (folder / ".step_9.abc").mkdir()  # a checkpoint being written (or abandoned by a killed worker)
    store.save_checkpoint(run_id, 3, model, meta={"step": 3})
    assert store.checkpoint_steps(run_id) == [3]
    assert sorted(p.name for p in (folder / "step_3").iterdir()) == ["meta.json", "model.safetensors", "spec.json"]
    other = build_model(tiny_cnn(data), seed=1)
    store.save_checkpoint(run_id, 3, other, meta={"step": 3})  # redone after a resume
    loaded = store.load_model(run_id, 3)
    assert torch.equal(loaded.state_dict()["fc.0.linear.weight"], other.state_dict()["fc.0.linear.weight"])
    assert loaded.meta.step == 3
    assert sorted(p.name for p in folder.iterdir()) == [".step_9.abc", "step_3"]
    with pytest.raises(RunNotFound, match="no checkpoint at step 4"):
        store.load_model(run_id, 4)


def test_the_fast_checkpoint_writer_writes_exactly_what_save_checkpoint_writes(store, run_id, tmp_path):
    from models.checkpoint import save_checkpoint

    data = quadrant_images(n_train=32, n_val=8)
    writer = CheckpointWriter(store, run_id)
    model = build_model(tiny_cnn(data), seed=0)
    for step in (0, 1, 2):  # the first goes through save_checkpoint itself, the later ones do not
        with torch.no_grad():
            model.fc[0].linear.weight.add_(1.0)  # the weights change between checkpoints
        meta = {**data.meta(), "step": step, "epoch": step / 10}
        writer.save(step, model, meta)
        reference = save_checkpoint(model, tmp_path / f"reference_{step}", meta=meta)
        ours = store.checkpoint_path(run_id, step)
        for name in ("spec.json", "model.safetensors", "meta.json"):
            assert (ours / name).read_bytes() == (reference / name).read_bytes(), name


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_optimizer_state_round_trips_without_pickle(store, run_id, optimizer):
    from training.trainer import Hyperparameters, make_optimizer

    data = quadrant_images(n_train=32, n_val=8)
    model = build_model(tiny_cnn(data), seed=0)
    opt = make_optimizer(model, Hyperparameters(optimizer=optimizer, lr=0.01, weight_decay=0.01))
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(data.x_train), data.y_train).backward()
        opt.step()
    store.save_optimizer_state(run_id, 7, {"optimizer": opt.state_dict(), "scaler": {}})
    step, state = store.load_optimizer_state(run_id)
    assert step == 7
    fresh = make_optimizer(model, Hyperparameters(optimizer=optimizer, lr=0.5))
    fresh.load_state_dict(state["optimizer"])
    original, restored = opt.state_dict(), fresh.state_dict()
    assert restored["param_groups"][0]["lr"] == 0.01
    for index, values in original["state"].items():
        for key, value in values.items():
            assert torch.equal(torch.as_tensor(restored["state"][index][key]), torch.as_tensor(value))


def test_uploaded_data_round_trips_through_the_run_folder(store, run_id):
    for data in (quadrant_images(n_train=16, n_val=4), keyword_sentences(n_train=16, n_val=4)):
        store.save_dataset(run_id, data)
        again = store.load_dataset(run_id)
        for name in ("x_train", "y_train", "x_val", "y_val"):
            assert torch.equal(getattr(again, name), getattr(data, name))
        assert again.meta() == data.meta() and again.source is None


def test_delete_removes_the_folder(store, run_id):
    store.delete(run_id)
    assert store.run_ids() == [] and not store.exists(run_id)
