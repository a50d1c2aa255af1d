"""App tests (Streamlit AppTest) for who is who (issue 13): the name form, a reload that finds the
same person again, a name that cannot take another's runs, the teacher's sign-in (a wrong
password is refused and the page goes on), the teacher's list of everyone's runs with their
owners, sharing a run, and a student using the shared model. Runs are real worker processes on
a store in tmp_path; with no password set the app is in single-user mode, as before."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app_pages import common, people_ui, run_data, train_run, train_runs_list
from models import presets
from tests.app_helpers import texts
from tests.waiting import until
from training import jobs, people
from training.datasets import load_dataset
from training.people import People, Person
from training.trainer import Hyperparameters

APP = str(Path(__file__).resolve().parents[1] / "app.py")
FIRST_RUN_TIMEOUT_S = 60  # the first run imports torch and builds the default model
WAIT_S = 180  # generous: only a hung worker should hit it
PASSWORD = "apple pie 7"


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """An empty run store; no password unless a test sets one; no worker left running."""
    monkeypatch.setenv("GLASSBOX_HOME", str(tmp_path))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv(people.PASSWORD_VARIABLE, raising=False)
    yield tmp_path
    manager = jobs.default_jobs()
    for run_id in manager.store.run_ids():
        if (found := run_data.safe_status(run_id)) is not None and found.active:
            manager.backend.kill(manager.store.path(run_id))


@pytest.fixture
def classroom(monkeypatch):
    monkeypatch.setenv(people.PASSWORD_VARIABLE, PASSWORD)


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def button(at: AppTest, label: str):
    (found,) = [b for b in at.button if b.label == label]
    return found


def visit(key: str | None = None, page: str | None = None) -> AppTest:
    """A browser opening the app (with ``key`` in its address: a reload of that person's page)."""
    at = AppTest.from_file(APP, default_timeout=FIRST_RUN_TIMEOUT_S)
    if key is not None:
        at.query_params[common.KEY_PARAM] = key
    run(at)
    if page is not None:
        at.switch_page(f"app_pages/{page}.py")
        run(at)
    return at


def give_name(at: AppTest, name: str) -> AppTest:
    at.text_input(key=people_ui.NAME).input(name)
    button(at, "Start").click()
    return run(at)


def sign_up(name: str) -> tuple[AppTest, str]:
    """A new visitor gives ``name``; returns their app and the key in their page's address."""
    at = give_name(visit(), name)
    assert at.session_state[common.PERSON].name == name, texts(at.error)
    return at, at.query_params[common.KEY_PARAM]


def sidebar_text(at: AppTest) -> str:
    return " ".join(texts(at.sidebar.markdown))


def runs_table(at: AppTest):
    (table,) = [frame.value for frame in at.dataframe if "Id" in frame.value.columns]
    return table


def finished_run(owner: Person | None, seed: int = 0) -> str:
    run_id = jobs.submit(presets.get("digits-cnn"), load_dataset("digits"), Hyperparameters(epochs=1, seed=seed),
                         owner=owner)
    assert jobs.wait(run_id, timeout_s=WAIT_S).status == "finished"
    return run_id


# ---- single-user mode ---------------------------------------------------------------------------
def test_with_no_password_the_app_is_for_one_user_as_before_and_the_train_page_says_so():
    at = visit(page="train")
    assert at.session_state[common.PERSON] is None and common.KEY_PARAM not in at.query_params
    assert not [b for b in at.button if b.label == "Start"] and "You are" not in sidebar_text(at)
    (line,) = [c for c in texts(at.caption) if c.startswith(":material/person: Single-user mode")]
    assert "everyone who opens this Glassbox sees and controls every run" in line
    assert "GLASSBOX_TEACHER_PASSWORD" in line


# ---- the name form and a reload ------------------------------------------------------------------
def test_a_visitor_gives_a_name_once_and_a_reload_finds_them_again(classroom, home):
    at = visit()
    assert texts(at.title) == ["Welcome to Glassbox"]  # the form, not the Home page
    give_name(at, "   ")
    assert texts(at.error) == ["Type your name first."] and at.session_state[common.PERSON] is None
    give_name(at, "Ada  Lovelace")
    key = at.query_params[common.KEY_PARAM]
    person_id = people.person_id_of(key)
    assert at.session_state[common.PERSON] == Person(person_id, "Ada Lovelace")
    assert "Welcome to Glassbox" not in texts(at.title) and "You are **Ada Lovelace**" in sidebar_text(at)
    assert People(home).names() == {person_id: "Ada Lovelace"}  # the name is kept; the key is not
    assert key not in (home / "people" / f"{person_id}.json").read_text()

    again = visit(key, page="train")  # a reload: the key is in the address
    assert again.session_state[common.PERSON] == Person(person_id, "Ada Lovelace")
    assert "You are **Ada Lovelace**" in sidebar_text(again) and again.query_params[common.KEY_PARAM] == key
    assert any(c.endswith("your runs and the ones your teacher shared with the class.") for c in texts(again.caption))

    for unknown in (people.new_key(), "not a key", ""):  # a key nobody registered, or junk: the form again
        stranger = visit(unknown)
        assert texts(stranger.title) == ["Welcome to Glassbox"] and stranger.session_state[common.PERSON] is None

    # "Not Ada? Start as someone new": the form again, and the old address still finds Ada.
    button(again, "Not Ada Lovelace? Start as someone new").click()
    run(again)
    assert texts(again.title) == ["Welcome to Glassbox"] and common.KEY_PARAM not in again.query_params
    assert visit(key).session_state[common.PERSON].name == "Ada Lovelace"


def test_a_name_is_shown_as_typed_never_read_as_markup(classroom):
    at, _key = sign_up("**Bold** <b>Zoë</b> [x](y)")
    assert "You are **\\*\\*Bold\\*\\* \\<b\\>Zoë\\</b\\> \\[x\\](y)**" in sidebar_text(at)
    (someone_else,) = [b for b in at.sidebar.button if b.key == people_ui.SOMEONE_ELSE]
    assert someone_else.label == "Not \\*\\*Bold\\*\\* \\<b\\>Zoë\\</b\\> \\[x\\](y)? Start as someone new"
    other = give_name(visit(), "**bold** <b>zoë</b> [x](y)")  # the same name: the refusal quotes it, escaped
    assert texts(other.error) == ["Someone here already goes by the name '\\*\\*Bold\\*\\* \\<b\\>Zoë\\</b\\> "
                                  "\\[x\\](y)'; add an initial or a surname so the teacher can tell you apart."]


def test_a_typed_name_cannot_take_anothers_name_or_runs(classroom):
    ada, ada_key = sign_up("Ada")
    ada_person = ada.session_state[common.PERSON]
    ada_run = finished_run(ada_person)

    ben = give_name(visit(), "ada")  # the same name, typed by another browser
    assert texts(ben.error) == ["Someone here already goes by the name 'Ada'; add an initial or a surname so the "
                                "teacher can tell you apart."]
    assert ben.session_state[common.PERSON] is None
    give_name(ben, "Ada B.")
    ben.switch_page("app_pages/train.py")
    run(ben)
    assert ben.session_state[common.CURRENT_RUN] is None  # Ada's run is not Ben's to see
    assert "No runs yet" in " ".join(texts(ben.caption)) and not [f for f in ben.dataframe if "Id" in f.value.columns]
    assert ben.session_state[common.PERSON].person_id != ada_person.person_id

    mine = visit(ada_key, page="train")  # Ada, reloading, still has hers
    assert mine.session_state[common.CURRENT_RUN] == ada_run and list(runs_table(mine)["Id"]) == [ada_run]
    assert list(runs_table(mine)["Owner"]) == ["Ada (you)"]


# ---- the teacher ----------------------------------------------------------------------------------
def sign_in(at: AppTest, password: str) -> AppTest:
    at.text_input(key=people_ui.PASSWORD).input(password)
    button(at, "Sign in").click()
    return run(at)


def test_a_wrong_teacher_password_is_refused_and_the_page_goes_on(classroom):
    at, _key = sign_up("Ms Lee")
    at.switch_page("app_pages/train.py")
    run(at)
    for wrong in ("apple pie", PASSWORD + " ", "APPLE PIE 7", ""):
        sign_in(at, wrong)
        assert texts(at.sidebar.error) == ["That is not the teacher's password."]
        assert not at.session_state[common.PERSON].teacher
        assert at.text_input(key=people_ui.PASSWORD).value == ""  # not kept in the session
        assert texts(at.title) == ["Train"]  # the page goes on
    sign_in(at, PASSWORD)
    assert at.session_state[common.PERSON] == Person(at.session_state[common.PERSON].person_id, "Ms Lee", teacher=True)
    assert not at.sidebar.error and "signed in as the teacher" in sidebar_text(at)
    assert "people_teacher_password" in repr(at.session_state) and PASSWORD not in repr(at.session_state)
    button(at, "Sign out as the teacher").click()
    run(at)
    assert not at.session_state[common.PERSON].teacher and "You are **Ms Lee**" in sidebar_text(at)


def test_the_password_may_come_from_streamlits_secrets(home):
    at = AppTest.from_file(APP, default_timeout=FIRST_RUN_TIMEOUT_S)
    at.secrets[people.PASSWORD_VARIABLE] = "from secrets"
    run(at)
    assert texts(at.title) == ["Welcome to Glassbox"]  # a class: the name form
    give_name(at, "Ms Lee")
    sign_in(at, "from secrets")
    assert at.session_state[common.PERSON].teacher


def test_the_teacher_sees_every_run_with_its_owner_and_shares_one_that_a_student_then_uses(classroom):
    ada, _ = sign_up("Ada")
    ben, ben_key = sign_up("Ben")
    ada_run = finished_run(ada.session_state[common.PERSON], seed=1)
    ben_run = finished_run(ben.session_state[common.PERSON], seed=2)
    nobodys = finished_run(None, seed=3)  # from the command line

    teacher, _ = sign_up("Ms Lee")
    teacher.switch_page("app_pages/train.py")
    run(teacher)
    assert teacher.session_state[common.CURRENT_RUN] is None  # before signing in: a student, with no runs
    sign_in(teacher, PASSWORD)
    table = runs_table(teacher)
    assert list(table["Id"]) == [nobodys, ben_run, ada_run]
    assert list(table["Owner"]) == ["nobody", "Ben", "Ada"]
    assert any(c.startswith(":material/school: You are the teacher") for c in texts(teacher.caption))

    # The teacher picks Ada's run and shares it; the list says so.
    teacher.selectbox(key=train_runs_list.RUN_PICK).set_value(ada_run)
    run(teacher)
    assert not teacher.checkbox(key=f"{train_runs_list.CONFIRM_DELETE}_{ada_run}").disabled  # may delete any
    teacher.button(key=train_runs_list.SHARE_RUN).click()
    run(teacher)
    assert jobs.status(ada_run).shared and list(runs_table(teacher)["Owner"]) == ["nobody", "Ben", "Ada · shared"]
    assert any("Shared the run" in s and "with the class" in s for s in texts(teacher.success))

    # Ben (reloading) sees his run and the shared one, not the others; he may not delete Ada's.
    ben = visit(ben_key, page="train")
    table = runs_table(ben)
    assert list(table["Id"]) == [ben_run, ada_run] and list(table["Owner"]) == ["Ben (you)", "Ada · shared"]
    ben.selectbox(key=train_runs_list.RUN_PICK).set_value(ada_run)
    run(ben)
    assert ben.checkbox(key=f"{train_runs_list.CONFIRM_DELETE}_{ada_run}").disabled
    assert ben.button(key=train_runs_list.DELETE_RUN).disabled
    assert "Only its owner or the teacher can delete this run." in texts(ben.caption)
    assert not [b for b in ben.button if b.key == train_runs_list.SHARE_RUN]  # the teacher's alone

    # The shared model is ready for him: "Use this model" makes it his current model.
    assert "**Shared with the class**" in texts(ben.markdown)
    ben.button(key=f"{train_run.USE_SHARED}_{ada_run}").click()
    run(ben)
    model = ben.session_state[common.CURRENT_MODEL]
    assert model.meta.run_id == ada_run and model.meta.dataset == "digits"
    assert ben.session_state[common.CURRENT_RUN] == ada_run
    assert any(s.startswith("The current model is now digits-cnn") for s in texts(ben.success))
    assert "Your current model" in texts(ben.caption)
    assert not [b for b in ben.button if b.key in (train_run.STOP, train_run.RESUME)]

    # Unshared, it leaves Ben's list (and the page he was showing it on).
    teacher.button(key=train_runs_list.SHARE_RUN).click()
    run(teacher)
    assert not jobs.status(ada_run).shared
    ben = visit(ben_key, page="train")
    assert list(runs_table(ben)["Id"]) == [ben_run]


def test_the_teacher_stops_a_students_run_from_the_page_and_the_student_sees_it_stopped(classroom):
    ada, ada_key = sign_up("Ada")
    run_id = jobs.submit(presets.get("digits-cnn"), load_dataset("digits"), Hyperparameters(epochs=1000),
                         owner=ada.session_state[common.PERSON])
    until(lambda: jobs.status(run_id).started_at is not None, WAIT_S)  # training, not still in line (Cancel)
    teacher, _ = sign_up("Ms Lee")
    sign_in(teacher, PASSWORD)
    teacher.switch_page("app_pages/train.py")
    run(teacher)
    assert teacher.session_state[common.CURRENT_RUN] == run_id  # the newest active run: Ada's
    assert "Ada's run" in texts(teacher.caption)
    teacher.button(key=train_run.STOP).click()
    run(teacher)
    assert jobs.wait(run_id, timeout_s=WAIT_S).status == "stopped"

    mine = visit(ada_key, page="train")  # Ada sees her run stopped, and may resume it
    assert mine.session_state[common.CURRENT_RUN] == run_id and "Your run" in texts(mine.caption)
    assert [b.key for b in mine.button if b.key == train_run.RESUME] == [train_run.RESUME]
