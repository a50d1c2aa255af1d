"""The "What it learned" page (AppTest): a trained digits CNN's grown picture beside its top
examples and its validation map; an LSTM's and our transformer's maps with their sentences; a
point (clicked or typed) opens its example on the page for the model's kind; plain messages
where there is nothing to show."""
from __future__ import annotations

import pytest

from app_pages import common
from explain.tokens import sentence_of
from models import build_model, presets
from models.pretrained import BUILTIN_TEXT, load_pretrained
from tests.app_helpers import figure, open_page, run, texts, values
from tests.trained_models import dataset_of, trained
from training.data import fit_spec_to_dataset

OPEN_ROW, OPEN_BUTTON = "learned_open_row", "learned_open"


def untrained(preset: str):
    return build_model(fit_spec_to_dataset(presets.get(preset), dataset_of(preset)), seed=0)


def points_of(spec: dict) -> tuple[int, list]:
    """(points drawn, hover texts) of the map figure (its legend-only entry has no point)."""
    traces = [trace for trace in spec["data"] if trace.get("customdata") is not None]
    hovers = [text for trace in traces for text in trace["hovertext"]]
    return sum(len(values(trace["customdata"])) for trace in traces), hovers


def test_a_trained_cnn_shows_what_a_channel_wants_beside_its_top_examples_and_maps_its_data():
    at = open_page("learned", trained("digits-cnn"))
    pictures = figure(at, "learned_pictures")
    assert [trace["type"] for trace in pictures["data"]] == ["image"] * 8  # grown, its noise, 6 examples
    titles = [a["text"] for a in pictures["layout"]["annotations"]]
    assert titles[0].startswith("what it wants<br>") and titles[2].startswith("example ")
    assert figure(at, "learned_climb")["data"][0]["name"] == "the picture being grown"
    count, hovers = points_of(figure(at, "learned_map"))
    assert count == len(dataset_of("digits-cnn").x_val)
    assert hovers[0].startswith("example ")
    assert not at.error and not at.warning
    at.selectbox(key="learned_layer").set_value("logits")
    run(at)
    at.selectbox(key="learned_class").set_value(7)
    run(at)
    assert any("the class 7 responds" in caption for caption in texts(at.caption))


def test_the_open_button_shows_the_example_on_the_feature_maps_page():
    at = open_page("learned", trained("digits-cnn"))
    at.number_input(key=OPEN_ROW).set_value(5)
    run(at)
    at.button(key=OPEN_BUTTON).click()
    run(at)
    assert texts(at.title) == ["Feature maps"]
    assert at.number_input(key="cnn_example").value == 5


def test_a_click_on_a_point_opens_its_example():
    at = open_page("learned", trained("digits-cnn"))
    at.session_state[common.MAP_CLICKED] = 7  # what the map's selection callback leaves (0-based row)
    run(at)
    assert texts(at.title) == ["Feature maps"]
    assert at.number_input(key="cnn_example").value == 8
    assert at.session_state[common.MAP_CLICKED] is None


@pytest.mark.parametrize("preset, page_title, text_key", [("sentiment-lstm", "Hidden states", "rnn_text"),
                                                          ("sentiment-transformer", "Attention", "attention_text")])
def test_a_text_model_maps_its_sentences_and_opens_one_on_its_page(preset, page_title, text_key):
    at = open_page("learned", untrained(preset))
    assert any("grows pictures for the filters of a CNN" in info for info in texts(at.info))
    data = dataset_of(preset)
    count, hovers = points_of(figure(at, "learned_map"))
    assert count == len(data.x_val)
    first = sentence_of(data.x_val[0], data.vocab)
    assert any(hover.startswith(f"“{first}”") for hover in hovers)
    assert any("not trained on the sentiment data" in caption for caption in texts(at.caption))
    at.number_input(key=OPEN_ROW).set_value(3)
    run(at)
    at.button(key=OPEN_BUTTON).click()
    run(at)
    assert texts(at.title) == [page_title]
    assert at.session_state[text_key] == sentence_of(data.x_val[2], data.vocab)


def test_the_3d_map_is_drawn_in_3d():
    at = open_page("learned", untrained("sentiment-lstm"))
    at.segmented_control(key="learned_dims").set_value(3)
    run(at)
    assert {trace["type"] for trace in figure(at, "learned_map")["data"]} == {"scatter3d"}


def test_a_pretrained_model_gets_plain_messages():
    at = open_page("learned", load_pretrained(BUILTIN_TEXT))
    messages = texts(at.info)
    assert any("grows pictures for the filters of a CNN" in m for m in messages)
    assert any("needs the data the model was trained on" in m for m in messages)
    assert not at.get("plotly_chart")


def test_a_clicked_point_gives_back_its_row_however_plotly_hands_it_over():
    from app_pages.example_links import clicked_row

    assert clicked_row({"customdata": 12}) == 12
    assert clicked_row({"customdata": [12]}) == 12
    assert clicked_row({"customdata": {"0": 12}}) == 12
    assert clicked_row({"point_index": 3}) is None and clicked_row({"customdata": "x"}) is None


def test_two_sessions_on_copies_of_one_model_grow_the_picture_and_map_the_data_once(monkeypatch):
    import copy

    import streamlit as st

    import explain.dataset_map
    import explain.featurevis

    calls = {"visualise": 0, "dataset_map": 0}

    def counted_call(module, name):
        original = getattr(module, name)

        def call(*args, **kwargs):
            calls[name] += 1
            return original(*args, **kwargs)
        monkeypatch.setattr(module, name, call)  # the page imports it afresh on every run

    counted_call(explain.featurevis, "visualise")
    counted_call(explain.dataset_map, "dataset_map")
    st.cache_resource.clear()
    model = trained("digits-cnn")
    first = open_page("learned", copy.deepcopy(model))
    second = open_page("learned", copy.deepcopy(model))  # another session, its own copy of the same weights
    assert calls == {"visualise": 1, "dataset_map": 1}
    assert figure(first, "learned_map") == figure(second, "learned_map")
