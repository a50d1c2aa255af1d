"""App tests (Streamlit AppTest) for the Train page: idle, running, stopped, finished, diverged,
the runs list, uploads and refusals. Jobs are real worker processes on a store in tmp_path.

Nothing here depends on how fast the machine is: a test waits for a run to reach a state
(with a generous limit that only a hung worker hits), never for a time to pass.
"""
from __future__ import annotations

import io
import json
import re
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.waiting import until as wait_until
from app_pages import common
from app_pages import people_ui, run_data, train_data, train_run, train_runs_list, train_settings
from models import build_model, presets
from training import jobs, people
from training.datasets import load_dataset
from training.device_queue import queue_place
from training.record import RunState
from training.store import RunStore
from training.trainer import Hyperparameters

APP = str(Path(__file__).resolve().parents[1] / "app.py")
FIRST_RUN_TIMEOUT_S = 60  # the first run imports torch and builds the default model
WAIT_S = 180  # generous: only a hung worker should hit it
CHANCE = {"digits": 0.1, "sentiment": 0.5}


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """Every test has its own empty run store; workers use one thread each (the machine may be
    small and busy), and any worker still running at the end is killed."""
    monkeypatch.setenv("GLASSBOX_HOME", str(tmp_path))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield tmp_path
    manager = jobs.default_jobs()
    for run_id in manager.store.run_ids():
        if (run := run_data.safe_status(run_id)) is not None and run.active:
            manager.backend.kill(manager.store.path(run_id))


def open_train_page(preset: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=FIRST_RUN_TIMEOUT_S).run()
    if preset is not None:
        at.session_state[common.CURRENT_MODEL] = build_model(presets.get(preset), seed=common.SEED)
    at.switch_page("app_pages/train.py")
    return run(at)


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def progress_text(at: AppTest) -> str:
    (bar,) = at.get("progress")
    return bar.proto.text


