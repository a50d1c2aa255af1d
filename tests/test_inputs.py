"""explain.inputs: what the Inspect pages feed the model is prepared exactly as in training, and
bad input is refused in plain words."""
import io

import numpy as np
import pytest
import torch
from PIL import Image

from app_pages.inspect_ui import LEAST_SHOWN_SIDE, SHOWN_SIDE, decode_data_url, npz_bytes, shown_picture, shown_size
from explain.inputs import (MAX_SENTENCE_CHARS, MAX_SENTENCES, MAX_TEXT_CHARS, InputError, example_image, input_context, prepare_image,
                            prepare_sentence, read_image, read_text_file, split_sentences)
from models import build_model, presets
from models.checkpoint import checkpoint_bytes, load_checkpoint
from training.datasets import load_dataset
from training.datasets.preprocess import denormalize_to_uint8
from training.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def sentiment():
    return load_dataset("sentiment")


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def trained_like(preset: str, dataset):
    """A model whose checkpoint says it was trained on ``dataset`` (as a run's checkpoints do)."""
    model = build_model(presets.get(preset), seed=0)
    return load_checkpoint((checkpoint_bytes(model, meta=dataset.meta()), f"{preset}.zip"))


# ---- how inputs are prepared ----------------------------------------------------------------
def test_an_untrained_preset_borrows_its_datasets_preprocessing(digits):
    model = build_model(presets.get("digits-cnn"), seed=0)
    context = input_context(model, digits)
    assert context.kind == "image" and not context.trained and context.dataset_name == "digits"
    assert context.preprocess is digits.preprocess
    assert "not trained yet" in context.source


def test_a_trained_model_uses_its_own_checkpoint(digits):
    model = trained_like("digits-cnn", digits)
    context = input_context(model, dataset=None)  # no dataset at hand: the checkpoint is enough
    assert context.trained and context.dataset_name == "digits"
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 30), dtype=np.uint8))
    torch.testing.assert_close(context.preprocess(picture), digits.preprocess(picture))


def test_a_model_of_another_size_gets_plain_scaling(digits):
    spec = presets.get("digits-cnn")
    spec.input.height = spec.input.width = 20
    context = input_context(build_model(spec, seed=0), digits)  # digits are 16×16: they do not fit
    assert context.normalization == {"mean": [0.0], "std": [1.0]}
    x = context.preprocess(Image.new("L", (20, 20), 255))
    torch.testing.assert_close(x, torch.ones(1, 20, 20))


def test_text_models_use_the_datasets_words_or_say_they_have_none(sentiment):
    model = build_model(presets.get("sentiment-lstm"), seed=0)
    context = input_context(model, sentiment)
    assert context.vocab == sentiment.vocab and context.max_len == model.spec.input.max_len
    with pytest.raises(InputError, match="no vocabulary"):
        input_context(model, dataset=None)
    with pytest.raises(InputError, match="sentences"):  # a picture dataset cannot lend words
        input_context(model, load_dataset("shapes", n=40))


def test_a_checkpoint_vocabulary_too_large_for_the_model_is_not_used(sentiment):
    model = trained_like("sentiment-lstm", sentiment)
    model.meta.vocab = ["<pad>", "<unk>"] + [f"w{i}" for i in range(400)]  # more words than embeddings
    context = input_context(model, sentiment)
    assert not context.trained and context.vocab == sentiment.vocab


# ---- pictures -------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "GIF"])
def test_every_picture_format_is_read(fmt):
    picture = Image.new("RGB", (30, 20), (200, 10, 10))
    image = read_image(encoded(picture, fmt), f"red.{fmt.lower()}")
    assert image.size == (30, 20)


def test_an_animated_gif_gives_its_first_frame():
    frames = [Image.new("L", (8, 8), 0), Image.new("L", (8, 8), 255)]
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    image = read_image(data, "blink.gif")
    assert np.asarray(image.convert("L")).max() == 0


