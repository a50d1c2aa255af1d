"""App tests (Streamlit AppTest) for the input pickers every Inspect page and Attributions share
(app_pages.inspect_ui): odd pictures are shown, a long paste is answered in words, and several
lines on a page that reads one sentence let the user choose which."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from explain.inputs import MAX_TEXT_CHARS
from models import build_model, presets
from tests.app_helpers import figure, open_page, run, texts

ODD_SIZES = [(4000, 3), (500, 2), (169, 1), (3, 4000)]


def png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "white").save(buffer, "PNG")
    return buffer.getvalue()


def captions(at) -> str:
    return " ".join(texts(at.caption))


def image_captions(at) -> list[str]:
    return [picture.caption for element in at.get("image") for picture in element.proto.imgs]


@pytest.mark.parametrize("page, preset, key, model_side", [("inspect_cnn", "digits-cnn", "cnn", 16),
                                                           ("attributions", "digits-cnn", "attr", 16),
                                                           ("inspect_attention", "shapes-vit", "attention", 32)])
def test_a_very_wide_or_tall_picture_is_shown_and_explained(page, preset, key, model_side):
    at = open_page(page, build_model(presets.get(preset), seed=0))
    at.button_group(key=f"{key}_source").set_value("upload")
    run(at)
    for size in ODD_SIZES:
        at.file_uploader(key=f"{key}_upload").upload("odd.png", png(size))
        run(at)  # no exception box
        assert not at.error, texts(at.error)
        assert image_captions(at) == [f"upload: odd.png · {size[0]}×{size[1]}",
                                      f"what the model receives · {model_side}×{model_side}"]
        assert any("The model says" in line for line in texts(at.markdown))


@pytest.mark.parametrize("page, key", [("inspect_rnn", "rnn"), ("inspect_attention", "attention"),
                                       ("attributions", "attr")])
def test_the_text_box_takes_a_long_paste_so_that_the_page_can_answer_it(page, key):
    """The browser drops a paste longer than the box's max_chars without a word, so the box takes
    up to MAX_TEXT_CHARS and the page says what it does with a text that long."""
    preset = "sentiment-lstm" if page == "inspect_rnn" else "sentiment-transformer"
    at = open_page(page, build_model(presets.get(preset), seed=0))
    box = at.text_area(key=f"{key}_text")
    assert box.proto.max_chars == MAX_TEXT_CHARS >= 200_000
    box.set_value("the film was good " * 1_111 + "abc")  # 20,001 characters in one line
    run(at)
    assert texts(at.warning) == ["Line 1 has 20,001 characters; a sentence here can have at most 2,000: "
                                 "shorten it, or put one sentence per line."]
    at.text_area(key=f"{key}_text").set_value(("the film was good\n" * 11_112)[:200_000])
    run(at)
    assert not at.warning
    assert "Your text has 11,112 lines; only the first 8 are read." in captions(at)


@pytest.mark.parametrize("page, key", [("inspect_attention", "attention"), ("attributions", "attr")])
def test_several_lines_on_a_one_sentence_page_let_the_user_choose_one(page, key):
    at = open_page(page, build_model(presets.get("sentiment-transformer"), seed=0))
    at.text_area(key=f"{key}_text").set_value("the film was good\n\nthe plot was not dull\n")
    run(at)
    choice = at.selectbox(key=f"{key}_line")
    assert choice.options == ["1: the film was good", "2: the plot was not dull"] and choice.value == 0
    assert "Your text has several lines; this page reads one sentence at a time: choose it below." in captions(at)
    chips = " ".join(t for t in texts(at.markdown) if "gb-tokens" in t)
    assert "film" in chips and "plot" not in chips
    choice.set_value(1)
    run(at)
    chips = " ".join(t for t in texts(at.markdown) if "gb-tokens" in t)
    assert "plot" in chips and "film" not in chips
    if page == "inspect_attention":
        assert figure(at, "attention_head_map")["data"][0]["y"] == ["[CLS]", "the", "plot", "was", "not", "dull"]
    at.text_area(key=f"{key}_text").set_value("one line only")  # the choice left from before does not break it
    run(at)
    assert not at.get("selectbox") or all(s.key != f"{key}_line" for s in at.selectbox)
    assert "one" in " ".join(t for t in texts(at.markdown) if "gb-tokens" in t)