def plotly_figures(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def curve_figures(at: AppTest) -> list[dict]:
    """The loss/accuracy figures (those with a 'Loss' subplot title), the live one first."""
    return [f for f in plotly_figures(at)
            if any(a.get("text") == "Loss" for a in f.get("layout", {}).get("annotations", []))]


def curves(at: AppTest) -> dict:
    found = curve_figures(at)
    assert found, "no curves figure on the page"
    return found[0]


def runs_table(at: AppTest):
    (table,) = [frame.value for frame in at.dataframe if "Id" in frame.value.columns]
    return table


def until(condition, timeout_s=WAIT_S, poll_s=0.05):
    return wait_until(condition, timeout_s, poll_s)


def set_hyperparameter(at: AppTest, attr: str, value) -> None:
    widget = at.selectbox(key=train_settings.hp_key(attr)) if attr in ("optimizer", "schedule", "device") \
        else at.number_input(key=train_settings.hp_key(attr))
    widget.set_value(value)


def click_train(at: AppTest) -> str:
    at.button(key=train_settings.TRAIN).click()
    run(at)
    run_id = at.session_state[common.CURRENT_RUN]
    assert run_id is not None, texts(at.error)
    return run_id


def long_run(epochs: int = 1000) -> str:
    """A digits run that trains far longer than any test waits, submitted straight to the jobs API."""
    return jobs.submit(presets.get("digits-cnn"), load_dataset("digits"), Hyperparameters(epochs=epochs))


def training_has_begun(run_id: str) -> bool:
    return any(r["type"] == "train" for r in jobs.read_metrics(run_id)[0])


# ---- idle -----------------------------------------------------------------------------------
def test_idle_page_offers_data_and_defaults_that_fit_the_current_model():
    at = open_train_page()
    assert texts(at.title) == ["Train"]
    assert at.selectbox(key=train_data.DATASET).value == "digits"  # the data digits-cnn is made for
    assert at.selectbox(key=train_settings.hp_key("optimizer")).value == "adam"
    assert at.number_input(key=train_settings.hp_key("lr")).value == pytest.approx(2e-3)  # digits-cnn's recipe
    assert at.number_input(key=train_settings.hp_key("epochs")).value == 15
    assert any(c.startswith("Suggested for digits-cnn: Adam") for c in texts(at.caption))
    assert not at.button(key=train_settings.TRAIN).disabled
    assert not at.error and not at.get("progress")
    assert any("No runs yet" in c for c in texts(at.caption))
    assert any("1,438 examples to train on" in c for c in texts(at.caption))


@pytest.mark.parametrize("preset, dataset, epochs, suggested", [
    ("sentiment-lstm", "sentiment", 8, "Suggested for an LSTM:"),  # no recipe of its own: its family's
    ("sentiment-transformer", "sentiment", 20, "Suggested for sentiment-transformer:"),
    ("shapes-vit", "shapes", 8, "Suggested for shapes-vit:")])
def test_defaults_follow_the_current_model(preset, dataset, epochs, suggested):
    at = open_train_page(preset)
    assert at.selectbox(key=train_data.DATASET).value == dataset
    assert at.number_input(key=train_settings.hp_key("epochs")).value == epochs
    assert any(c.startswith(suggested) for c in texts(at.caption)), texts(at.caption)


def test_a_cnn_cannot_train_on_sentences_and_the_page_says_what_to_do():
    at = open_train_page("digits-cnn")
    at.selectbox(key=train_data.DATASET).set_value("sentiment")
    run(at)
    assert any("cannot train on sentences" in e for e in texts(at.error))
    assert any("sentiment-lstm" in i for i in texts(at.info))  # a preset that reads sentences
    assert at.button(key=train_settings.TRAIN).disabled


def test_invalid_settings_are_explained_and_block_training():
    at = open_train_page()
    set_hyperparameter(at, "lr", 0.0)
    run(at)
    assert any(e.startswith("The learning rate must be a number above 0") for e in texts(at.error))
    assert at.button(key=train_settings.TRAIN).disabled


def test_settings_are_kept_while_away_and_reset_for_another_model():
    at = open_train_page()
    set_hyperparameter(at, "epochs", 3)
    run(at)
    at.switch_page("app_pages/home.py")
    run(at)
    at.switch_page("app_pages/train.py")
    run(at)
    assert at.number_input(key=train_settings.hp_key("epochs")).value == 3
    at.button(key=train_settings.SUGGESTED).click()
    run(at)
    assert at.number_input(key=train_settings.hp_key("epochs")).value == 15
    assert not any(b.key == train_settings.SUGGESTED for b in at.button)  # nothing left to reset
    at.session_state[common.CURRENT_MODEL] = build_model(presets.get("sentiment-gru"))
    run(at)
    assert at.number_input(key=train_settings.hp_key("epochs")).value == 8
    assert at.selectbox(key=train_data.DATASET).value == "sentiment"


# ---- uploads ------------------------------------------------------------------------------
def _csv(rows: list[tuple[str, str]]) -> bytes:
    return ("text,label\n" + "".join(f"{text},{label}\n" for text, label in rows)).encode()


def _zip(folders: dict[str, int]) -> bytes:
    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(buffer, "w") as archive:
        for folder, count in folders.items():
            for i in range(count):
                picture = io.BytesIO()
                Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(picture, "PNG")
                archive.writestr(f"{folder}/{i}.png", picture.getvalue())
        archive.writestr("notes.txt", "not a picture")
    return buffer.getvalue()


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.selectbox(key=train_data.DATASET).set_value(train_data.UPLOAD_CHOICE)
    run(at)
    at.file_uploader(key=train_data.DATA_UPLOAD).upload(name, data)
    return run(at)


def test_an_uploaded_csv_trains_a_sentence_model():
    rows = [(f"good film number {i}", "pos") for i in range(12)] + [(f"bad film number {i}", "neg")
                                                                      for i in range(12)]
    at = upload(open_train_page("sentiment-lstm"), "reviews.csv", _csv(rows))
    assert not at.error
    assert any("24 sentences in 2 classes from reviews.csv" in c for c in texts(at.caption))
    assert not at.button(key=train_settings.TRAIN).disabled


def test_an_uploaded_zip_of_pictures_shows_its_warnings():
    at = upload(open_train_page("digits-cnn"), "colours.zip", _zip({"red": 6, "blue": 6}))
    assert not at.error
    assert any("notes.txt" in w for w in texts(at.warning))  # the skipped file, said in words
    assert any("its input becomes 3×20×20" in c for c in texts(at.caption))


@pytest.mark.parametrize("name, data, words", [
    ("one.zip", _zip({"cats": 8}), "only one class"),
    ("few.zip", _zip({"cats": 8, "dogs": 2}), "at least 5"),
    ("broken.zip", b"this is not a zip", "not a valid .zip"),
    ("empty.csv", b"", "is empty"),
])
def test_refused_uploads_are_explained(name, data, words):
    at = upload(open_train_page("digits-cnn"), name, data)
    assert any(words in e for e in texts(at.error)), texts(at.error)
    assert at.button(key=train_settings.TRAIN).disabled


# ---- running, stopped, resumed ------------------------------------------------------------
def test_a_running_job_shows_progress_curves_and_the_device_and_can_be_stopped_and_resumed():
    run_id = long_run()
    until(lambda: training_has_begun(run_id))
    at = open_train_page()  # a new session attaches to the run that is training
    assert at.session_state[common.CURRENT_RUN] == run_id
    device = jobs.status(run_id).device  # "cpu", or "cuda (NVIDIA …)" on a machine with a GPU
    assert f"Running on {device}." in texts(at.info)
    text = progress_text(at)
    pattern = r"epoch \d+/1,000 · step [\d,]+/22,000 · [\d,]+ samples/s · about .+ left · "
    assert re.fullmatch(pattern + re.escape(device), text), text
    assert curves(at)["data"][0]["x"], "the training curve has points"
    assert at.button(key=train_run.STOP)
    assert any(run_id in c for c in texts(at.caption))

    at.button(key=train_run.STOP).click()
    run(at)
    until(lambda: not jobs.status(run_id).active)
    run(at)
    assert jobs.status(run_id).status == "stopped"
    assert any(w.startswith("Stopped at step") and "Resume" in w for w in texts(at.warning))
    at.button(key=train_run.RESUME).click()
    run(at)
    assert jobs.status(run_id).active
    assert not at.get("button") or not any(b.key == train_run.RESUME for b in at.button)


def test_a_new_session_attaches_to_the_newest_active_run(monkeypatch):
    monkeypatch.setenv("GLASSBOX_JOBS_PER_DEVICE", "2")  # an older run trains while a newer one ends
    active = long_run()
    time.sleep(1.1)  # run ids sort by the second they were made in
    finished = jobs.submit(presets.get("digits-cnn"), load_dataset("digits"), Hyperparameters(epochs=1))
    jobs.wait(finished, timeout_s=WAIT_S)
    at = open_train_page()
    assert at.session_state[common.CURRENT_RUN] == active


# ---- finished --------------------------------------------------------------------------------
def test_a_finished_run_shows_curves_confusion_mistakes_and_becomes_the_current_model():
    at = open_train_page()
    set_hyperparameter(at, "epochs", 2)
    run_id = click_train(at)
    assert at.session_state[train_settings.SETUP] is False  # the settings folded away: the run shows
    jobs.wait(run_id, timeout_s=WAIT_S)
    run(at)
    model = at.session_state[common.CURRENT_MODEL]
    assert model.meta.run_id == run_id and model.meta.step == jobs.status(run_id).total_steps
    (adopted,) = [s for s in texts(at.success)
                  if s.startswith("Training finished. The current model is now digits-cnn")]
    assert adopted.count("trained on digits") == 1, adopted
    assert any(s.startswith("Finished:") for s in texts(at.success))
    assert progress_text(at).startswith("epoch 2/2 · step 88/88 · took ")  # batches of 32
    assert at.get("progress")[0].proto.value == 100
    figures = plotly_figures(at)
    assert any(f["layout"].get("xaxis", {}).get("title", {}).get("text") == "predicted" for f in figures), \
        "a confusion matrix"
    val = [trace for trace in curves(at)["data"] if trace["name"] == "validation"][0]
    assert list(val["x"]) == [44, 88]  # one validation point per epoch
    assert "Mistakes" in " ".join(texts(at.markdown))
    assert texts(at.sidebar.markdown) == [common.model_summary(model)]
    # Only once: a later visit does not take the current model back after the user changed it.
    at.session_state[common.CURRENT_MODEL] = build_model(presets.get("shapes-cnn"))
    run(at)
    assert at.session_state[common.CURRENT_MODEL].spec.name == "shapes-cnn"


@pytest.mark.parametrize("preset", ["digits-cnn", "sentiment-lstm"])
def test_train_with_the_defaults_learns(preset):
    at = open_train_page(preset)
    run_id = click_train(at)
    finished = jobs.wait(run_id, timeout_s=WAIT_S)
    assert finished.status == "finished", finished.message
    dataset = at.selectbox(key=train_data.DATASET).value
    assert finished.best_val_acc > CHANCE[dataset] + 0.3
    run(at)
    assert at.session_state[common.CURRENT_MODEL].meta.run_id == run_id
    live = " ".join(texts(at.caption))  # the live view of the final checkpoint
    expected = "The first layer's filters" if dataset == "digits" else "How the prediction changes word by word"
    assert expected in live


def test_a_sentence_model_lists_its_mistakes_as_sentences():
    at = open_train_page("sentiment-rnn")
    set_hyperparameter(at, "epochs", 1)  # one epoch: far from perfect, so there are mistakes
    run(at)
    run_id = click_train(at)
    assert jobs.wait(run_id, timeout_s=WAIT_S).status == "finished"
    run(at)
    (mistakes,) = [frame.value for frame in at.dataframe if "Sentence" in frame.value.columns]
    assert list(mistakes.columns) == ["Sentence", "Model said", "True", "Sure"] and len(mistakes)
    assert (mistakes["Model said"] != mistakes["True"]).all()
    assert set(mistakes["True"]) <= {"negative", "positive"}
    assert list(mistakes["Sure"]) == sorted(mistakes["Sure"], reverse=True)  # the most confident first
    # At the page's full width, not in half of it, where its columns were cut off on the right.
    in_columns = [frame for column in at.columns for frame in column.get("dataframe")
                  if "Sentence" in frame.value.columns]
    assert not in_columns


# ---- diverged -------------------------------------------------------------------------------
def test_a_huge_learning_rate_diverges_and_the_page_gives_the_advice():
    at = open_train_page()
    set_hyperparameter(at, "optimizer", "sgd")
    set_hyperparameter(at, "lr", 1e6)
    run(at)
    run_id = click_train(at)
    ended = jobs.wait(run_id, timeout_s=WAIT_S)
    assert ended.status == "diverged"
    run(at)
    (message,) = [e for e in texts(at.error) if e.startswith("Diverged.")]
    assert "try a lower learning rate" in message
    assert not any(b.key == train_run.RESUME for b in at.button)  # resuming cannot help: retrain lower
    assert at.session_state[common.CURRENT_MODEL].spec.name == "digits-cnn"
    assert at.session_state[common.CURRENT_MODEL].meta.run_id is None  # a diverged model is not adopted


# ---- one state, read once, said the same way --------------------------------------------------
class IdleBackend:
    """Starts no worker and reports every worker alive: the test writes the run's state itself."""
    name = "idle"

    def check_device(self, device): pass
    def warm_up(self): pass
    def launch(self, run_dir, resume): pass
    def request_stop(self, run_dir): pass
    def kill(self, run_dir): pass
    def worker_gone(self, run_dir): return None
    def collect_ended(self): pass


def test_the_runs_table_says_the_state_the_live_panel_says(home, monkeypatch):
    manager = jobs.Jobs(RunStore(home), backend=IdleBackend())
    monkeypatch.setattr(jobs, "_default", manager)
    run_id = manager.submit(presets.get("digits-cnn"), load_dataset("digits"), Hyperparameters(epochs=2))  # 44 steps
    at = open_train_page()
    (panel,) = [text for text in texts(at.info) if text.startswith(("Queued", "Starting"))]
    assert panel.startswith("Starting:")  # queued, with no run ahead of it: its worker is starting
    assert list(runs_table(at)["Status"]) == ["starting"]

    # Running: run.json (rewritten once a second by the worker) is behind the metrics records.
    record = manager.store.read(run_id)
    manager.store.write(replace(record, status=RunState.RUNNING, progress=replace(record.progress, step=11)))
    writer = manager.store.metrics_writer(run_id)
    for step in (11, 22, 33):
        writer.write({"type": "train", "step": step, "epoch": step / 22, "loss": 1.0, "acc": 0.5,
                      "samples_per_s": 1000.0, "lr": 1e-3, "time": time.time()})
    writer.close()
    run(at)
    assert at.get("progress")[0].proto.value == 75  # the panel's bar: step 33 of 44
    assert list(runs_table(at)["Status"]) == ["running 75%"]


# ---- the runs list ----------------------------------------------------------------------------
def test_open_compare_and_delete_runs():
    first = jobs.submit(presets.get("digits-cnn"), load_dataset("digits"), Hyperparameters(epochs=1))
    jobs.wait(first, timeout_s=WAIT_S)
    time.sleep(1.1)
    second = jobs.submit(presets.get("digits-cnn"), load_dataset("digits"), Hyperparameters(epochs=1, seed=1))
    jobs.wait(second, timeout_s=WAIT_S)
    at = open_train_page()
    table = runs_table(at)
    assert list(table["Id"]) == [second, first] and list(table["Status"]) == ["finished", "finished"]
    assert table["Best validation accuracy"].notna().all()

    at.multiselect(key=train_runs_list.COMPARE).set_value([first, second])
    run(at)
    overlaid = [f for f in curve_figures(at) if len(f["data"]) == 8]
    assert overlaid and overlaid[0]["data"][4]["name"].endswith(": train")  # two runs, two legends

    at.selectbox(key=train_runs_list.RUN_PICK).set_value(first)
    run(at)
    at.button(key=train_runs_list.OPEN_RUN).click()
    run(at)
    assert at.session_state[common.CURRENT_RUN] == first
    assert at.session_state[common.CURRENT_MODEL].meta.run_id == first
    (opened,) = [s for s in texts(at.success) if "is now digits-cnn" in s]
    assert opened.count("trained on digits") == 1, opened  # not "trained on digits, trained on digits"

    assert at.button(key=train_runs_list.DELETE_RUN).disabled  # not before the confirmation
    at.checkbox(key=f"{train_runs_list.CONFIRM_DELETE}_{first}").check()
    run(at)
    at.button(key=train_runs_list.DELETE_RUN).click()
    run(at)
    assert not jobs.default_jobs().store.exists(first)
    assert list(runs_table(at)["Id"]) == [second]
    assert at.session_state[common.CURRENT_RUN] == second  # the page shows the newest run left


def test_damaged_run_folders_are_skipped_not_fatal(home):
    finished = jobs.submit(presets.get("digits-cnn"), load_dataset("digits"), Hyperparameters(epochs=1))
    jobs.wait(finished, timeout_s=WAIT_S)
    runs = home / "runs"
    for run_id, content in [("20990101-000000-list-aaaa", "[]"), ("20990101-000001-torn-bbbb", '{"status": "runn'),
                            ("20990101-000002-bare-cccc", '{"status": "running"}'),
                            ("20990101-000003-empty-dddd", "")]:
        (runs / run_id).mkdir()
        (runs / run_id / "run.json").write_text(content)
    (runs / "not-a-run").mkdir()
    at = open_train_page()
    assert at.session_state[common.CURRENT_RUN] == finished
    assert list(runs_table(at)["Id"]) == [finished]


# ---- a class: one run at a time, the line, cancel ------------------------------------------------
CLASS_PASSWORD = "fair turns 3"


def student(monkeypatch, name: str) -> AppTest:
    """A student in a class (a teacher password is set) who gave their name, on the Train page."""
    monkeypatch.setenv(people.PASSWORD_VARIABLE, CLASS_PASSWORD)
    at = run(AppTest.from_file(APP, default_timeout=FIRST_RUN_TIMEOUT_S))
    at.text_input(key=people_ui.NAME).input(name)
    (start,) = [b for b in at.button if b.label == "Start"]
    start.click()
    run(at)
    assert at.session_state[common.PERSON].name == name
    at.switch_page("app_pages/train.py")
    return run(at)


def test_a_second_train_click_says_one_run_at_a_time_and_offers_to_stop_the_first(monkeypatch):
    at = student(monkeypatch, "Ada")
    me = at.session_state[common.PERSON]
    assert ("Everyone in the class trains one run at a time and keeps their 20 latest runs: starting another "
            "removes your oldest finished one (a run the teacher shared is always kept).") in texts(at.caption)
    first = click_train(at)
    assert jobs.status(first).owner == me.person_id and jobs.status(first).active
    at.button(key=train_settings.TRAIN).click()
    run(at)
    assert at.session_state[common.CURRENT_RUN] == first  # nothing new started
    assert [run_id for run_id in jobs.default_jobs().store.run_ids()] == [first]
    assert texts(at.warning) == [common.as_markdown_text(
        "You already have a run training or waiting (digits-cnn on digits): one run at a time per person, so that "
        "everyone in the class gets a turn. Stop it to start this one.")]
    stop = at.button(key=f"{train_run.STOP_BUSY}_{first}")
    assert stop.label == f"Stop {train_run.run_label(jobs.status(first))}"
    stop.click()
    run(at)
    until(lambda: not jobs.status(first).active)
    assert jobs.status(first).status == "stopped"
    second = click_train(at)  # now it starts
    assert second != first and jobs.status(second).owner == me.person_id
    assert not [w for w in texts(at.warning) if "You already have" in w]  # the refusal was shown once


def test_a_queued_run_shows_its_place_in_line_and_wait_and_can_be_cancelled(monkeypatch):
    blocker = long_run()  # nobody's run holds the device
    until(lambda: jobs.status(blocker).step > 0)  # its pace is known: the wait can be estimated
    at = student(monkeypatch, "Ben")
    mine = click_train(at)
    until(lambda: queue_place(jobs.default_jobs().store.root, mine) is not None)  # its worker is in line
    device = jobs.status(mine).device
    assert at.button(key=train_run.CANCEL) and not [b for b in at.button if b.key == train_run.STOP]

    def place() -> list[str]:
        return [c for c in texts(run(at).caption) if c.startswith("Number ")]

    until(lambda: place())
    (line,) = place()
    assert re.fullmatch(rf"Number 1 in line for the {re.escape(device)} \(runs take turns, one person after "
                        r"another\): nothing waits before it; it should start in about \d[\w ]*\. Cancel takes it "
                        r"out of the line\.", line), line
    at.button(key=train_run.CANCEL).click()
    run(at)
    assert not jobs.default_jobs().store.exists(mine)
    assert queue_place(jobs.default_jobs().store.root, mine) is None
    assert any("was cancelled before it began, and removed" in s for s in texts(at.success)), texts(at.success)
    assert jobs.status(blocker).status == "running"  # the run training was not touched


# ---- runs on a Ray cluster ---------------------------------------------------------------------
def test_with_ray_the_page_offers_the_clusters_devices_and_its_runs_train_there(ray_address, monkeypatch):
    """The session's Ray cluster has one machine with 2 CPUs and no GPU (tests/ray_cluster.py)."""
    monkeypatch.setenv("GLASSBOX_BACKEND", "ray")
    from training.backends.ray_actor import node_name

    at = open_train_page("digits-cnn")
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key=train_settings.hp_key("device")).options == ["automatic (a GPU if there is one)", "CPU"]
    assert at.checkbox(key=train_settings.hp_key("amp")).disabled  # no GPU anywhere in the cluster
    said = [c for c in texts(at.caption) if c.startswith("Runs train on a Ray cluster")]
    assert len(said) == 1 and f"of 1 machine ({common.as_markdown_text(node_name())}: 0 GPUs, 2 CPUs)" in said[0], said
    assert re.search(r"Free now: 0 of 0 GPUs, [0-2] of 2 CPUs\.$", said[0]), said

    # Train from the page: the run trains on the cluster and the page shows it like any other.
    set_hyperparameter(at, "epochs", 2)
    run_id = click_train(at)
    final = jobs.wait(run_id, timeout_s=WAIT_S)
    assert final.status == "finished" and final.step == final.total_steps == 88, final.message  # 2 epochs of 44 steps
    assert jobs.default_jobs().store.read(run_id).job["backend"] == "ray"
    run(at)
    assert not at.exception, [e.value for e in at.exception]
    assert any(run_id in c for c in texts(at.caption)) and curves(at)["data"][0]["x"]