def test_an_uploaded_training_picture_gives_its_training_tensor(digits):
    context = input_context(build_model(presets.get("digits-cnn"), seed=0), digits)
    for index in (0, 5, 17):
        picture = example_image(context, digits.x_train[index], "example")
        again = prepare_image(context, read_image(encoded(picture.original, "PNG"), "x.png"), "upload")
        torch.testing.assert_close(again.x, digits.x_train[index], atol=1e-6, rtol=0)
        np.testing.assert_array_equal(again.seen, denormalize_to_uint8(digits.x_train[index], digits.normalization))


@pytest.mark.parametrize("data, words", [
    (b"", "is empty"),
    (b"just some text, not a picture", "is not a picture"),
    (encoded(Image.new("RGB", (64, 64)), "PNG")[:60], "could not be read"),
])
def test_things_that_are_not_pictures_are_refused(data, words):
    with pytest.raises(InputError, match=words):
        read_image(data, "upload.png")


def test_a_decompression_bomb_is_refused_before_decoding():
    bomb = encoded(Image.new("1", (7000, 7000)), "PNG")  # 49 million pixels in a few kilobytes
    assert len(bomb) < 200_000
    with pytest.raises(InputError, match="too large to open safely"):
        read_image(bomb, "bomb.png")


def test_drawing_data_urls_are_decoded_and_nonsense_refused():
    png = encoded(Image.new("L", (4, 4), 255), "PNG")
    import base64
    assert decode_data_url("data:image/png;base64," + base64.b64encode(png).decode()) == png
    for bad in ("", "data:text/html;base64,AAAA", "data:image/png;base64,@@@"):
        with pytest.raises(InputError, match="draw again"):
            decode_data_url(bad)


def test_activations_download_round_trips():
    arrays = {"conv.0.out": np.arange(6.0).reshape(1, 2, 3), "fc.0.out": np.ones(4)}
    with np.load(io.BytesIO(npz_bytes(arrays))) as loaded:
        assert sorted(loaded.files) == sorted(arrays)
        np.testing.assert_array_equal(loaded["conv.0.out"], arrays["conv.0.out"])


# ---- sentences ------------------------------------------------------------------------------
def test_sentences_are_shown_as_the_model_reads_them(sentiment):
    context = input_context(build_model(presets.get("sentiment-gru"), seed=0), sentiment)
    item = prepare_sentence(context, "The film was GOOD, zorblax")
    tokenizer = Tokenizer(sentiment.vocab)
    expected = [i for i in tokenizer.encode("The film was GOOD, zorblax", context.max_len) if i != 0]
    assert item.ids.tolist() == expected
    assert item.words[-1] == "zorblax" and item.tokens[-1] == "<unk>" and item.unknown[-1]
    assert item.unknown[:4] == [False] * 4 and item.tokens[:4] == ["the", "film", "was", "good"]


def test_long_sentences_are_cut_with_a_note(sentiment):
    context = input_context(build_model(presets.get("sentiment-gru"), seed=0), sentiment)
    item = prepare_sentence(context, " ".join(["good"] * (context.max_len + 5)))
    assert len(item.ids) == context.max_len and item.cut == 5
    assert any("last 5" in note for note in item.notes)
    unknown = prepare_sentence(context, "qwxz zzyzx")
    assert any("knows none of these words" in note for note in unknown.notes)


def test_typed_text_is_split_into_sentences_and_limited():
    assert split_sentences("  a b \n\n c  \n") == (["a b", "c"], [])
    many, notes = split_sentences("\n".join(f"s{i}" for i in range(12)), limit=8)
    assert len(many) == 8 and notes == ["your text has 12 lines; only the first 8 are read"]
    for text, words in (("   \n ", "type a sentence"), ("x" * (MAX_SENTENCE_CHARS + 1), "characters")):
        with pytest.raises(InputError, match=words):
            split_sentences(text)


