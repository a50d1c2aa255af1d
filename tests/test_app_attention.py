"""App tests (AppTest) for the Attention page's head views on our sentiment transformer and the
built-in MiniLM: the grid is labelled and carries a click target per tile, the page opens the
most concentrated head first and says which, a click (a Plotly selection) or the pickers open
another, the lines view draws the model's own ``blocks.N.attn.pattern`` as line widths, and the
tokens-through-blocks chart gives every token its own colour and label."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from app_pages import common
from app_pages.attention_heads import GRID_KEY, HEAD_KEY, LAYER_KEY, LINES_KEY, clicked_head
from explain.heads import head_habit, most_concentrated_head
from models import build_model, presets
from training.datasets import load_dataset
from tests.app_helpers import figure, open_page, run, texts, values
from tests.test_viz_attention import bands
from viz.attention import LEAST_LINE_WEIGHT, LINE_WIDTH_PER_WEIGHT

SENTENCE = "the film was not good"
MINILM_SENTENCE = "The students at the back could not hear the teacher"  # ten words


def patterns_of(model, ids: torch.Tensor) -> np.ndarray:
    """(L, heads, T, T) from the model's own hooks, the reference every figure is checked against."""
    layers = model.spec.transformer.num_layers
    names = [f"blocks.{i}.attn.pattern" for i in range(layers)]
    model.eval()  # as the page runs it: no dropout
    _, cache = model.run_with_cache(ids.unsqueeze(0), names=names)
    return np.stack([cache[name][0].numpy() for name in names])


def drawn_lines(at) -> dict[tuple[int, int, int], float]:
    """{(head, query, key): width in pixels} of the lines view, 0-based."""
    lines = figure(at, "attention_lines")
    found = {}
    for trace in lines["data"]:
        if trace.get("fill") == "toself":
            found.update(bands(values(trace["x"]), values(trace["y"]), trace["legendgroup"], lines["layout"]))
    return found


def check_lines(at, pattern: np.ndarray, heads: list[int]) -> None:
    """The lines view draws exactly ``heads``' weights of at least LEAST_LINE_WEIGHT, each as wide as its weight."""
    drawn = drawn_lines(at)
    wanted = {(h, q, k): pattern[h, q, k] for h in heads for q, k in zip(*np.nonzero(pattern[h] >= LEAST_LINE_WEIGHT))}
    assert set(drawn) == set(wanted)
    for line, weight in wanted.items():
        assert drawn[line] == pytest.approx(weight * LINE_WIDTH_PER_WEIGHT, rel=1e-4)


def test_a_click_reaches_the_page_as_a_selection_of_the_tiles_point():
    """The event st.plotly_chart(on_select=...) keeps for a click on a tile (as Streamlit shapes it)."""
    event = {"points": [{"curve_number": 41, "point_number": 0, "point_index": 0, "x": "back", "y": "back",
                         "customdata": [1, 8]}], "point_indices": [0], "box": [], "lasso": []}
    assert clicked_head(event) == (1, 8)
    assert clicked_head({"points": [], "point_indices": [], "box": [], "lasso": []}) is None
    assert clicked_head(None) is None


