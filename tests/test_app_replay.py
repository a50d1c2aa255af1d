"""Replay and slow motion on the pages (Streamlit AppTest): the step slider's Play steps through
the checkpoints, stops at the last and pauses; its labels are the run's real steps, placed
where the slider puts them; the Train page replays an ended run (a cursor on the curves, the
model view at that step) and says when a run is paced; the Pace setting reaches the run.

Play's fragment reruns on a timer in a browser; AppTest runs it inline on every run, so the
tests move a pretend clock (``replay.clock``) by one interval between runs: nothing waits, and
nothing depends on how fast the machine is.
"""
from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest

from app_pages import common, replay, train_live, train_settings
from app_pages import inspect_target
from models import build_model, presets
from tests.app_helpers import figure, open_page, run, texts, values
from tests.test_app_train import IdleBackend
from training import jobs
from training.datasets import load_dataset
from training.store import RunStore

STEPS = (0, 1, 2, 4, 8)  # a run's log-spaced checkpoints, in miniature


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture
def pretend_clock(monkeypatch):
    """replay's clock, moved by the test: ``tick()`` lets one Play interval pass."""
    now = [1000.0]
    monkeypatch.setattr(replay, "clock", lambda: now[0])

    class Clock:
        @staticmethod
        def tick(share: float = 1.0):
            now[0] += replay.PLAY_EVERY_S * share

    return Clock


def finished_run(home, digits, pace_s: float = 0) -> tuple[str, dict]:
    """A finished digits-cnn run with a checkpoint (other weights) at each of STEPS, and metrics."""
    store = RunStore(home)
    run_id = store.create("digits-cnn", {
        "status": "finished", "model": "digits-cnn", "family": "CNN",
        "dataset": {"name": "digits", "source": digits.source, "meta": digits.meta()},
        "hyperparameters": {"epochs": 2, "batch_size": 32, "pace_s": pace_s},
        "progress": {"step": STEPS[-1], "total_steps": STEPS[-1], "steps_per_epoch": 4},
        "times": {"submitted": time.time() - 60, "started": time.time() - 50, "finished": time.time() - 10}})
    models = {step: build_model(presets.get("digits-cnn"), seed=10 + step) for step in STEPS}
    for step, model in models.items():
        store.save_checkpoint(run_id, step, model, meta={**digits.meta(), "run_id": run_id, "step": step})
    writer = store.metrics_writer(run_id)
    for step in STEPS[1:]:
        writer.write({"type": "train", "step": step, "epoch": step / 4, "loss": 2.0 / step, "acc": 0.1 * step,
                      "samples_per_s": 100.0, "lr": 1e-3, "time": time.time()})
    writer.close()
    return run_id, models


def first_filter(model) -> np.ndarray:
    return model.conv[0].conv.weight[0, 0].detach().numpy()


def ticks(at, key: str) -> list[tuple[float, str]]:
    """The labels drawn under the slider ``key``: (left, in % of its width; text)."""
    marks = [m.value for m in at.markdown if 'class="gb-ticks"' in m.value]
    assert marks, "no tick labels"
    return [(float(left), text) for left, text in re.findall(r'left:([\d.]+)%">([^<]*)<', marks[0])]


