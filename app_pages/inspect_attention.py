"""Attention: where every token (or image patch) of the current Transformer looks."""
import streamlit as st

from app_pages import attention_compare
from app_pages import attention_heads as heads_ui
from app_pages import common
from app_pages import inspect_ui as ui
from app_pages.shared_views import figure_once
from explain.attention import (cls_patch_attention, head_average, inspect_attention, mean_patch_attention,
                                query_arithmetic)
from explain.heads import head_habit
from explain.layers import residual_stream, token_paths
from explain.probe import default_probe_sentence
from viz.activations import attention_heatmap
from viz.attention import LEAST_LINE_WEIGHT, attention_grid, attention_lines, patch_attention_figure, query_bars, scores_figure
from viz.labels import counted, numbered
from viz.probe import prefix_predictions_figure
from viz.token_paths import token_paths_figure

AVERAGE = heads_ui.AVERAGE  # the head choice meaning "the mean of all heads"
GRID_WIDTH = 860  # pixels a grid row is about as wide as: tiles this wide over the heads stay about square
LINES_TOKENS = 40  # tokens drawn as lines: more makes a tangle, and thousands of lines
GRID_TOKENS = 48  # tokens drawn in the all-heads grid: 144 heads of 512×512 would freeze the browser
GRID_CELLS = 150_000  # attention weights drawn in the all-heads grid (a few MB of figure)
PRETRAINED_SENTENCE = "The zorblax at the cinema was unexpectedly delightful, wasn't it?"  # words no class grammar has

st.title("Attention")
st.caption("In a Transformer every token looks at every other token and takes a weighted mix of them: "
           "the attention weights. Each block has several heads that look for different things.")
target, dataset, context = ui.page_setup("transformer")
model = target.model
picture = None
if context.kind == "image":
    picture = ui.image_input("attention", context, dataset)
    if picture is None:
        st.stop()
    inspection = ui.computed(inspect_attention, model, picture.x)
else:
    default = PRETRAINED_SENTENCE if context.pretrained is not None else \
        default_probe_sentence(context.vocab, dataset.x_val if dataset is not None else None)
    sentences = ui.sentence_inputs("attention", context, default, several=False)
    if not sentences:
        st.stop()
    inspection = ui.computed(inspect_attention, model, sentences[0].ids, context.vocab)

if model.spec.num_classes:
    x = picture.x if picture is not None else sentences[0].ids
    ui.prediction(inspection.probabilities, inspection.class_names, key="attention_prediction",
                  familiar=ui.familiarity_of(model, dataset, context, x))
else:
    st.caption(f"{common.as_markdown_text(model.spec.name)} has no classifier: it turns text into vectors, so there is no prediction "
               "to show, only what it attends to.")
if model.spec.num_classes and inspection.prefix_probabilities is not None and len(inspection.tokens) > 1:
    with st.expander("The prediction after each word"):
        ui.show_figure(figure_once(prefix_predictions_figure, inspection.tokens, inspection.prefix_probabilities,
                                                 inspection.class_names), "attention_prefix",
                       "prediction-after-each-word")

layers, heads = inspection.patterns.shape[:2]
concentrated = inspection.clearest_head
st.subheader("Every block and head at a glance")
# At most GRID_CELLS values in all: 32 tokens for 12 × 12 heads, up to GRID_TOKENS for small models.
shown = min(len(inspection.labels), GRID_TOKENS, max(16, int((GRID_CELLS / (layers * heads)) ** 0.5)))
cut = "" if shown == len(inspection.labels) else \
    f" Only the first {shown} of {len(inspection.labels)} tokens are drawn here, to keep the page quick; one " \
    "head below shows them all."
