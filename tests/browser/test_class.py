"""In Chromium, a class on one server (issue 13): two students and a teacher, each in their own
browser (context), on a server with GLASSBOX_TEACHER_PASSWORD set.

Each gives a name once; a reload, even after moving to another page, finds them again. Ada and
Ben each train a run on the Train page; each sees only their own. The teacher sees nothing until
signed in (a wrong password is refused and the page goes on), then both runs with their owners,
and shares Ada's. Ben then sees it, uses its model (it becomes his current model), and cannot
delete it; Ada sees that her run is shared.

Set GLASSBOX_SCREENSHOTS to a folder to keep a screenshot of each person's page at the end.
"""
from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import expect

from app_pages.train_run import run_label
from tests.browser.helpers import assert_no_exception, open_app, wait_for_app
from tests.waiting import until
from training.jobs import Jobs
from training.store import RunStore

WAIT_S = 240  # generous: only a hung worker or server should reach it


def _sidebar(page):
    return page.get_by_test_id("stSidebar")


def _cells(page):
    """The runs table's cells (the grid keeps them in the page for screen readers, once it has
    been drawn: it is scrolled into view first)."""
    table = page.locator("[data-stale=false] [data-testid=stDataFrame]").first
    table.scroll_into_view_if_needed(timeout=30_000)
    expect(table.locator("td[role=gridcell]").first).to_be_attached(timeout=30_000)
    return table.locator("td[role=gridcell]")


