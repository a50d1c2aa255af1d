"""No user text is read as markup in a figure (issue 12, item 9).

Plotly renders a subset of HTML in every text it draws (legends, tick labels, hover labels,
titles, annotations, bar texts): ``<b>good</b>`` in a sentence came out bold and ``<a href>``
became a link. Every figure function of viz/ that takes text is built here with hostile text in
every text argument, and the whole figure (``fig.to_plotly_json()``) is searched: no raw tag may
survive anywhere, while the escaped text is there (so the words are still shown, as typed).

The registry below must name every figure function of viz/: a new one that takes text has to be
added (and so tested), one that takes none is listed with the reason.
"""
from __future__ import annotations

import html
import importlib
import inspect
import pkgutil

import numpy as np
import pytest

import viz
from explain.probe import ProbeView
from explain.rnn import StepArithmetic
from viz.ablation import before_after_bars, head_importance_grid, part_importance_bars
from viz.lens import block_answers_figure, logit_lens_figure
from viz.activations import attention_heatmap, heatmap_grid, probability_bars
from viz.attention import attention_grid, attention_lines, patch_attention_figure, query_bars, scores_figure
from viz.attributions import attribution_figure, attribution_grid, token_attribution_figure
from viz.cnn import feature_maps_figure, receptive_field_figure
from viz.dataset_map import dataset_map_figure
from viz.faithfulness import faithfulness_curves
from viz.featurevis import climb_figure, pictures_row
from viz.live import picture_panels, sentence_panels
from viz.probe import hidden_states_figure, prefix_predictions_figure
from viz.rnn import gates_figure, step_figure, trajectory_figure, units_heatmap
from viz.sanity import similarity_curve_figure, word_cascade_figure
from viz.token_paths import token_paths_figure
from viz.training import confusion_figure, curves_figure, image_grid_figure

BOLD, LINK, SCRIPT = "<b>x</b>", '<a href="http://e?a=1&b=2">y</a>', "<script>alert(1)</script>"
HOSTILE = [BOLD, LINK, SCRIPT]
RAW_TAGS = ("<b>x", "x</b>", "<a href", "<a ", "y</a>", "<script", "</script>")  # none may survive
TEMPLATE = "say %{z}"  # a Plotly template field inside user text must not be filled in


def escaped(text: str) -> str:
    """The reference: what Plotly must receive to draw ``text`` literally (it decodes &lt; &gt; &amp;)."""
    return html.escape(text, quote=False).replace("%", "&#37;")


def strings_in(value) -> list[str]:
    """Every string anywhere in a figure's JSON (dicts, lists, numpy arrays of labels)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in strings_in(item)]
    if isinstance(value, (list, tuple)):
        return [s for item in value for s in strings_in(item)]
    if isinstance(value, np.ndarray) and value.dtype.kind in "OUS":
        return [s for item in value.ravel().tolist() for s in strings_in(item)]
    return []


def figures_of(result) -> list:
    """A figure, or every figure of the live view's rows of panels."""
    if isinstance(result, list):
        return [panel.figure for row in result for panel in row]
    return [result]


def step(token: str) -> StepArithmetic:
    units = np.linspace(-0.5, 0.5, 3)
    parts = {name: units for name in ("Wx", "Uh", "b", "pre", "value")}
    return StepArithmetic("rnn", 0, token, x=units, h_prev=units, c_prev=None, terms={"h": parts}, h=units, c=None,
                          equations=[])


def probe_view(kind: str, texts: list[str]) -> ProbeView:
    tokens, names = texts, texts[:2]
    if kind == "cnn":
        return ProbeView("cnn", names, np.array([0.3, 0.7]), filters=np.zeros((2, 1, 3, 3)),
                         feature_maps=np.zeros((2, 4, 4)))
    return ProbeView(kind, names, np.array([0.4, 0.6]), tokens=tokens,
                     prefix_probabilities=np.full((len(tokens), 2), 0.5), hidden=np.zeros((len(tokens), 3)),
                     attention=np.full((len(tokens),) * 2, 1 / len(tokens)),
                     attention_heads=np.full((2, len(tokens), len(tokens)), 1 / len(tokens)), attention_tokens=tokens)