# ---- the Inspect pages' slider ----------------------------------------------------------------
def test_play_steps_through_the_checkpoints_and_stops_at_the_last(home, digits, pretend_clock):
    run_id, models = finished_run(home, digits)
    at = open_page("inspect_cnn", RunStore(home).load_model(run_id, STEPS[-1]))
    key = f"{inspect_target.STEP}_{run_id}"
    assert at.select_slider(key=key).value == STEPS[-1]
    assert at.button(key=replay.play_key(key)).label == "Play"
    at.button(key=replay.play_key(key)).click()
    run(at)  # Play at the last checkpoint starts again from the first
    assert at.select_slider(key=key).value == 0 and at.button(key=replay.play_key(key)).label == "Pause"
    run(at)  # no time has passed: no step either
    assert at.select_slider(key=key).value == 0
    shown = [0]
    for _ in range(len(STEPS) + 2):
        pretend_clock.tick()
        run(at)
        shown.append(at.select_slider(key=key).value)
        # every view follows: the page's filters are the checkpoint's
        np.testing.assert_allclose(values(figure(at, "conv.0_filters")["data"][0]["z"]),
                                   first_filter(models[shown[-1]]), rtol=1e-6)
    assert shown == [0, 1, 2, 4, 8, 8, 8, 8]  # one checkpoint per interval, then it stays at the last
    assert at.session_state[common.REPLAY] is None
    assert at.button(key=replay.play_key(key)).label == "Play"
    assert at.session_state[common.INSPECT_STEPS][run_id] == 8


def test_pause_stops_the_replay_where_it_is(home, digits, pretend_clock):
    run_id, _ = finished_run(home, digits)
    at = open_page("inspect_cnn", RunStore(home).load_model(run_id, STEPS[-1]))
    key = f"{inspect_target.STEP}_{run_id}"
    at.select_slider(key=key).set_value(1)
    run(at)
    at.button(key=replay.play_key(key)).click()
    run(at)
    pretend_clock.tick()
    run(at)
    assert at.select_slider(key=key).value == 2
    at.button(key=replay.play_key(key)).click()  # Pause
    run(at)
    assert at.session_state[common.REPLAY] is None and at.button(key=replay.play_key(key)).label == "Play"
    for _ in range(3):
        pretend_clock.tick()
        run(at)
    assert at.select_slider(key=key).value == 2
    at.button(key=replay.play_key(key)).click()  # Play again: on from where it paused
    run(at)
    pretend_clock.tick()
    run(at)
    assert at.select_slider(key=key).value == 4


def test_a_tick_that_comes_early_does_not_skip_ahead(home, digits, pretend_clock):
    run_id, _ = finished_run(home, digits)
    at = open_page("inspect_cnn", RunStore(home).load_model(run_id, STEPS[-1]))
    key = f"{inspect_target.STEP}_{run_id}"
    at.select_slider(key=key).set_value(0)
    run(at)
    at.button(key=replay.play_key(key)).click()
    run(at)
    pretend_clock.tick(replay.DUE_SHARE / 2)  # e.g. the page rerun for another reason
    run(at)
    assert at.select_slider(key=key).value == 0
    pretend_clock.tick(replay.DUE_SHARE)
    run(at)
    assert at.select_slider(key=key).value == 1


def test_the_tick_labels_are_the_runs_steps_where_the_slider_puts_them(home, digits):
    run_id, _ = finished_run(home, digits)
    at = open_page("inspect_cnn", RunStore(home).load_model(run_id, STEPS[-1]))
    key = f"{inspect_target.STEP}_{run_id}"
    assert list(at.select_slider(key=key).options) == [str(s) for s in STEPS]
    marks = ticks(at, key)
    assert [text for _, text in marks] == [str(s) for s in STEPS]
    # evenly, whatever the values: the slider places its options so (0, 1, 2, 4, 8 at 0, 25, 50, 75, 100 %)
    assert [left for left, _ in marks] == pytest.approx([100 * i / (len(STEPS) - 1) for i in range(len(STEPS))])


def test_tick_labels_read_as_numbers_with_thousands_separators():
    steps = [0, 1, 3, 120, 1_500, 10_560]
    assert [text for _, text in replay.tick_labels(steps)] == ["0", "1", "3", "120", "1,500", "10,560"]
    assert [where for where, _ in replay.tick_labels(steps)] == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert replay.next_step(steps, 3) == 120 and replay.next_step(steps, 10_560) is None
    assert replay.next_step(steps, 7) is None  # not a checkpoint (any more): nothing to step to