def _screenshot(page, name: str) -> None:
    folder = os.environ.get("GLASSBOX_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.wait_for_timeout(500)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def _give_name(page, name: str) -> None:
    expect(page.get_by_role("heading", name="Welcome to Glassbox")).to_be_visible()
    page.locator(".st-key-people_name input").fill(name)
    page.get_by_role("button", name="Start").click()
    wait_for_app(page, settle_ms=800)
    expect(_sidebar(page)).to_contain_text(f"You are {name}")
    assert "me=" in page.url  # the key that makes them them is in the page's address


def _reload(page) -> None:
    page.reload()
    wait_for_app(page, settle_ms=800)


def _train_one_epoch(page) -> None:
    field = page.locator(".st-key-train_hp_epochs input")
    field.fill("1")
    field.press("Enter")
    wait_for_app(page)
    page.get_by_role("button", name="Train", exact=True).click()
    wait_for_app(page)


def _sign_in(page, password: str) -> None:
    sidebar = _sidebar(page)
    if sidebar.locator(".st-key-people_teacher_password input").count() == 0 \
            or not sidebar.locator(".st-key-people_teacher_password input").is_visible():
        sidebar.get_by_text("Teacher sign-in").click()
    sidebar.locator(".st-key-people_teacher_password input").fill(password)
    sidebar.get_by_role("button", name="Sign in").click()
    wait_for_app(page, settle_ms=800)


def _pick(page, label: str, run_id: str) -> None:
    """Pick a run in the runs list (its Delete checkbox is then the one for ``run_id``)."""
    box = page.locator(".st-key-train_run_pick input")
    box.click()
    box.fill(label)
    page.get_by_role("option", name=label, exact=True).click()
    wait_for_app(page)
    expect(page.locator(f".st-key-train_confirm_delete_{run_id}")).to_be_visible()


def test_two_students_and_a_teacher_each_see_what_is_theirs(class_server, browser):
    base_url, home, password = class_server
    manager = Jobs(RunStore(home))
    contexts = [browser.new_context(viewport={"width": 1400, "height": 1400}) for _ in range(3)]
    ada, ben, teacher = (context.new_page() for context in contexts)
    try:
        for page, name in ((ada, "Ada"), (ben, "Ben"), (teacher, "Ms Lee")):
            open_app(page, base_url, "train")
            _give_name(page, name)
            expect(page.get_by_role("heading", name="Train")).to_be_visible()  # the page asked for opens

        # Ada and Ben each train; each sees their own run only.
        _train_one_epoch(ada)
        _train_one_epoch(ben)
        until(lambda: len(runs := manager.list_runs()) == 2 and not any(r.active for r in runs), WAIT_S, 0.2)
        by_owner = {run.owner_name: run for run in manager.list_runs()}
        assert set(by_owner) == {"Ada", "Ben"} and all(r.status == "finished" for r in by_owner.values())
        ada_run, ben_run = by_owner["Ada"].run_id, by_owner["Ben"].run_id
        assert by_owner["Ada"].owner != by_owner["Ben"].owner

        _reload(ada)  # identity survives a reload
        expect(_sidebar(ada)).to_contain_text("You are Ada")
        expect(_cells(ada).filter(has_text=ada_run)).to_have_count(1)
        expect(_cells(ada).filter(has_text=ben_run)).to_have_count(0)
        expect(_cells(ada).filter(has_text="Ada (you)")).to_have_count(1)

        # Ben moves to another page (which drops the key from the address), comes back, reloads.
        ben.get_by_test_id("stSidebarNav").get_by_role("link", name="Model").click()
        wait_for_app(ben, settle_ms=800)
        until(lambda: "me=" in ben.url, 30, 0.1)
        _reload(ben)
        expect(_sidebar(ben)).to_contain_text("You are Ben")
        ben.get_by_test_id("stSidebarNav").get_by_role("link", name="Train").click()
        wait_for_app(ben, settle_ms=800)
        expect(_cells(ben).filter(has_text=ben_run)).to_have_count(1)
        expect(_cells(ben).filter(has_text=ada_run)).to_have_count(0)

        # The teacher, not yet signed in, sees no run; a wrong password is refused.
        expect(teacher.get_by_text("No runs yet.", exact=False)).to_be_visible()
        _sign_in(teacher, password + "x")
        expect(_sidebar(teacher).get_by_text("That is not the teacher's password.")).to_be_visible()
        expect(teacher.get_by_role("heading", name="Train")).to_be_visible()
        assert_no_exception(teacher)
        _sign_in(teacher, password)
        expect(_sidebar(teacher)).to_contain_text("signed in as the teacher")
        for run_id, owner in ((ada_run, "Ada"), (ben_run, "Ben")):
            expect(_cells(teacher).filter(has_text=run_id)).to_have_count(1)
            expect(_cells(teacher).filter(has_text=owner)).to_have_count(1)

        # The teacher shares Ada's run.
        _pick(teacher, f"{run_label(manager.status(ada_run))} · Ada", ada_run)
        teacher.locator(".st-key-train_share_run").get_by_role("button", name="Share").click()
        wait_for_app(teacher, settle_ms=800)
        expect(teacher.get_by_text("with the class: every student can now use its model")).to_be_visible()
        assert manager.status(ada_run).shared and not manager.status(ben_run).shared
        assert_no_exception(teacher)

        # Ben sees it, ready to use, and cannot delete it.
        _reload(ben)
        expect(ben.get_by_text("Shared with the class", exact=True)).to_be_visible()
        expect(_cells(ben).filter(has_text=ada_run)).to_have_count(1)
        ben.locator(f".st-key-train_use_shared_{ada_run}").get_by_role("button", name="Use this model").click()
        wait_for_app(ben, settle_ms=800)
        expect(ben.get_by_test_id("stAlertContentSuccess").filter(has_text="The current model is now digits-cnn")
               ).to_be_visible()
        expect(ben.get_by_text(f"(run {ada_run})")).to_be_visible()
        expect(ben.get_by_text("Ada's run, shared with the class")).to_be_visible()
        expect(ben.locator(".st-key-train_resume")).to_have_count(0)
        _pick(ben, f"{run_label(manager.status(ada_run))} · Ada", ada_run)
        expect(ben.locator(f".st-key-train_confirm_delete_{ada_run} input")).to_be_disabled()
        expect(ben.get_by_text("Only its owner or the teacher can delete this run.")).to_be_visible()
        assert_no_exception(ben)

        # Ada sees that her run is shared; Ben's is still not hers to see.
        _reload(ada)
        expect(ada.get_by_text("Your run, shared with the class")).to_be_visible()
        expect(_cells(ada).filter(has_text=ben_run)).to_have_count(0)
        assert_no_exception(ada)
        for page, name in ((ada, "class-ada"), (ben, "class-ben"), (teacher, "class-teacher")):
            _screenshot(page, name)
    finally:
        for context in contexts:
            context.close()
        for run in manager.list_runs():  # leave no worker behind
            if run.active:
                manager.stop(run.run_id, wait_s=5)