# Each builder takes a list of (three) texts and puts them into every text argument it has.
T = len(HOSTILE)
PICTURE = np.zeros((8, 8, 3), dtype=np.uint8)
BUILDERS = {
    "attention_heatmap": lambda t: attention_heatmap(np.full((T, T), 1 / T), t, title=t[0]),
    "heatmap_grid": lambda t: heatmap_grid(np.zeros((T, 2, 2)), t),
    "probability_bars": lambda t: probability_bars(np.array([0.5, 0.3, 0.2]), t),
    "attention_grid": lambda t: attention_grid(np.full((1, 1, T, T), 1 / T), t, clickable=True),
    "attention_lines": lambda t: attention_lines(np.full((2, T, T), 1 / T), t),
    "token_paths_figure": lambda t: token_paths_figure([{"label": text, "points": np.arange(2 * T).reshape(T, 2),
                                                         "tokens": t} for text in t], axis_titles=t[:2]),
    "patch_attention_figure": lambda t: patch_attention_figure(PICTURE, np.ones((T, 2, 2)), 4, titles=t),
    "query_bars": lambda t: query_bars(np.full(T, 1 / T), t, t[0]),
    "scores_figure": lambda t: scores_figure(np.zeros(T), np.full(T, 1 / T), t),
    "attribution_figure": lambda t: attribution_figure(np.ones((4, 4)), title=t[0]),
    "attribution_grid": lambda t: attribution_grid([[(text, np.ones((4, 4))) for text in t]], row_titles=[t[0]]),
    "token_attribution_figure": lambda t: token_attribution_figure(t, np.array([1.0, -1.0, 0.5]), title=t[0]),
    "faithfulness_curves": lambda t: faithfulness_curves(np.linspace(0, 1, 3), {text: np.zeros(3) for text in t},
                                                         {text: np.ones(3) for text in t}, reference=t[1],
                                                         class_name=t[0]),
    "word_cascade_figure": lambda t: word_cascade_figure(t, t, [np.array([1.0, -1.0, 0.5])] * T, title=t[0]),
    "similarity_curve_figure": lambda t: similarity_curve_figure(t, {text: [1.0, 0.5, 0.1] for text in t},
                                                                 {text: [1.0, 0.4, 0.0] for text in t}),
    "feature_maps_figure": lambda t: feature_maps_figure(np.zeros((2, 2, 2)), title=t[0]),
    "receptive_field_figure": lambda t: receptive_field_figure(np.zeros((4, 4)), (0, 0, 2, 2), title=t[0]),
    "hidden_states_figure": lambda t: hidden_states_figure(np.zeros((T, 2)), t),
    "prefix_predictions_figure": lambda t: prefix_predictions_figure(t, np.full((T, T), 1 / T), t),
    "gates_figure": lambda t: gates_figure(np.zeros((T, 2, 2)), ["input", t[0]], t),
    "step_figure": lambda t: step(t[0]),  # replaced below: step_figure needs the StepArithmetic
    "trajectory_figure": lambda t: trajectory_figure([{"label": text, "points": np.zeros((T, 2)), "tokens": t}
                                                      for text in t], dims=2, axis_titles=t[:2]),
    "units_heatmap": lambda t: units_heatmap(np.zeros((T, 2)), t, title=t[0], colorbar=t[1]),
    "confusion_figure": lambda t: confusion_figure(np.eye(T, dtype=int), t),
    "curves_figure": lambda t: curves_figure({text: [{"type": "train", "step": 1, "loss": 1.0, "acc": 0.5}]
                                              for text in t}),
    "image_grid_figure": lambda t: image_grid_figure([np.zeros((1, 2, 2))] * T, t),
    "sentence_panels": lambda t: sentence_panels(probe_view("transformer", t)),
    "picture_panels": lambda t: picture_panels(probe_view("cnn", t), np.zeros((1, 4, 4)), t[0]),
    "head_importance_grid": lambda t: head_importance_grid(np.zeros((2, 2)), " ".join(t), marked=[(0, 1)]),
    "part_importance_bars": lambda t: part_importance_bars(np.array([0.1, -0.2]), " ".join(t), t[1], marked=[1]),
    "before_after_bars": lambda t: before_after_bars(np.full(T, 1 / T), np.full(T, 1 / T), t),
    "block_answers_figure": lambda t: block_answers_figure(np.full((2, T), 1 / T), t),
    "logit_lens_figure": lambda t: logit_lens_figure(t, [[t] * T] * 2, np.full((2, T, T), 1 / T)),
    "pictures_row": lambda t: pictures_row([np.zeros((2, 2))] * T, t, title=t[0]),
    "climb_figure": lambda t: climb_figure(np.arange(3.0), 0.0, 1.0, 2.0, what=" ".join(t)),
    "dataset_map_figure": lambda t: dataset_map_figure(np.zeros((T, 2)), np.arange(T), np.arange(T), np.arange(T), t,
                                                       examples=t, title=t[0]),
}
BUILDERS["step_figure"] = lambda t: step_figure(step(t[0]))
NO_USER_TEXT = {  # figure functions whose every text is made in viz/ itself, never typed by a user
    "filters_figure": "weights only",
    "pooling_figure": "kind is 'max' or 'avg', from the model",
    "conv_arithmetic_figure": "numbers and the layer's hook name",
    "for_projector": "re-sizes a figure another viz function made; adds no text (checked below)",
}