# ---- the Train page ---------------------------------------------------------------------------
def test_the_train_page_replays_an_ended_run_with_a_cursor_and_the_model_at_that_step(home, digits, pretend_clock):
    run_id, models = finished_run(home, digits)
    at = open_page("train")
    key = f"{train_live.REPLAY_STEP}_{run_id}"
    assert at.select_slider(key=key).value == STEPS[-1]
    at.select_slider(key=key).set_value(2)
    run(at)
    live = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    (curves,) = [f for f in live if any(a.get("text") == "Loss" for a in f["layout"].get("annotations", []))]
    assert {(s["xref"], s["x0"], s["x1"]) for s in curves["layout"]["shapes"]} == {("x", 2, 2), ("x2", 2, 2)}
    assert any("snapshot at step 2 of 8" in text for text in texts(at.markdown))
    shown_filters = [values(t["z"]) for f in live for t in f["data"][:1] if t.get("type") == "heatmap"
                     and np.shape(values(t["z"])) == first_filter(models[2]).shape]
    assert any(np.allclose(z, first_filter(models[2]), rtol=1e-6) for z in shown_filters)
    assert not any(np.allclose(z, first_filter(models[8]), rtol=1e-6) for z in shown_filters)
    at.button(key=replay.play_key(key)).click()
    run(at)
    pretend_clock.tick()
    run(at)
    assert at.select_slider(key=key).value == 4
    assert any("snapshot at step 4 of 8" in text for text in texts(at.markdown))
    assert [text for _, text in ticks(at, key)] == [str(s) for s in STEPS]


def test_a_paced_run_says_so_and_an_unpaced_one_does_not(home, digits):
    finished_run(home, digits, pace_s=30)
    at = open_page("train")
    (note,) = [c for c in texts(at.caption) if "Paced to about" in c]
    assert "Paced to about 30 s for the class to watch: it waits between steps; it learns exactly what it would " \
           "unpaced." in note


def test_an_unpaced_run_says_nothing_of_pace(home, digits):
    finished_run(home, digits, pace_s=0)
    at = open_page("train")
    assert not [c for c in texts(at.caption) if "Paced" in c]


def test_the_pace_setting_is_offered_off_and_reaches_the_hyperparameters():
    at = open_page("train")
    pace = at.selectbox(key=train_settings.hp_key("pace_s"))
    assert pace.value == 0  # off unless chosen
    assert list(pace.options) == ["As fast as it can", "About 30 s", "About 60 s", "About 2 minutes"]
    pace.set_value(30)
    run(at)
    assert at.session_state[common.TRAIN_SETTINGS]["hyperparameters"]["pace_s"] == 30
    assert any("Paced to about 30 s for the class to watch" in c for c in texts(at.caption))
    assert not [b for b in at.button if b.key == train_settings.SUGGESTED]  # a pace is not a learning setting
    at.number_input(key=train_settings.hp_key("epochs")).set_value(3)
    run(at)
    at.button(key=train_settings.SUGGESTED).click()
    run(at)
    assert at.number_input(key=train_settings.hp_key("epochs")).value == 15  # the suggestion, but the pace stays
    assert at.selectbox(key=train_settings.hp_key("pace_s")).value == 30


def test_train_with_a_pace_starts_a_paced_run(home, monkeypatch):
    manager = jobs.Jobs(RunStore(home), backend=IdleBackend())  # the run is recorded, nothing trains
    monkeypatch.setattr(jobs, "_default", manager)
    at = open_page("train")
    at.selectbox(key=train_settings.hp_key("pace_s")).set_value(60)
    run(at)
    at.button(key=train_settings.TRAIN).click()
    run(at)
    run_id = at.session_state[common.CURRENT_RUN]
    assert run_id is not None, texts(at.error)
    assert manager.store.read(run_id).hyperparameters["pace_s"] == 60
    assert any("Paced to about 1 min for the class to watch" in c for c in texts(at.caption))
