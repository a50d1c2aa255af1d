"""App tests: next to the prediction, a note that the input is far from the model's training data
appears for a photo given to the digits CNN (Feature maps page) and for a sentence of made-up
words (Hidden states page), and not for validation examples nor for a model not trained yet."""
from __future__ import annotations

from models import build_model, presets
from tests.app_helpers import open_page, run, texts
from tests.make_photo import PHOTO
from tests.test_familiarity import MADE_UP
from tests.trained_models import trained

DIGITS_NOTE = "This model only knows the digits 0–9"
SENTENCES_NOTE = "This model only knows sentences like those of the sentiment data"


def notes(at) -> list[str]:
    """The notes shown, as a person reads them (Markdown's escapes taken out)."""
    return [text.replace("\\", "") for text in texts(at.warning) if "This model only knows" in text]


def upload_photo(at, key: str):
    at.button_group(key=f"{key}_source").set_value("upload")
    run(at)
    at.file_uploader(key=f"{key}_upload").upload("photo.png", PHOTO.read_bytes())
    return run(at)


def test_the_feature_maps_page_says_a_photo_is_nothing_like_the_digits_and_a_digit_is():
    at = open_page("inspect_cnn", trained("digits-cnn"))
    assert any("The model says" in line for line in texts(at.markdown))
    assert notes(at) == []  # the first validation digit, shown by default
    for number in (7, 200, 359):
        at.number_input(key="cnn_example").set_value(number)
        run(at)
        assert notes(at) == [], number
    upload_photo(at, "cnn")
    (note,) = notes(at)
    assert note.startswith(DIGITS_NOTE) and "this picture looks nothing like them" in note
    assert note.endswith("so its answer means little.")


def test_a_model_not_trained_yet_gets_no_note_even_for_the_photo():
    at = upload_photo(open_page("inspect_cnn", build_model(presets.get("digits-cnn"), seed=0)), "cnn")
    assert any("The model says" in line for line in texts(at.markdown))
    assert notes(at) == []


def test_the_attributions_page_notes_the_photo_too():
    at = upload_photo(open_page("attributions", trained("digits-cnn")), "attr")
    (note,) = notes(at)
    assert note.startswith(DIGITS_NOTE)


def test_the_hidden_states_page_notes_a_sentence_of_made_up_words_and_only_that_one():
    at = open_page("inspect_rnn", trained("sentiment-lstm"))
    assert notes(at) == []  # the default sentences are the data's own words
    at.text_area(key="rnn_text").input(f"the film was good\n{MADE_UP}")
    run(at)
    (note,) = notes(at)
    assert note.startswith(f"Sentence 2: {SENTENCES_NOTE}") and "100% of the words" in note


def test_the_attention_page_notes_a_sentence_of_made_up_words():
    at = open_page("inspect_attention", trained("sentiment-transformer"))
    assert notes(at) == []
    at.text_area(key="attention_text").input(MADE_UP)
    run(at)
    (note,) = notes(at)
    assert note.startswith(SENTENCES_NOTE)
