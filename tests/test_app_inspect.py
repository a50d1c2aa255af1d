"""App tests (Streamlit AppTest) for the Inspect pages: Feature maps, Hidden states, Attention.

The figures the pages draw are checked against the explain functions run on the same model and
input (a reference computed here), the inputs go through the model's own preprocessing, bad
input is answered in words, and the training-step slider shows earlier checkpoints.
"""
from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from app_pages import common
from tests.app_helpers import figure, has_figure, open_page, run, texts, values
from app_pages import inspect_target
from explain.attention import cls_patch_attention, inspect_attention
from explain.heads import most_concentrated_head
from explain.layers import residual_stream, token_paths
from explain.cnn import inspect_cnn, receptive_field
from explain.rnn import dataset_hidden_states, fit_pca, inspect_rnn, step_arithmetic
from models import build_model, presets
from training.datasets import load_dataset
from training.store import RunStore

@pytest.fixture(scope="module")
def datasets():
    return {name: load_dataset(name) for name in ("digits", "sentiment", "shapes")}


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def open_tab(at: AppTest, stage: str) -> AppTest:
    """Open the Feature maps page's tab of ``stage`` ("conv.1" -> "Conv 2")."""
    kind, index = stage.split(".")
    at.session_state["cnn_layer_tab"] = f"{kind.capitalize()} {int(index) + 1}"
    return run(at)


def choose_source(at: AppTest, page: str, source: str) -> AppTest:
    at.button_group(key=f"{page}_source").set_value(source)
    return run(at)


def latex_lines(at: AppTest) -> list[str]:
    """The page's formulas without the $$ fences st.latex wraps them in."""
    return [text.strip("$\n ") for text in texts(at.get("latex"))]


def upload(at: AppTest, key: str, name: str, data: bytes) -> AppTest:
    at.file_uploader(key=key).upload(name, data)
    return run(at)


# ---- Feature maps ---------------------------------------------------------------------------
def test_cnn_page_shows_an_examples_maps_as_the_model_computes_them(datasets):
    model = build_model(presets.get("digits-cnn"), seed=0)
    at = open_page("inspect_cnn", model)
    digits = datasets["digits"]
    reference = inspect_cnn(model, digits.x_val[0])  # the page starts on validation example 1
    bars = figure(at, "cnn_prediction")["data"][0]
    np.testing.assert_allclose(np.sort(values(bars["x"]))[::-1], np.sort(reference.probabilities)[::-1][:5], rtol=1e-5)
    for view in reference.convs:
        open_tab(at, view.name)
        pre = figure(at, f"{view.name}_pre")["data"]
        assert len(pre) == view.pre.shape[0]
        np.testing.assert_allclose(values(pre[3]["z"]), view.pre[3], rtol=1e-5, atol=1e-6)
        post = figure(at, f"{view.name}_post")["data"]
        np.testing.assert_allclose(values(post[0]["z"]), view.post[0], rtol=1e-5, atol=1e-6)
        assert any("relu" in line.lower() for line in texts(at.get("latex")))
        (filters,) = [c for c in texts(at.caption) if c.startswith("The filters (")]
        assert filters.startswith("The filters (its random starting weights: it has not been trained")  # not "learned"
    open_tab(at, "pool.0")
    pooled = figure(at, "pool.0_maps")["data"]
    assert not has_figure(at, "conv.0_pre")  # only the open tab is drawn
    np.testing.assert_allclose(values(pooled[1]["z"]), reference.pools[0].after[1], rtol=1e-5, atol=1e-6)
    assert any(c.startswith("Inputs: not trained yet") for c in texts(at.caption))
    assert not at.error


def test_cnn_arithmetic_follows_the_chosen_position(datasets):
    model = build_model(presets.get("digits-cnn"), seed=0)
    at = open_page("inspect_cnn", model)
    at.number_input(key="conv.0_channel").set_value(3)
    at.number_input(key="conv.0_row").set_value(1)
    at.number_input(key="conv.0_col").set_value(16)
    run(at)
    reference = inspect_cnn(model, datasets["digits"].x_val[0]).convs[0]
    numbers = [line for line in texts(at.get("latex")) if "patch" in line][0]
    shown = [float(n) for n in re.findall(r"-?\d+\.?\d*(?:e-?\d+)?", numbers)]
    assert shown[-1] == pytest.approx(float(reference.post[2, 0, 15]), rel=1e-3, abs=1e-4)  # after the ReLU
    assert any(n == pytest.approx(float(reference.pre[2, 0, 15]), rel=1e-3) for n in shown)  # sum + bias
    assert receptive_field(model, "conv.0", 0, 15) == (0, 14, 2, 16)  # 3×3 window, cut by the top and right edges
    (box,) = [shape for shape in figure(at, "conv.0_field")["layout"]["shapes"]]
    assert (box["x0"], box["x1"], box["y0"], box["y1"]) == (14.5, 16.5, 0.5, 2.5)  # columns 15-16, rows 1-2


