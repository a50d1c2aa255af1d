"""App tests for the Take apart page: what it draws is explain.ablation / explain.lens run here on
the same model and input (the reference), on a CNN, an LSTM, our transformer, the built-in MiniLM
and a tiny GPT-2 folder; choosing a head to switch off changes the answer shown."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from explain.ablation import compare, importance
from explain.inputs import prepare_sentence
from explain.lens import block_answers, logit_lens
from models import build_model, presets
from models.pretrained import BUILTIN_TEXT, load_pretrained, tokenize
from tests.app_helpers import figure, has_figure, open_page, run, texts, values
from tests.test_pretrained import tiny  # noqa: F401 - the fixture of tiny model folders
from tests.test_pretrained_vision import folders  # noqa: F401 - the fixture of tiny ResNet / ViT folders

PAGE = "take_apart"


def sentence_ids(at, model) -> torch.Tensor:
    """The ids the page read: its sentence, prepared as the page prepares it."""
    text = at.text_area(key=f"{PAGE}_text").value
    if model.is_pretrained:
        return tokenize(model, text)[0][None]
    from app_pages.inspect_target import context_for, examples_dataset
    return prepare_sentence(context_for(model, examples_dataset(model)), text).ids[None]


def test_switching_off_a_transformer_head_changes_the_answer_shown():
    model = build_model(presets.get("sentiment-transformer"), seed=0)
    at = open_page(PAGE, model)
    x = sentence_ids(at, model)
    grid = figure(at, f"{PAGE}_importance")["data"][0]
    expected = importance(model, x, "blocks.0.attn.pattern", int(np.argmax(compare(model, x, {}).before)))
    np.testing.assert_allclose(values(grid["z"]).reshape(2, 4), expected.drops, atol=1e-6)
    bars = figure(at, f"{PAGE}_before_after")["data"]
    assert np.allclose(values(bars[0]["x"]), values(bars[1]["x"]))  # nothing switched off yet
    at.multiselect(key=f"{PAGE}_heads").set_value([5])  # block 2, head 2
    run(at)
    after = compare(model, x, {"blocks.1.attn.pattern": [1]}).after
    bars = figure(at, f"{PAGE}_before_after")["data"]
    np.testing.assert_allclose(np.sort(values(bars[1]["x"])), np.sort(after), atol=1e-6)
    assert not np.allclose(values(bars[0]["x"]), values(bars[1]["x"]))
    lines = figure(at, f"{PAGE}_blocks")["data"]
    assert len(lines) == 4  # two classes as they are, and dashed with the head switched off
    for drawn, reference in ((lines[:2], block_answers(model, x)),
                             (lines[2:], block_answers(model, x, {"blocks.1.attn.pattern": [1]}))):
        shown = np.array([values(line["y"]) for line in drawn]).T  # (blocks, classes in the figure's order)
        np.testing.assert_allclose(np.sort(shown, axis=1), np.sort(reference.probabilities, axis=1), atol=1e-6)


def test_mean_ablation_of_a_cnn_channel_on_an_example():
    model = build_model(presets.get("digits-cnn"), seed=0)
    at = open_page(PAGE, model)
    assert at.radio(key=f"{PAGE}_mode").disabled is False
    bars = figure(at, f"{PAGE}_importance")["data"][0]
    assert len(values(bars["y"])) == 16  # conv 2's channels, the layer shown first
    at.multiselect(key=f"{PAGE}_channels_conv.1.act").set_value([0, 3])
    at.radio(key=f"{PAGE}_mode").set_value("mean")
    run(at)
    assert has_figure(at, f"{PAGE}_before_after")
    assert any("transformers" in text for text in texts(at.caption))  # no blocks to read on a CNN


def test_an_lstm_unit_and_the_link_to_the_prediction_after_each_word():
    model = build_model(presets.get("sentiment-lstm"), seed=0)
    at = open_page(PAGE, model)
    x = sentence_ids(at, model)
    at.multiselect(key=f"{PAGE}_units_rnn.hidden").set_value([2])
    run(at)
    after = compare(model, x, {"rnn.hidden": [2]}).after
    bars = figure(at, f"{PAGE}_before_after")["data"]
    np.testing.assert_allclose(np.sort(values(bars[1]["x"])), np.sort(after), atol=1e-6)
    assert any("inspect_rnn" in str(link.proto.page) for link in at.get("page_link"))


def test_the_builtin_minilm_shows_how_far_each_head_moves_its_sentence_vector():
    model = load_pretrained(BUILTIN_TEXT)
    at = open_page(PAGE, model)
    x = sentence_ids(at, model)
    grid = figure(at, f"{PAGE}_importance")["data"][0]
    expected = importance(model, x, "blocks.0.attn.pattern", None)
    np.testing.assert_allclose(values(grid["z"]).reshape(6, 12), expected.drops, atol=1e-5)
    assert at.radio(key=f"{PAGE}_mode").disabled  # no validation data for a pretrained model
    at.multiselect(key=f"{PAGE}_heads").set_value([0, 13])
    run(at)
    similarity = compare(model, x, {"blocks.0.attn.pattern": [0], "blocks.1.attn.pattern": [1]}).similarity
    assert any(f"{similarity:.3f}" in text for text in texts(at.markdown))
    assert any("no classifier" in text for text in texts(at.caption))


def test_a_tiny_gpt2_shows_its_logit_lens(tiny):  # noqa: F811
    model = load_pretrained(str(tiny["gpt2"]))
    at = open_page(PAGE, model)
    x = sentence_ids(at, model)
    lens = figure(at, f"{PAGE}_logit_lens")["data"][0]
    reference = logit_lens(model, x)
    shown = values(lens["z"]).reshape(2, -1)  # a tiny byte-level GPT-2 reads every letter: the first 24 are drawn
    assert shown.shape[1] == min(24, x.shape[1])
    np.testing.assert_allclose(shown, reference.top_probabilities[:, :shown.shape[1], 0], atol=1e-6)
    assert any("Only the first 24" in text for text in texts(at.caption))
    at.multiselect(key=f"{PAGE}_heads").set_value([1])
    run(at)
    assert has_figure(at, f"{PAGE}_before_after")


def test_our_vision_transformer_reads_each_blocks_answer_on_an_example():
    model = build_model(presets.get("shapes-vit"), seed=0)
    at = open_page(PAGE, model)
    lines = figure(at, f"{PAGE}_blocks")["data"]
    assert len(lines) == len(model.spec.class_names) and len(values(lines[0]["y"])) == 2



def test_a_pretrained_resnet_without_classes_shows_what_its_vector_depends_on(folders):  # noqa: F811
    from tests.test_app_pretrained import upload_picture

    model = load_pretrained(str(folders["resnet-bare"]))
    at = open_page(PAGE, model)
    at, _ = upload_picture(at, PAGE)
    bars = figure(at, f"{PAGE}_importance")["data"][0]
    assert len(values(bars["y"])) == model.activation_shape(at.selectbox(key=f"{PAGE}_layer").value)[0]
    assert any("no classifier" in text for text in texts(at.markdown))
