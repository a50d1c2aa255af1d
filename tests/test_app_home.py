"""App tests (Streamlit AppTest) for app.py and the Home page."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app_pages import common
from models import build_model, presets

APP = str(Path(__file__).resolve().parents[1] / "app.py")
FIRST_RUN_TIMEOUT_S = 60  # the first run imports torch and builds the default model


@pytest.fixture
def app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=FIRST_RUN_TIMEOUT_S).run()
    assert not at.exception
    return at


def expected_summary(name: str) -> str:
    model = build_model(presets.get(name))
    count = sum(p.numel() for p in model.parameters())
    return f"{name} · {model.spec.family()} · {count:,} parameters"


def test_home_is_the_default_page_and_runs_cleanly(app):
    assert [t.value for t in app.title] == ["Glassbox"]
    assert not app.error


def test_home_describes_and_links_every_page(app):
    captions = [c.value for c in app.main.caption]
    links = [link.value for link in app.main.get("page_link")]
    for _file, title, _icon, what in common.PAGES:
        assert what in captions
        assert title in links
    assert links[0] == "Start here: the Lessons"  # above the list, leading to the Lessons page
    assert len(links) == len(common.PAGES) + 1  # no links to pages that do not exist


def test_every_listed_page_file_exists():
    root = Path(APP).parent
    for file, *_ in common.PAGES:
        assert (root / file).is_file(), file


def test_sidebar_names_the_default_model(app):
    assert [m.value for m in app.sidebar.markdown] == [expected_summary(common.DEFAULT_PRESET)]
    assert expected_summary("digits-cnn") == "digits-cnn · CNN · 18,346 parameters"


def test_sidebar_shows_the_current_model_on_every_page(app):
    app.switch_page("app_pages/model.py").run()
    assert not app.exception
    assert [m.value for m in app.sidebar.markdown] == [expected_summary(common.DEFAULT_PRESET)]
    app.switch_page("app_pages/home.py").run()
    assert [m.value for m in app.sidebar.markdown] == [expected_summary(common.DEFAULT_PRESET)]


def test_sidebar_says_why_a_trained_models_count_is_not_its_designs(app):
    assert [c.value for c in app.sidebar.caption] == ["Current model"]  # untrained: nothing to explain
    spec = presets.get("sentiment-lstm")
    spec.input.vocab_size = 500  # what training on the data set made of it
    trained = build_model(spec)
    trained.meta.dataset = "sentiment"
    app.session_state[common.CURRENT_MODEL] = trained
    app.run()
    count = sum(p.numel() for p in trained.parameters())
    assert [m.value for m in app.sidebar.markdown] == [
        f"sentiment-lstm · LSTM · {count:,} parameters · trained on sentiment"]
    (_, note) = [c.value for c in app.sidebar.caption]
    assert "vocabulary (500 words)" in note and "2 classes" in note and "Model page" in note