@pytest.mark.parametrize("stage, row, col", [("conv.0", 9, 9), ("conv.1", 3, 7)])
def test_the_figures_name_the_position_the_inputs_chose(stage, row, col, datasets):
    """Counting from 1 on both sides (issue 12, item 5): Row 9, Column 9 in the inputs is "row 9,
    col 9" in the figure, its hover coordinates and the receptive field drawn for it."""
    model = build_model(presets.get("digits-cnn"), seed=0)
    at = open_tab(open_page("inspect_cnn", model), stage)
    at.number_input(key=f"{stage}_channel").set_value(2)
    at.number_input(key=f"{stage}_row").set_value(row)
    at.number_input(key=f"{stage}_col").set_value(col)
    run(at)
    index = int(stage.split(".")[1])
    title = figure(at, f"{stage}_arith")["layout"]["title"]["text"]
    assert title.startswith(f"Conv {index + 1}, channel 2, row {row}, col {col}:"), title
    assert any(text.startswith(f"**Conv {index + 1}**") for text in texts(at.markdown))
    top, left, bottom, right = receptive_field(model, stage, row - 1, col - 1)  # explain takes 0-based indices
    (box,) = figure(at, f"{stage}_field")["layout"]["shapes"]
    assert (box["x0"], box["x1"], box["y0"], box["y1"]) == (left + 0.5, right + 0.5, top + 0.5, bottom + 0.5)
    maps = figure(at, f"{stage}_pre")["data"][0]
    assert (maps["x0"], maps["y0"]) == (1, 1) and "row %{y}, col %{x}" in maps["hovertemplate"]


def test_an_uploaded_picture_reaches_the_model_as_in_training(datasets):
    model = build_model(presets.get("digits-cnn"), seed=0)
    at = choose_source(open_page("inspect_cnn", model), "cnn", "upload")
    picture = Image.new("RGB", (120, 90), "white")
    picture.paste((0, 0, 0), (50, 20, 62, 70))  # a dark stroke on white paper: a "1"
    at = upload(at, "cnn_upload", "one.png", png(picture))
    assert not at.error
    x = datasets["digits"].preprocess(picture)
    reference = inspect_cnn(model, x)
    pre = figure(at, "conv.0_pre")["data"]
    np.testing.assert_allclose(values(pre[0]["z"]), reference.convs[0].pre[0], rtol=1e-5, atol=1e-6)
    captions = [caption for image in at.get("image") for caption in image.captions]
    assert "upload: one.png · 120×90" in captions and "what the model receives · 16×16" in captions


@pytest.mark.parametrize("name, data, words", [
    ("notes.png", b"these are my notes, not a picture", "is not a picture"),
    ("bomb.png", png(Image.new("1", (7000, 7000))), "too large to open safely"),
])
def test_bad_pictures_are_refused_in_words_and_the_page_goes_on(name, data, words):
    at = choose_source(open_page("inspect_cnn"), "cnn", "upload")
    at = upload(at, "cnn_upload", name, data)
    assert any(words in e for e in texts(at.error)), texts(at.error)
    at = choose_source(at, "cnn", "example")  # and the page still works
    assert not at.error and at.get("plotly_chart")


def test_a_page_for_another_kind_of_model_says_so_and_offers_its_preset():
    at = open_page("inspect_cnn", build_model(presets.get("sentiment-gru"), seed=0))
    assert any("This page shows CNNs" in i for i in texts(at.info))
    at.button(key=inspect_target.USE_PRESET).click()
    run(at)
    assert at.session_state[common.CURRENT_MODEL].spec.name == "digits-cnn"
    assert at.get("plotly_chart")