def figure_functions() -> set[str]:
    """Every public function of viz/ that returns a figure (or the live view's panels)."""
    found = set()
    for info in pkgutil.iter_modules(viz.__path__):
        module = importlib.import_module(f"viz.{info.name}")
        for name, function in inspect.getmembers(module, inspect.isfunction):
            returns = str(function.__annotations__.get("return", ""))
            if function.__module__ == module.__name__ and not name.startswith("_") and \
                    ("Figure" in returns or "Panel" in returns):
                found.add(name)
    return found


def test_every_figure_function_of_viz_is_checked_or_takes_no_user_text():
    found = figure_functions()
    assert found == set(BUILDERS) | set(NO_USER_TEXT), (
        f"not in the registry: {sorted(found - set(BUILDERS) - set(NO_USER_TEXT))}; "
        f"gone: {sorted(set(BUILDERS) | set(NO_USER_TEXT) - found)}")


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_hostile_text_reaches_the_figure_escaped_and_never_as_a_tag(name):
    strings = [s for fig in figures_of(BUILDERS[name](HOSTILE)) for s in strings_in(fig.to_plotly_json())]
    assert strings, "the figure has no text at all"
    survivors = sorted({tag for s in strings for tag in RAW_TAGS if tag in s})
    assert not survivors, f"raw tags in the figure: {survivors}"
    everything = "\n".join(strings)
    assert "&amp;amp;" not in everything and "&amp;lt;" not in everything, "text escaped twice"
    wanted = [BOLD] if name in ("step_figure", "attribution_figure", "feature_maps_figure",
                                "receptive_field_figure", "picture_panels") else HOSTILE
    for text in wanted:
        assert escaped(text) in everything, f"{text!r} is not shown (escaped) in the figure"


@pytest.mark.parametrize("name", sorted(set(BUILDERS) - {"attribution_figure", "receptive_field_figure",
                                                          "feature_maps_figure", "picture_panels"}))
def test_a_template_field_in_user_text_is_not_filled_in(name):
    texts = [TEMPLATE, "b", "c"]
    templates = [s for fig in figures_of(BUILDERS[name](texts)) for trace in fig.to_plotly_json()["data"]
                 for s in strings_in(trace.get("hovertemplate", "")) + strings_in(trace.get("texttemplate", ""))]
    assert not any(TEMPLATE in template for template in templates)


def test_an_escaped_title_may_still_have_two_lines_when_the_caller_asks_for_them():
    fig = image_grid_figure([np.zeros((1, 2, 2))], [(f"said {BOLD}", "is y")])
    assert fig.layout.annotations[0].text == f"said {escaped(BOLD)}<br>is y"


def test_a_3d_path_shows_words_as_typed_without_their_tags_working():
    """The 3-D scene draws its point labels with its own text engine, which reads <b>, <i>,
    <sub>, <sup>, <br> but no entities: there a tag is broken by an invisible character instead."""
    fig = trajectory_figure([{"label": LINK, "points": np.zeros((T, 3)), "tokens": HOSTILE}], dims=3)
    strings = strings_in(fig.to_plotly_json())
    assert not sorted({tag for s in strings for tag in RAW_TAGS if tag in s})
    assert [text.replace("\u200b", "") for text in fig.data[0].text] == HOSTILE  # looks exactly as typed
    assert fig.data[0].name == escaped(LINK)  # the legend is drawn as HTML, so it is escaped



@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_presenter_copy_keeps_the_text_escaped(name):
    from viz.presenter import for_projector

    for fig in figures_of(BUILDERS[name](HOSTILE)):
        before = sorted(strings_in(fig.to_plotly_json()))
        after = sorted(strings_in(for_projector(fig).to_plotly_json()))
        assert not sorted({tag for s in after for tag in RAW_TAGS if tag in s})
        assert set(before) <= set(after), "a text changed in the presenter's copy"
