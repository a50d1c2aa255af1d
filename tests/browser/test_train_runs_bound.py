"""In Chromium, two tabs on the Train page: a run's buttons act on the run they were drawn for.

Tab A deletes the run both tabs show; tab B, not reloaded, clicks Resume (or "Use this model")
on it: nothing else starts or becomes current, and tab B says the run no longer exists. Tab A
stops showing the deleted run at once.

The runs are made straight through the jobs API on the server's run store (tiny settings).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from models import presets
from tests.browser.helpers import assert_no_exception, open_app, wait_for_app
from tests.waiting import until
from training.datasets import load_dataset
from training.jobs import Jobs
from training.store import RunStore
from training.trainer import Hyperparameters

TRAIN_PAGE = "train"
WAIT_S = 180  # generous: only a hung worker reaches it


@pytest.fixture
def server_jobs(app_server, tmp_path_factory):
    """The jobs API on the run store the app server uses (its GLASSBOX_HOME, made by app_server)."""
    (home,) = sorted(tmp_path_factory.getbasetemp().glob("glassbox_home[0-9]*"))
    manager = Jobs(RunStore(home))
    yield manager
    for run_id in manager.store.run_ids():  # leave no worker behind, and no run for other tests
        try:
            if manager.status(run_id).active:
                manager.stop(run_id, wait_s=5)
            manager.delete(run_id)
        except Exception:  # noqa: BLE001 - best effort clean-up
            pass


def _stopped_run(manager: Jobs, seed: int) -> str:
    """A digits run stopped early, once it has saved a checkpoint (so it can resume, or be used)."""
    run_id = manager.submit(presets.get("digits-cnn"), load_dataset("digits"), Hyperparameters(epochs=500, seed=seed))
    until(lambda: manager.store.checkpoint_steps(run_id), WAIT_S, 0.1)
    manager.stop(run_id, wait_s=30)
    until(lambda: not manager.status(run_id).active, WAIT_S, 0.1)
    return run_id


def _screenshot(page, name: str) -> None:
    """Kept when GLASSBOX_SCREENSHOTS names a folder (as in test_train_page)."""
    folder = os.environ.get("GLASSBOX_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"))


def _shown_run_caption(page, run_id: str):
    return page.locator("[data-stale=false]").get_by_text(f"Run {run_id}", exact=True)


def _delete_in(page, run_id: str) -> None:
    """Confirm and delete ``run_id``, the run the list has picked (the one the page shows)."""
    box = page.locator(f".st-key-train_confirm_delete_{run_id}")
    expect(box).to_be_visible()  # the list's pick is the run the page shows
    box.get_by_text("Yes, delete this run for good").click()
    wait_for_app(page)
    page.locator(".st-key-train_delete_run").get_by_role("button", name="Delete").click()
    wait_for_app(page, settle_ms=800)


def test_buttons_of_a_run_deleted_in_another_tab_act_on_nothing(app_server, browser, server_jobs):
    # Three stopped runs, oldest first: when a run is gone, the page falls back to the newest
    # left, whose buttons have the same keys; unbound, a click went to it.
    oldest = _stopped_run(server_jobs, seed=1)
    time.sleep(1.1)  # run ids sort by the second they were made in
    middle = _stopped_run(server_jobs, seed=2)
    time.sleep(1.1)
    newest = _stopped_run(server_jobs, seed=3)

    context = browser.new_context(viewport={"width": 1400, "height": 1400})
    try:
        tab_a, tab_b = context.new_page(), context.new_page()
        for tab in (tab_a, tab_b):
            open_app(tab, app_server, TRAIN_PAGE)
            expect(_shown_run_caption(tab, newest)).to_be_visible()  # both follow the newest run

        # Tab A deletes it, and stops showing it at once.
        _delete_in(tab_a, newest)
        expect(tab_a.get_by_test_id("stAlertContentSuccess").filter(has_text="Deleted the run")).to_be_visible()
        expect(_shown_run_caption(tab_a, newest)).to_have_count(0)
        expect(_shown_run_caption(tab_a, middle)).to_be_visible()
        assert_no_exception(tab_a)

        # Tab B still shows it and clicks Resume: no other run starts, and tab B says why.
        tab_b.locator(".st-key-train_resume").get_by_role("button", name="Resume").click()
        wait_for_app(tab_b, settle_ms=800)
        assert [server_jobs.status(r).status for r in (middle, oldest)] == ["stopped", "stopped"]
        left = server_jobs.store.run_ids()  # (earlier tests on this server may have left runs of their own)
        assert newest not in left and {middle, oldest} <= set(left)
        expect(tab_b.get_by_text("no longer exists").first).to_be_visible()
        _screenshot(tab_b, "train-run-gone")
        expect(_shown_run_caption(tab_b, newest)).to_have_count(0)
        assert_no_exception(tab_b)

        # Both tabs now show the middle run; tab A deletes it, tab B uses its model.
        expect(_shown_run_caption(tab_b, middle)).to_be_visible()
        _delete_in(tab_a, middle)
        tab_b.locator(".st-key-train_use_model").get_by_role("button", name="Use this model").click()
        wait_for_app(tab_b, settle_ms=800)
        expect(tab_b.get_by_text("no longer exists").first).to_be_visible()
        sidebar = tab_b.get_by_test_id("stSidebar")
        expect(sidebar).to_contain_text("digits-cnn · CNN")
        expect(sidebar).not_to_contain_text("trained on")  # the other run's model did not become current
        expect(tab_b.get_by_test_id("stAlertContentSuccess").filter(has_text="The current model is now")
               ).to_have_count(0)
        assert server_jobs.status(oldest).status == "stopped"
        assert_no_exception(tab_b)
    finally:
        context.close()