# ---- Hidden states --------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["sentiment-rnn", "sentiment-lstm", "sentiment-gru"])
def test_rnn_page_draws_the_trajectories_of_both_sentences(preset, datasets):
    model = build_model(presets.get(preset), seed=0)
    at = open_page("inspect_rnn", model)
    sentiment = datasets["sentiment"]
    pca = fit_pca(dataset_hidden_states(model, sentiment.x_val), k=3)
    paths = figure(at, "rnn_trajectory")["data"]
    sentences = ["the film was good", "the film was not good"]
    for sentence in sentences:
        ids = sentiment.preprocess(sentence)
        expected = pca.transform(inspect_rnn(model, ids, sentiment.vocab).hidden)
        (trace,) = [t for t in paths if t.get("name") == sentence]
        np.testing.assert_allclose(values(trace["x"]), expected[:, 0], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(values(trace["y"]), expected[:, 1], rtol=1e-4, atol=1e-5)
    assert figure(at, "rnn_prefix") and figure(at, "rnn_hidden")
    assert (preset == "sentiment-lstm") == has_figure(at, "rnn_cell")
    assert any("h_t" in line or "h_{t-1}" in line for line in texts(at.get("latex")))


def test_the_hidden_unit_chosen_is_the_unit_worked_out(datasets):
    """"Hidden unit 3" is worked out as h_t[3], the third unit, counted from 1 as on the heatmap's
    rows (issue 12, item 5)."""
    model = build_model(presets.get("sentiment-lstm"), seed=0)
    at = open_page("inspect_rnn", model)
    at.number_input(key="rnn_step").set_value(2)
    at.number_input(key="rnn_unit").set_value(3)
    run(at)
    sentiment = datasets["sentiment"]
    step = step_arithmetic(model, sentiment.preprocess("the film was good"), 1, sentiment.vocab)
    lines = [line for line in latex_lines(at) if "_t[" in line]
    assert [line.split(" =")[0] for line in lines] == ["i_t[3]", "f_t[3]", "g_t[3]", "o_t[3]", "c_t[3]", "h_t[3]"]
    assert float(lines[-1].rsplit("=", 1)[1]) == pytest.approx(float(step.h[2]), abs=1e-3)
    assert values(figure(at, "rnn_hidden")["data"][0]["y"]).tolist() == list(range(1, 65))  # units 1..64
    assert values(figure(at, "rnn_step_figure")["data"][0]["y"]).tolist()[0] == 1


def test_rnn_page_marks_unknown_words_and_refuses_empty_text():
    at = open_page("inspect_rnn", build_model(presets.get("sentiment-lstm"), seed=0))
    at.text_area(key="rnn_text").set_value("the film was zorblax")
    run(at)
    chips = " ".join(texts(at.markdown))
    assert "zorblax → &lt;unk&gt;" in chips and "gb-unknown" in chips
    at.text_area(key="rnn_text").set_value("   ")
    run(at)
    assert any("type a sentence first" in w.lower() for w in texts(at.warning))


def test_a_txt_file_of_sentences_is_read_and_a_binary_one_refused():
    at = open_page("inspect_rnn", build_model(presets.get("sentiment-gru"), seed=0))
    at = upload(at, "rnn_text_file", "mine.txt", b"the acting is good\nthe acting is bad\nthe plot is boring\n")
    assert len(figure(at, "rnn_trajectory")["data"]) >= 3
    at = upload(at, "rnn_text_file", "photo.txt", b"\x89PNG\x00\x00binary")
    assert any("not a text file" in e for e in texts(at.error))


# ---- Attention ------------------------------------------------------------------------------
def test_attention_page_shows_every_head_and_one_querys_numbers(datasets):
    model = build_model(presets.get("sentiment-transformer"), seed=0)
    at = open_page("inspect_attention", model)
    at.text_area(key="attention_text").set_value("the film was not good")
    run(at)
    reference = inspect_attention(model, datasets["sentiment"].preprocess("the film was not good"),
                                  datasets["sentiment"].vocab)
    layers, heads = reference.patterns.shape[:2]
    grid = [trace for trace in figure(at, "attention_grid")["data"] if trace["type"] == "heatmap"]
    assert len(grid) == layers * heads
    np.testing.assert_allclose(values(grid[heads + 1]["z"]), reference.patterns[1, 1],
                               rtol=1e-5, atol=1e-6)
    assert reference.labels == ["[CLS]", "the", "film", "was", "not", "good"]
    at.selectbox(key="attention_query").set_value(4)  # "not"
    run(at)
    scores = figure(at, "attention_scores")["data"]
    layer, head = most_concentrated_head(reference.patterns)  # the head the page opens first
    np.testing.assert_allclose(values(scores[0]["y"] if scores[0].get("orientation") != "h" else scores[0]["x"]),
                               reference.scores[layer, head, 4], rtol=1e-4, atol=1e-5)
    assert any("softmax" in line for line in texts(at.get("latex")))
    # Tokens, blocks and heads are counted from 1, and a block is called a block (issue 12, item 5).
    weights = reference.patterns[layer, head, 4]
    lines = [line for line in latex_lines(at) if line.startswith("j = ")]
    assert len(lines) == 3
    for line, j in zip(lines, np.argsort(-weights, kind="stable")):
        assert line.startswith(f"j = {j + 1}") and rf"q_{{5}} \cdot k_{{{j + 1}}}" in line, line
    assert "Every block and head at a glance" in texts(at.subheader)
    words = " ".join(texts(at.subheader) + texts(at.caption) + texts(at.markdown)).lower()
    assert " layer" not in words
    titles = [a["text"] for a in figure(at, "attention_grid")["layout"]["annotations"]]
    assert titles[:heads] == [f"head {h}" for h in range(1, heads + 1)] and titles[heads] == "block 1"
    paths, _ = token_paths(residual_stream(reference.activations, layers), reference.labels)
    drawn = {trace["name"]: trace for trace in figure(at, "attention_paths")["data"] if trace.get("name")}
    for path in paths:  # each token's path through the blocks, as projected by the reference PCA
        np.testing.assert_allclose(values(drawn[path["label"]]["x"]), path["points"][:, 0], rtol=1e-4, atol=1e-6)


def test_vit_page_draws_the_class_tokens_attention_over_the_picture(datasets):
    model = build_model(presets.get("shapes-vit"), seed=0)
    at = open_page("inspect_attention", model)
    assert not at.error
    patches = figure(at, "attention_patches")
    heatmaps = [t for t in patches["data"] if t["type"] == "heatmap"]
    assert len(heatmaps) == model.spec.transformer.num_heads + 1  # one per head and their mean
    assert sum(t["type"] == "image" for t in patches["data"]) == len(heatmaps)  # each drawn over the picture
    reference = inspect_attention(model, datasets["shapes"].x_val[0])
    opened, _ = most_concentrated_head(reference.patterns)  # the page starts on the most concentrated head's block
    np.testing.assert_allclose(values(heatmaps[2]["z"]), cls_patch_attention(reference, opened)[2], rtol=1e-5, atol=1e-6)


# ---- across training ------------------------------------------------------------------------
def test_the_step_slider_shows_an_earlier_checkpoint(home, datasets):
    digits = datasets["digits"]
    store = RunStore(home)
    run_id = store.create("digits-cnn", {"status": "finished", "model": "digits-cnn", "family": "CNN",
                                         "dataset": {"name": "digits", "source": digits.source, "meta": digits.meta()}})
    early, late = (build_model(presets.get("digits-cnn"), seed=seed) for seed in (1, 2))
    for step, model in ((1, early), (40, late)):
        store.save_checkpoint(run_id, step, model, meta={**digits.meta(), "run_id": run_id, "step": step})
    current = store.load_model(run_id, 40)
    at = open_page("inspect_cnn", current)
    slider = at.select_slider(key=f"{inspect_target.STEP}_{run_id}")
    assert slider.value == 40 and list(slider.options) == ["1", "40"]
    filters = figure(at, "conv.0_filters")["data"]
    np.testing.assert_allclose(values(filters[0]["z"]),
                               late.conv[0].conv.weight[0, 0].detach().numpy(), rtol=1e-6)
    slider.set_value(1)
    run(at)
    filters = figure(at, "conv.0_filters")["data"]
    np.testing.assert_allclose(values(filters[0]["z"]),
                               early.conv[0].conv.weight[0, 0].detach().numpy(), rtol=1e-6)
    assert any("step 1 of run" in c for c in texts(at.caption))
    at.switch_page("app_pages/inspect_cnn.py")  # the choice is kept while the class moves around
    run(at)
    assert at.select_slider(key=f"{inspect_target.STEP}_{run_id}").value == 1
    assert at.session_state[common.CURRENT_MODEL] is current  # scrubbing never replaces the current model
