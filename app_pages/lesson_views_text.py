"""The live views of lessons 4–6: a recurrent network's memory, attention, and whether an
explanation can lie (the sanity check: ``lesson_views_sanity``).

Each view is ``view(options, key)``: it draws one step's view into the current container, its
widgets keyed from ``key`` and kept for the session. Options (from the lesson file) name the
model and the defaults: ``model``, ``sentence`` (``first``/``second``), ``word``, ``unit``,
``query``, ``block``, ``head``, counted from 1 as the student counts. The maths is the app's
own (``explain.rnn``, ``explain.attention``), the figures ``viz``'s; results are computed once
per server for the same model and input (``shared_views``).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import streamlit as st

from app_pages import common
from app_pages import inspect_ui as ui
from app_pages.inspect_target import examples_dataset
from app_pages.lesson_models import lesson_model
from app_pages.lesson_text_setup import (builtin_pretrained, computed, lesson_choice, lesson_context, lesson_number,
                                         lesson_sentence, model_note)
from app_pages.lesson_views_sanity import VIEWS as SANITY_VIEWS
from app_pages.shared_views import figure_once
from explain.attention import inspect_attention, query_arithmetic
from explain.rnn import dataset_hidden_states, fit_pca, inspect_rnn, step_arithmetic
from viz.activations import attention_heatmap
from viz.attention import attention_grid, query_bars, scores_figure
from viz.labels import counted, numbered
from viz.probe import prefix_predictions_figure
from viz.rnn import step_figure, trajectory_figure

RNN_DEMO, TRANSFORMER_DEMO = "sentiment-lstm", "sentiment-transformer"
NOT_GOOD, GOOD = "the movie is not good", "the movie is good"
PRETRAINED_SENTENCE = "The movie was not good, but the music was wonderful."
PCA_SENTENCES = 300  # validation sentences whose hidden states set the axes of the path picture
GRID_TOKENS = 24  # tokens drawn in the pretrained model's 6 × 12 grid of heads (72 tiles)
STEP_UNITS = 8  # hidden units shown in the one-step figure


# ---- shared pieces ----------------------------------------------------------------------------
def _model_of_kind(options: dict, default: str, kind: str, words: str):
    """The lesson's model (``options["model"]`` or ``default``), or None, said in words, if it is
    not a ``kind`` model."""
    model = lesson_model(options.get("model", default))
    if model.spec.kind != kind:
        st.warning(f"This view needs {words}; {common.as_markdown_text(model.spec.name)} is not one.")
        return None
    model_note(model)
    return model


def _number(options: dict, name: str, default: int) -> int:
    """A 1-based default from the lesson file (a teacher's typo falls back to ``default``)."""
    value = options.get(name, default)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _said(probabilities: np.ndarray, class_names: list[str]) -> str:
    best = int(np.argmax(probabilities))
    return f"**{common.as_markdown_text(class_names[best])}** ({probabilities[best]:.0%} sure)"


# ---- lesson 4: recurrent networks and memory ---------------------------------------------------
def _rnn_and_context(options: dict):
    """(the lesson's recurrent model, how its sentences are prepared); either None, said in words."""
    model = _model_of_kind(options, RNN_DEMO, "rnn", "a recurrent network (RNN, LSTM or GRU)")
    return model, None if model is None else lesson_context(model)


def rnn_step(options: dict, key: str) -> None:
    """One step of the recurrent layer with its numbers: the word read, the equations, one unit
    worked out, and the first units' values."""
    model, context = _rnn_and_context(options)
    sentence = None if context is None else lesson_sentence(context, f"{key}_text", options.get("sentence", NOT_GOOD))
    if sentence is None:
        return
    words = len(sentence.ids)
    pick = st.columns(2)
    word = lesson_number(f"Word (1 to {words})", words, _number(options, "word", words), f"{key}_word", pick[0])
    hidden = model.spec.rnn.hidden_size
    unit = lesson_number(f"Hidden unit (1 to {hidden})", hidden, _number(options, "unit", 1), f"{key}_unit", pick[1])
    step = computed(step_arithmetic, model, sentence.ids, word, context.vocab)
    if step is None:
        return
    st.markdown(f"Reading **{common.as_markdown_text(step.token)}** ({numbered('word', word)}) with the memory "
                "$h_{t-1}$ left by the words before it:")
    for line in step.equations:
        st.latex(line)
    st.markdown(f"The same for {numbered('unit', unit)} alone, with its numbers:")
    for line in step.unit_numbers(unit):
        st.latex(line)
    ui.show_figure(figure_once(step_figure, step, units=_number(options, "units", STEP_UNITS)), f"{key}_step",
                   "one-step", downloads=False,
                   caption=f"The first units of this step: the memory before ({'h[t-1], c[t-1]' if step.c is not None else 'h[t-1]'}), "
                           "each gate's sum before its squashing function and its value after, and the new memory.")


def rnn_paths(options: dict, key: str) -> None:
    """Two sentences' hidden states as two paths through the same picture of the hidden space."""
    model, context = _rnn_and_context(options)
    if context is None:
        return
    left, right = st.columns(2)
    with left:
        first = lesson_sentence(context, f"{key}_first", options.get("first", GOOD), "First sentence")
    with right:
        second = lesson_sentence(context, f"{key}_second", options.get("second", NOT_GOOD), "Second sentence")
    if first is None or second is None:
        return
    sentences = [first, second]
    views = [computed(inspect_rnn, model, item.ids, context.vocab) for item in sentences]
    if None in views:
        return
    for item, view in zip(sentences, views):
        st.markdown(f"“{common.as_markdown_text(item.text)}”: the model says {_said(view.probabilities, view.class_names)}.")
    dataset = examples_dataset(model)
    states, fitted_on = np.concatenate([view.hidden for view in views]), "these two sentences"
    if dataset is not None and dataset.input_kind == "tokens" and dataset.vocab == context.vocab:
        found = computed(dataset_hidden_states, model, dataset.x_val[:PCA_SENTENCES])
        if found is not None and len(found) >= 2:
            states, fitted_on = found, f"{len(found):,} hidden states of the {dataset.name} validation sentences"
    if len(states) < 2:
        st.info("Type longer sentences to draw their paths: a path needs at least two hidden states.")
        return
    pca = computed(fit_pca, states, k=2)  # once per server: thirty sessions fitting it at once swamped the CPU
    if pca is None:
        return
    paths = [{"label": item.text, "points": pca.transform(view.hidden), "tokens": view.tokens}
             for item, view in zip(sentences, views)]
    titles = [f"PC{counted(i)} ({ratio:.0%})" for i, ratio in enumerate(pca.explained_variance_ratio)]
    ui.show_figure(figure_once(trajectory_figure, paths, dims=2, axis_titles=titles), f"{key}_paths", "two-paths",
                   downloads=False,
                   caption=f"Each point is the memory $h_t$ after one word ({pca.mean.shape[0]} numbers squeezed to 2 "
                           f"with PCA fitted on {fitted_on}); the diamond is the first word. The paths share "
                           "their start until the sentences differ.")


def rnn_prefix(options: dict, key: str) -> None:
    """The prediction after every word of one sentence: where the decision turns."""
    model, context = _rnn_and_context(options)
    sentence = None if context is None else lesson_sentence(context, f"{key}_text", options.get("sentence", GOOD))
    view = None if sentence is None else computed(inspect_rnn, model, sentence.ids, context.vocab)
    if view is None:
        return
    st.markdown(f"After the whole sentence the model says {_said(view.probabilities, view.class_names)}.")
    ui.show_figure(figure_once(prefix_predictions_figure, view.tokens, view.prefix_probabilities, view.class_names),
                   f"{key}_prefix", "prediction-after-each-word", downloads=False,
                   caption="The prediction after reading up to each word: where the lines cross, the decision flips.")


# ---- lesson 5: attention ----------------------------------------------------------------------
def _sentence_attention(options: dict, key: str, model, default: str):
    """The attention of ``model`` on the lesson's sentence (a box drawn here), or None when it cannot be had."""
    context = lesson_context(model)
    sentence = None if context is None else lesson_sentence(context, f"{key}_text", options.get("sentence", default))
    return None if sentence is None else computed(inspect_attention, model, sentence.ids, context.vocab)


def attention_query(options: dict, key: str) -> None:
    """One query word's attention in one head: the scores q·k/√d, their softmax, and the output."""
    model = _model_of_kind(options, TRANSFORMER_DEMO, "transformer", "a Transformer")
    inspection = None if model is None else _sentence_attention(options, key, model, NOT_GOOD)
    if inspection is None:
        return
    labels = inspection.labels
    layers, heads = inspection.patterns.shape[:2]
    pick = st.columns(3)
    query = lesson_choice("Word that looks (the query)", len(labels), _number(options, "query", len(labels)) - 1,
                          f"{key}_query", lambda i: f"{labels[i]} ({numbered('token', i)})", pick[0])
    layer = lesson_number(f"Block (1 to {layers})", layers, _number(options, "block", 1), f"{key}_block", pick[1])
    head = lesson_number(f"Head (1 to {heads})", heads, _number(options, "head", 1), f"{key}_head", pick[2])
    arithmetic = query_arithmetic(inspection, layer, head, query)
    st.latex(arithmetic.formula)
    for line in arithmetic.numbers(top=3):
        st.latex(line)
    if arithmetic.output is not None:
        st.latex(arithmetic.output_numbers(4))
    left, right = st.columns(2)
    with left:
        ui.show_figure(figure_once(query_bars, arithmetic.weights, labels, labels[query]), f"{key}_bars",
                       "query-weights", downloads=False,
                       caption=f"Where “{common.as_markdown_text(labels[query])}” looks in {numbered('block', layer)}, "
                               f"{numbered('head', head)}: the weights α add up to 1.")
    with right:
        ui.show_figure(figure_once(scores_figure, arithmetic.scores, arithmetic.weights, labels), f"{key}_scores",
                       "query-scores", downloads=False,
                       caption="The scores q·k/√d before the softmax, and the weights after it.")


def _head_views(inspection, key: str, options: dict, grid_tokens: int, tile: int) -> None:
    """Every head at a glance, then one head chosen by block and head number, at full size."""
    labels = inspection.labels
    layers, heads = inspection.patterns.shape[:2]
    shown = min(len(labels), grid_tokens)
    cut = "" if shown == len(labels) else f" Only the first {shown} of {len(labels)} tokens are drawn here."
    ui.show_figure(figure_once(attention_grid, inspection.patterns[:, :, :shown, :shown], labels[:shown], tile=tile),
                   f"{key}_grid", "attention-all-heads", downloads=False,
                   caption=f"{layers} block{'s' if layers > 1 else ''} × {heads} "
                           "heads. In each square the rows are the tokens looking, the columns the tokens looked "
                           "at; dark means a large weight." + cut)
    pick = st.columns(2)
    layer = lesson_number(f"Block (1 to {layers})", layers, _number(options, "block", 1), f"{key}_block", pick[0])
    head = lesson_number(f"Head (1 to {heads})", heads, _number(options, "head", 1), f"{key}_head", pick[1])
    pattern = inspection.patterns[layer, head]
    ui.show_figure(figure_once(attention_heatmap, pattern, labels,
                               title=f"{numbered('Block', layer)}, {numbered('head', head)}"),
                   f"{key}_head_map", "attention-one-head", downloads=False,
                   caption="Each row sums to 1: how one token shares its attention among all the tokens.")
    strongest = pattern.argmax(axis=1)
    st.dataframe([{"token": f"{label} ({numbered('token', i)})", "looks most at": labels[j],
                   "weight": f"{pattern[i, j]:.0%}"} for i, (label, j) in enumerate(zip(labels, strongest))],
                 hide_index=True, key=f"{key}_table")


def attention_heads(options: dict, key: str) -> None:
    """Several heads of the lesson's Transformer on one sentence, and one head picked."""
    model = _model_of_kind(options, TRANSFORMER_DEMO, "transformer", "a Transformer")
    inspection = None if model is None else _sentence_attention(options, key, model, NOT_GOOD)
    if inspection is not None:
        _head_views(inspection, key, options, grid_tokens=len(inspection.labels), tile=150)


def attention_pretrained(options: dict, key: str) -> None:
    """The heads of the built-in pretrained MiniLM (6 blocks × 12 heads) on one sentence."""
    model = builtin_pretrained()
    inspection = None if model is None else _sentence_attention(options, key, model, PRETRAINED_SENTENCE)
    if inspection is not None:
        st.caption(f"{common.as_markdown_text(model.spec.name)} was trained by others on a billion sentence pairs; "
                   "it reads sub-word pieces, and [CLS] and [SEP] mark the sentence's start and end.")
        _head_views(inspection, key, options, grid_tokens=GRID_TOKENS, tile=110)


VIEWS: dict[str, Callable[[dict, str], None]] = {
    "rnn_step": rnn_step,
    "rnn_paths": rnn_paths,
    "rnn_prefix": rnn_prefix,
    "attention_query": attention_query,
    "attention_heads": attention_heads,
    "attention_pretrained": attention_pretrained,
    **SANITY_VIEWS,
}
