"""Hidden states: how the current RNN, LSTM or GRU reads a sentence word by word."""
import numpy as np
import streamlit as st

from app_pages import common
from app_pages import inspect_ui as ui
from app_pages.shared_views import figure_once
from explain.probe import default_probe_sentence
from explain.rnn import dataset_hidden_states, fit_pca, inspect_rnn, step_arithmetic
from models.hooks import token_of
from viz.labels import counted, numbered
from viz.probe import prefix_predictions_figure
from viz.rnn import gates_figure, step_figure, trajectory_figure, units_heatmap

CONTRASTS = ("the film was good", "the film was not good")
DIMENSIONS = {2: "2-D", 3: "3-D"}


# One model at a time (scrubbing the slider refits for each step), for this session. The key is
# the model, its step and where the states come from: the sentences shown only seed the first fit.
@st.cache_data(show_spinner=False, scope="session", max_entries=1)
def hidden_state_pca(model_token: int, step: int | None, same_words: bool, _model, _dataset, _inspections):
    """(PCA of the hidden states or None if there are too few, what it was fitted on)."""
    if same_words:
        states, fitted_on = dataset_hidden_states(_model, _dataset.x_val), f"the {_dataset.name} validation sentences"
    else:
        states, fitted_on = np.concatenate([view.hidden for view in _inspections]), "the sentences shown"
    return (fit_pca(states, k=3) if len(states) >= 2 else None), fitted_on


st.title("Hidden states")
st.caption("A recurrent network reads a sentence one word at a time and keeps a memory, the hidden state "
           "h_t: a list of numbers updated after every word. Follow it as a path, see which units react "
           "to which words, and watch the prediction change as the sentence goes on.")
target, dataset, context = ui.page_setup("rnn")
model = target.model
vocab = context.vocab
known = set(vocab or [])
if all(word in known for line in CONTRASTS for word in line.split()):
    default = "\n".join(CONTRASTS)
else:
    default = default_probe_sentence(vocab, dataset.x_val if dataset is not None else None)
sentences = ui.sentence_inputs("rnn", context, default, several=True)
if not sentences:
    st.stop()

inspections = [ui.computed(inspect_rnn, model, item.ids, vocab) for item in sentences]
rows = [{"sentence": item.text, "prediction": view.class_names[int(np.argmax(view.probabilities))],
         "sure": f"{float(np.max(view.probabilities)):.0%}"} for item, view in zip(sentences, inspections)]
familiar = [ui.familiarity_of(model, dataset, context, item.ids) for item in sentences]
if len(sentences) > 1:
    st.dataframe(rows, hide_index=True, width="stretch")
    for number, found in enumerate(familiar, start=1):
        ui.familiarity_note(found, prefix=f"Sentence {number}: ")
else:
    ui.prediction(inspections[0].probabilities, inspections[0].class_names, key="rnn_prediction",
                  familiar=familiar[0])

# ---- trajectories --------------------------------------------------------------------------
st.subheader("The hidden state as a path")
same_words = dataset is not None and dataset.input_kind == "tokens" and dataset.vocab == vocab
pca, fitted_on = hidden_state_pca(token_of(model), target.step, same_words, model, dataset, inspections)
if pca is None:
    st.info("Type a longer sentence (or several) to draw the path: it needs at least two hidden states.")
else:
    dims = st.segmented_control("View", list(DIMENSIONS), format_func=DIMENSIONS.get, default=2, required=True,
                                key="rnn_dims", persist_state="session")
    dims = min(int(dims or 2), pca.components.shape[0])
    paths = [{"label": item.text, "points": pca.transform(view.hidden), "tokens": view.tokens}
             for item, view in zip(sentences, inspections)]
    titles = [f"PC{counted(i)} ({ratio:.0%})" for i, ratio in enumerate(pca.explained_variance_ratio)]
    ui.show_figure(figure_once(trajectory_figure, paths, dims=dims, axis_titles=titles), "rnn_trajectory", "trajectory",
                   caption=f"Each point is h_t after one word, squeezed from {pca.mean.shape[0]} numbers to {dims} "
                           f"with PCA fitted on {fitted_on}; sentences that start alike share a path until "
                           "they differ.")

# ---- one sentence in detail ----------------------------------------------------------------
st.subheader("One sentence in detail")
chosen = 0
if len(sentences) > 1:
    chosen = st.selectbox("Sentence", range(len(sentences)), format_func=lambda i: sentences[i].text,
                          key="rnn_sentence", persist_state="session") or 0
    chosen = min(chosen, len(sentences) - 1)
item, view = sentences[chosen], inspections[chosen]
ui.show_figure(figure_once(prefix_predictions_figure, view.tokens, view.prefix_probabilities, view.class_names),
               "rnn_prefix", "prediction-after-each-word",
               caption="The prediction after reading up to each word: where the lines cross, the decision flips.")
ui.show_figure(figure_once(units_heatmap, view.hidden, view.tokens), "rnn_hidden", "hidden-state",
               caption="The hidden state after each word: one row per unit (red positive, blue negative).")
if view.cell_state is not None:
    ui.show_figure(figure_once(units_heatmap, view.cell_state, view.tokens, title="cell state c_t", colorbar="c"),
                   "rnn_cell", "cell-state",
                   caption="The LSTM's cell state c_t: its long-term memory, changed only through the gates.")
if view.gates is not None:
    ui.show_figure(figure_once(gates_figure, view.gates, view.gate_names, view.tokens), "rnn_gates", "gates",
                   caption="The gates after each word: a gate near 0 shuts, near 1 lets through; the candidate (LSTM) or "
                           "new (GRU) values, from -1 to 1, are what may be written into the memory.")

# ---- one step with its numbers -------------------------------------------------------------
st.subheader("One step, with the numbers")
words = len(view.tokens)
step_index = ui.index_input(f"Word (1 to {words})", words, min(words, 2), "rnn_step")
step = step_arithmetic(model, item.ids, step_index, vocab)
st.markdown(f"Reading **{common.as_markdown_text(step.token)}** ({numbered('word', step_index)}) in the first layer"
            f"{', left to right' if model.spec.rnn.bidirectional else ''}:")
for line in step.equations:
    st.latex(line)
hidden_size = step.h.shape[0]
unit = ui.index_input(f"Hidden unit (1 to {hidden_size}) to work out", hidden_size, 1, "rnn_unit")
for line in step.unit_numbers(unit):
    st.latex(line)
ui.show_figure(figure_once(step_figure, step), "rnn_step_figure", "one-step",
               caption="The same step for the first units: each gate's sum before its squashing function, "
                       "its value after, and the new state.")

st.divider()
ui.activations_download(view.activations, f"{model.spec.name}-activations", key="rnn_npz")