opened = heads_ui.opened(layers, heads, concentrated)
ui.show_figure(figure_once(attention_grid, inspection.patterns[:, :, :shown, :shown], inspection.labels[:shown],
                           tile=min(150, GRID_WIDTH // heads), chosen=opened, clickable=True),
               heads_ui.GRID_KEY, "attention-all-heads",
               caption=f"{layers} block{'s' if layers > 1 else ''} × {heads} heads. In each square the rows are the "
                       "tokens looking, the columns the tokens looked at; dark means a large weight. **Click a "
                       "square to open that head below** (or choose its block and head there); the open one is "
                       "framed in orange. Hovering a square names its strongest link." + cut,
               on_select=heads_ui.open_clicked_head, selection_mode="points")

st.subheader("One head")
layer, head = heads_ui.head_pickers(layers, heads)
best = f"{numbered('block', concentrated[0])} · {numbered('head', concentrated[1])}"
note = st.columns([3, 1], vertical_alignment="center")
note[0].caption(f"Opened first: **{best}**, the head whose attention is most concentrated on this input (the "
                "sharpest pattern; heads where each token looks at itself, or everyone at the same token such as "
                "[CLS] or [SEP], are passed over).")
note[1].button(f"Open {best}", key="attention_open_concentrated", on_click=heads_ui.open_head, args=concentrated,
               disabled=(layer, head) == concentrated, type="tertiary")
pattern = head_average(inspection, layer) if head == AVERAGE else inspection.patterns[layer, head]
head_name = "the mean of its heads" if head == AVERAGE else numbered("head", head)
if model.causal:
    st.caption(f"{common.as_markdown_text(model.spec.name)} is a decoder: its attention is causal. Each token looks only at itself and the "
               "tokens before it (the upper right triangle is empty), because it was trained to predict the next "
               "token without seeing it.")
ui.show_figure(figure_once(attention_heatmap, pattern, inspection.labels,
                           title=f"{numbered('Block', layer)}, {head_name}"),
               "attention_head_map",
               f"attention-block{counted(layer)}-{'mean' if head == AVERAGE else f'head{counted(head)}'}",
               caption="Each row sums to 1: how one token shares its attention among all the tokens." +
                       ("" if head == AVERAGE else
                        f" On this input: {common.as_markdown_text(head_habit(pattern, inspection.labels))}."))

attention_compare.before_and_after(model, None if picture is not None else sentences[0].ids, context.vocab,
                                   layer, head)

st.subheader(f"{numbered('Block', layer)} as lines")
drawn_heads = heads_ui.lines_heads(heads, head)
lined = min(len(inspection.labels), LINES_TOKENS)
ui.show_figure(figure_once(attention_lines, inspection.patterns[layer, :, :lined, :lined], inspection.labels[:lined],
                           heads=drawn_heads),
               "attention_lines", f"attention-lines-block{counted(layer)}",
               caption="Each token that looks (left) sends a line to each token it looks at (right), as thick as the "
                       f"weight (weights under {LEAST_LINE_WEIGHT:.0%} are left out), one colour per head. Add heads "
                       "above; click a head in the legend to hide or show it." +
                       ("" if lined == len(inspection.labels) else f" Only the first {lined} tokens are drawn."))

st.subheader("One token's attention, with the numbers")
labels = inspection.labels
query = st.selectbox("Token that looks (the query)", range(len(labels)),
                     format_func=lambda i: f"{labels[i]} ({numbered('token', i)})",
                     key="attention_query", persist_state="session") or 0
query = min(query, len(labels) - 1)
math_head = 0 if head == AVERAGE else head
if head == AVERAGE:
    st.caption(f"The numbers are for {numbered('head', math_head)} (choose another head above to see its own).")
arithmetic = query_arithmetic(inspection, layer, math_head, query)
left, right = st.columns(2)
with left:
    ui.show_figure(figure_once(query_bars, arithmetic.weights, labels, labels[query]), "attention_query_bars",
                   "query-weights",
                   caption=f"Where '{common.as_markdown_text(labels[query])}' ({numbered('token', query)}) looks in "
                           f"{numbered('block', layer)}, {numbered('head', math_head)}.")
with right:
    ui.show_figure(figure_once(scores_figure, arithmetic.scores, arithmetic.weights, labels), "attention_scores",
                   "query-scores", caption="The scores q·k/√d before the softmax, and the weights after it.")
st.latex(arithmetic.formula)
for line in arithmetic.numbers(top=3):
    st.latex(line)

st.subheader("Each token through the blocks")
stream = residual_stream(inspection.activations, layers)
paths, pca = token_paths(stream, inspection.labels)
titles = [f"PC{counted(i)} ({ratio:.0%})" for i, ratio in enumerate(pca.explained_variance_ratio)]
ui.show_figure(figure_once(token_paths_figure, paths[:GRID_TOKENS], axis_titles=titles), "attention_paths",
               "tokens-through-the-blocks",
               caption=f"Every token's vector after the embedding and after each block ({stream.shape[-1]} numbers, "
                       "squeezed to 2 with PCA fitted on all of them): a path per token, from where it starts to "
                       "where the last block leaves it. Words that end up meaning alike end up close.")

if picture is not None and inspection.patch_grid is not None:
    if inspection.has_cls:
        st.subheader("What the class token looks at")
        maps = cls_patch_attention(inspection, layer)
        about = "each head's attention from [CLS] to the image's patches"
    else:
        st.subheader("Which patches are looked at")
        maps = mean_patch_attention(inspection, layer)
        about = "the attention each patch receives, averaged over every patch that looks"
    ui.show_figure(figure_once(patch_attention_figure, picture.seen if picture.seen.shape[2] == 3 else
                                          picture.seen[:, :, 0].astype(float), maps, inspection.patch_size,
                                          titles=[numbered("head", h) for h in range(maps.shape[0])]),
                   "attention_patches", f"patch-attention-block{counted(layer)}",
                   caption=f"{numbered('Block', layer)}: {about}, drawn over the picture (bright: much attention).")

st.divider()
ui.activations_download(inspection.activations, f"{model.spec.name}-activations", key="attention_npz")
