"""App tests (Streamlit AppTest) for presenter mode (issue 14): ``?present=1`` in the address turns
it on, the sidebar's toggle turns it off (and the address follows, so a reload keeps the mode),
downloads are gone on an Inspect page and the Model page while it is on, the figures a page
draws have labels of at least 16 px, and in class mode the person's key in the address is kept."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app_pages import common, presenter_ui
from tests.app_helpers import figure, run
from training import people
from training.people import People

APP = str(Path(__file__).resolve().parents[1] / "app.py")
FIRST_RUN_TIMEOUT_S = 60  # the first run imports torch and builds the default model
PREDICTION = "cnn_prediction"  # the Feature maps page's probability bars (viz.activations.probability_bars)


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("GLASSBOX_HOME", str(tmp_path))
    monkeypatch.delenv(people.PASSWORD_VARIABLE, raising=False)
    return tmp_path


def visit(page: str | None = None, **params: str) -> AppTest:
    """A browser opening the app at an address with ``params`` (then ``page``, if given)."""
    at = AppTest.from_file(APP, default_timeout=FIRST_RUN_TIMEOUT_S)
    for name, value in params.items():
        at.query_params[name] = value
    run(at)
    if page is not None:
        at.switch_page(f"app_pages/{page}.py")
        run(at)
    return at


def download_labels(at: AppTest) -> list[str]:
    return [element.proto.label for element in at.get("download_button")]


def label_sizes(spec: dict) -> list[float]:
    """The explicit sizes of a figure's tick labels, axis titles and annotations."""
    layout = spec["layout"]
    sizes = [axis.get("tickfont", {}).get("size", 0) for key, axis in layout.items() if key.startswith(("xaxis", "yaxis"))]
    sizes += [annotation.get("font", {}).get("size", 0) for annotation in layout.get("annotations", [])]
    return sizes


def test_present_1_in_the_address_turns_presenter_mode_on_and_hides_the_downloads():
    shown = visit(page="inspect_cnn", present="1")
    assert shown.session_state[common.PRESENTING] is True
    assert shown.toggle(key=presenter_ui.TOGGLE).value is True
    assert shown.query_params[common.PRESENT_PARAM] == "1"  # kept after the page switch dropped it
    assert download_labels(shown) == []
    assert label_sizes(figure(shown, PREDICTION)) and min(label_sizes(figure(shown, PREDICTION))) >= 16

    plain = visit(page="inspect_cnn")  # the same page out of presenter mode, for comparison
    assert plain.session_state[common.PRESENTING] is False and common.PRESENT_PARAM not in plain.query_params
    assert "Download as HTML" in download_labels(plain)
    assert "Download the raw activations (.npz)" in download_labels(plain)
    assert min(label_sizes(figure(plain, PREDICTION))) < 16  # what presenter mode changed
    for before, after in zip(figure(plain, PREDICTION)["data"], figure(shown, PREDICTION)["data"], strict=True):
        assert (before["x"], before["y"], before["text"]) == (after["x"], after["y"], after["text"])  # the same bars


def test_the_toggle_turns_it_off_and_on_and_the_address_follows():
    at = visit(page="inspect_cnn", present="1")
    at.toggle(key=presenter_ui.TOGGLE).set_value(False)
    run(at)
    assert at.session_state[common.PRESENTING] is False and common.PRESENT_PARAM not in at.query_params
    assert "Download as HTML" in download_labels(at)
    at.toggle(key=presenter_ui.TOGGLE).set_value(True)
    run(at)
    assert at.session_state[common.PRESENTING] is True and at.query_params[common.PRESENT_PARAM] == "1"
    assert download_labels(at) == []


def test_present_0_turns_it_off_and_the_model_page_hides_its_download_while_on():
    model_page = visit(page="model", present="1")
    assert "Download the current model" not in download_labels(model_page)
    model_page.query_params[common.PRESENT_PARAM] = "0"
    run(model_page)
    assert model_page.session_state[common.PRESENTING] is False
    assert common.PRESENT_PARAM not in model_page.query_params
    assert "Download the current model" in download_labels(model_page)


def test_in_class_mode_the_persons_key_stays_in_the_address_beside_present(monkeypatch):
    monkeypatch.setenv(people.PASSWORD_VARIABLE, "apple pie 7")
    key = people.new_key()
    People().register(people.person_id_of(key), "Ada")
    at = visit(page="train", **{common.KEY_PARAM: key, common.PRESENT_PARAM: "1"})
    assert at.session_state[common.PERSON].name == "Ada" and at.session_state[common.PRESENTING] is True
    assert at.query_params[common.KEY_PARAM] == key and at.query_params[common.PRESENT_PARAM] == "1"
    at.toggle(key=presenter_ui.TOGGLE).set_value(False)
    run(at)
    assert at.query_params[common.KEY_PARAM] == key and common.PRESENT_PARAM not in at.query_params