def test_our_transformer_opens_its_most_concentrated_head_and_any_other_on_request():
    model = build_model(presets.get("sentiment-transformer"), seed=0)
    at = open_page("inspect_attention", model)
    at.text_area(key="attention_text").set_value(SENTENCE)
    run(at)
    ids = load_dataset("sentiment").preprocess(SENTENCE)
    pattern = patterns_of(model, ids[ids != 0])  # the sentence without its padding, as the page runs it
    grid = figure(at, GRID_KEY)
    tiles = [t for t in grid["data"] if t["type"] == "heatmap"]
    targets = [t for t in grid["data"] if t["type"] == "scatter"]
    layers, heads = model.spec.transformer.num_layers, model.spec.transformer.num_heads
    assert len(tiles) == len(targets) == layers * heads
    assert [t["customdata"][0] for t in targets] == [[b, h] for b in range(layers) for h in range(heads)]
    labels = [a["text"] for a in grid["layout"]["annotations"]]
    assert labels == [f"head {h}" for h in range(1, heads + 1)] + [f"block {b}" for b in range(1, layers + 1)]
    tokens = list(figure(at, "attention_head_map")["data"][0]["y"])
    assert tokens == ["[CLS]", "the", "film", "was", "not", "good"]
    for index, tile in enumerate(tiles):
        np.testing.assert_allclose(values(tile["z"]), pattern[index // heads, index % heads], rtol=1e-5, atol=1e-6)
    layer, head = most_concentrated_head(pattern)
    head_map = figure(at, "attention_head_map")
    np.testing.assert_allclose(values(head_map["data"][0]["z"]), pattern[layer, head], atol=1e-6)
    assert head_map["layout"]["title"]["text"] == f"Block {layer + 1}, head {head + 1}"
    assert any(f"block {layer + 1} · head {head + 1}" in c for c in texts(at.caption))
    frame, = grid["layout"]["shapes"]  # the open head is framed in the grid
    chosen_axis = grid["layout"][f"xaxis{layer * heads + head + 1 if layer or head else ''}"]
    assert [frame["x0"], frame["x1"]] == chosen_axis["domain"]
    check_lines(at, pattern[layer], [head])
    assert figure(at, "attention_lines")["layout"]["height"] > 0

    # What the grid's on_select callback does with a click on block 2, head 3; then the pickers follow.
    at.session_state[LAYER_KEY], at.session_state[HEAD_KEY], at.session_state[LINES_KEY] = 2, 2, [2, 0]
    run(at)
    assert at.number_input(key=LAYER_KEY).value == 2 and at.selectbox(key=HEAD_KEY).value == 2
    np.testing.assert_allclose(values(figure(at, "attention_head_map")["data"][0]["z"]), pattern[1, 2], atol=1e-6)
    check_lines(at, pattern[1], [0, 2])
    assert "Block 2 as lines" in texts(at.subheader)
    at.button(key="attention_open_concentrated").click()
    run(at)
    assert (at.number_input(key=LAYER_KEY).value, at.selectbox(key=HEAD_KEY).value) == (layer + 1, head)
    assert not at.exception and not at.error


def test_minilm_on_ten_words_reads_well():
    from tests.test_app_pretrained import load_on_model_page
    from models.pretrained import tokenize

    at = load_on_model_page()
    at.switch_page("app_pages/inspect_attention.py")
    run(at)
    at.text_area(key="attention_text").set_value(MINILM_SENTENCE)
    run(at)
    model = at.session_state[common.CURRENT_MODEL]
    ids, tokens, _ = tokenize(model, MINILM_SENTENCE)
    reference = patterns_of(model, ids)  # (6, 12, 12, 12)
    layer, head = most_concentrated_head(reference)
    head_map = figure(at, "attention_head_map")
    assert head_map["layout"]["title"]["text"] == f"Block {layer + 1}, head {head + 1}"  # not a washed-out mean
    np.testing.assert_allclose(values(head_map["data"][0]["z"]), reference[layer, head], rtol=1e-4, atol=1e-6)
    assert list(head_map["data"][0]["x"])[:3] == ["[CLS]", "the", "students"]
    habit = head_habit(reference[layer, head], tokens)  # what the opened head does, in words
    assert any(f"On this input: {common.as_markdown_text(habit)}." in c for c in texts(at.caption)), habit
    grid = figure(at, GRID_KEY)
    assert [a["text"] for a in grid["layout"]["annotations"]][:12] == [f"head {h}" for h in range(1, 13)]
    assert len([t for t in grid["data"] if t["type"] == "scatter"]) == 72
    check_lines(at, reference[layer], [head])
    lines = figure(at, "attention_lines")["data"]
    sides = [t for t in lines if t.get("mode") == "text"]
    assert [list(t["text"]) for t in sides] == [list(head_map["data"][0]["y"])] * 2  # tokens on both sides
    paths = [t for t in figure(at, "attention_paths")["data"] if t["type"] == "scatter"]
    assert len(paths) == len(tokens) == 12
    assert len({t["line"]["color"] for t in paths}) == 12  # no two tokens share a colour
    notes = figure(at, "attention_paths")["layout"]["annotations"]
    assert [n["text"] for n in notes] == [t["name"] for t in paths]  # one label per token, at its path's end
    assert "the (5)" in [n["text"] for n in notes]