def test_a_long_paste_is_answered_in_words():
    """What the text box lets through (up to MAX_TEXT_CHARS) is either read or refused with a
    message that says how long it was, never dropped without a word."""
    with pytest.raises(InputError, match=r"line 1 has 20,001 characters; a sentence here can have at most 2,000"):
        split_sentences("x" * 20_001)
    with pytest.raises(InputError, match=r"line 3 has 2,001 characters"):  # lines are counted as the user sees them
        split_sentences("a film\n\n" + "y" * 2_001)
    book = ("the film was good\n" * 11_112)[:200_000]  # 11,112 lines, the last one cut short
    sentences, notes = split_sentences(book)
    assert sentences == ["the film was good"] * MAX_SENTENCES
    assert notes == ["your text has 11,112 lines; only the first 8 are read"]
    # a long line after the ones read does not stop the ones read
    assert split_sentences("a\nb\n" + "z" * 5_000, limit=2) == (["a", "b"], ["your text has 3 lines; only the first 2 are read"])
    with pytest.raises(InputError, match=r"1,000,001 characters; at most 1,000,000"):
        split_sentences("a\n" * 500_000 + "b")
    assert MAX_TEXT_CHARS == 1_000_000


# ---- how a picture is shown -----------------------------------------------------------------
@pytest.mark.parametrize("size, shown", [
    ((16, 16), (160, 160)),  # small: blown up by a whole number (168 // 16 = 10), pixels stay square
    ((28, 28), (168, 168)),  # 168 // 28 = 6
    ((1, 1), (168, 168)),
    ((200, 160), (168, 134)),  # large: scaled down to 168 wide, 160 * 168 / 200 = 134.4
    ((224, 224), (168, 168)),
    ((300, 200), (168, 112)),
    ((4000, 3), (168, 12)),  # 3 * 168 / 4000 = 0.13 px: at least 12 px high
    ((169, 1), (168, 12)),  # 168 / 169 = 0.99 px
    ((500, 2), (168, 12)),  # 0.67 px
    ((3, 4000), (12, 168)),
    ((100, 1), (100, 12)),  # 168 // 100 = 1: as it is, then 12 px high
    ((80, 3), (160, 12)),  # 168 // 80 = 2: 160 × 6, then 12 px high
])
def test_a_picture_is_shown_at_a_readable_size(size, shown):
    assert (SHOWN_SIDE, LEAST_SHOWN_SIDE) == (168, 12)
    assert shown_size(*size) == shown
    picture = Image.new("RGB", size, "red")
    assert shown_picture(picture).size == shown
    assert shown_picture(np.zeros((size[1], size[0], 1), np.uint8)).size == shown


def test_a_small_picture_is_blown_up_with_square_pixels_and_any_mode_can_be_shown():
    two = np.array([[[0], [255]]], np.uint8)  # (H=1, W=2, C=1): black, white
    shown = np.asarray(shown_picture(two))
    assert shown.shape == (84, 168)  # 168 // 2 = 84 times
    assert (shown[:, :84] == 0).all() and (shown[:, 84:] == 255).all()
    for mode in ("P", "RGBA", "LA", "I;16", "I", "F", "1", "CMYK"):
        picture = Image.new(mode, (4000, 3))
        shown = shown_picture(picture)
        assert shown.size == (168, 12) and shown.mode in ("RGB", "RGBA", "L")


def test_text_files_are_read_and_binary_refused():
    assert read_text_file("café\nbon".encode("utf-8")) == "café\nbon"
    assert read_text_file("\ufeffhi".encode("utf-8")) == "hi"
    assert read_text_file("café".encode("latin-1")) == "café"
    for data, words in ((b"", "empty"), (b"PK\x03\x04\x00\x00binary", "not a text file")):
        with pytest.raises(InputError, match=words):
            read_text_file(data, "x.txt")
