"""Take apart: switch heads, channels or hidden units off and watch the answer move; which parts
matter most for this input; and at which block a transformer's answer forms."""
import numpy as np
import streamlit as st

from app_pages import common
from app_pages import inspect_ui as ui
from app_pages.shared_views import dataset_key, figure_once, fitted_once
from explain.ablation import (CHANNELS, HEADS, UNITS, Comparison, ablatable, ablation_means, compare, importance,
                              kind_of)
from explain.lens import CLASSIFIER, LOGIT_LENS, block_answers, lens_kind, logit_lens
from explain.probe import default_probe_sentence
from viz.ablation import before_after_bars, head_importance_grid, part_importance_bars
from viz.labels import counted, numbered
from viz.lens import block_answers_figure, logit_lens_figure

PAGE = "take_apart"
MEAN_EXAMPLES = 512  # validation examples the means are taken over: plenty for a mean, quick to run
PRETRAINED_SENTENCE = "The film was not good, but the actors were wonderful."
MODES = {"zero": "Zero: the part gives 0", "mean": "Mean: the part gives its average over the validation data"}
LENS_TOKENS = 24  # positions drawn in the logit lens: each cell writes a token, so more would not be read
PART_WORDS = {HEADS: "head", CHANNELS: "channel", UNITS: "hidden unit"}


def means_data_fits(model, dataset, context) -> bool:
    """The validation data is in the form the model reads, so its means are the model's own."""
    spec = model.spec
    if model.is_pretrained or dataset is None or dataset.input_kind != spec.input.kind or not len(dataset.x_val):
        return False
    if spec.input.kind == "image":
        return tuple(dataset.input_shape) == (spec.input.channels, spec.input.height, spec.input.width)
    return list(dataset.vocab or []) == list(context.vocab or []) and dataset.x_val.shape[1] <= spec.input.max_len


def chosen_heads(places: dict[str, int]) -> dict[str, list[int]]:
    blocks, heads = len(places), next(iter(places.values()))
    options = list(range(blocks * heads))
    picked = st.multiselect("Heads to switch off", options, key=f"{PAGE}_heads", persist_state="session",
                            format_func=lambda i: f"block {counted(i // heads)}, head {counted(i % heads)}",
                            placeholder="Choose heads (the grid below shows which matter)")
    hooks = list(places)
    ablate: dict[str, list[int]] = {}
    for i in picked or []:
        if i < blocks * heads:
            ablate.setdefault(hooks[i // heads], []).append(i % heads)
    return ablate


def chosen_parts(places: dict[str, int], kind: str) -> tuple[str, dict[str, list[int]]]:
    hooks = list(places)
    hook = hooks[0]
    if len(hooks) > 1:
        hook = st.selectbox("Layer", hooks, index=len(hooks) - 1, key=f"{PAGE}_layer", persist_state="session",
                            format_func=lambda h: f"{h} ({places[h]} {PART_WORDS[kind]}s)") or hooks[-1]
    word = PART_WORDS[kind]
    picked = st.multiselect(f"{word.capitalize()}s to switch off", list(range(places[hook])),
                            key=f"{PAGE}_{kind}_{hook}", format_func=lambda i: numbered(word, i),
                            placeholder=f"Choose {word}s (the bars below show which matter)")
    return hook, {hook: [i for i in picked or [] if i < places[hook]]}


def show_answer(result: Comparison, name: str, class_names: list[str], switched: int, what: str) -> None:
    if result.similarity is not None:
        st.markdown(f"{common.as_markdown_text(name)} has no classifier: it turns the {what} into one "
                    "vector. With the parts switched off that vector keeps a cosine similarity of "
                    f"**{result.similarity:.3f}** to the original (1 means unchanged).")
        return
    left, right = st.columns(2)
    for column, probabilities, when in ((left, result.before, "As it is"), (right, result.after, "Switched off")):
        best = int(np.argmax(probabilities))
        column.markdown(f"**{when}:** {common.as_markdown_text(class_names[best])} ({probabilities[best]:.0%} sure)")
    if not switched:
        st.caption("Nothing is switched off yet, so both answers are the same.")
    ui.show_figure(figure_once(before_after_bars, result.before, result.after, class_names), f"{PAGE}_before_after",
                   "before-and-after", downloads=False)


st.title("Take apart")
st.caption("Change the model and watch its answer move: switch attention heads, convolution channels or "
           "hidden units off, see which of them this answer depends on, and read each block's answer.")
target, dataset, context = ui.page_setup(None)
model = target.model
places = ablatable(model)
if not places:
    st.info(f"{common.as_markdown_text(common.model_summary(model))} has no heads, channels or hidden units "
            "this page can switch off.")
    st.stop()
kind = kind_of(next(iter(places)))

if context.kind == "image":
    picture = ui.image_input(PAGE, context, dataset)
    if picture is None:
        st.stop()
    x = picture.x.unsqueeze(0)
else:
    default = PRETRAINED_SENTENCE if context.pretrained is not None else \
        default_probe_sentence(context.vocab, dataset.x_val if dataset is not None else None)
    sentences = ui.sentence_inputs(PAGE, context, default, several=False)
    if not sentences:
        st.stop()
    x = sentences[0].ids.unsqueeze(0)

st.subheader("Switch parts off")
if kind == HEADS:
    hook = next(iter(places))
    ablate = chosen_heads(places)
else:
    hook, ablate = chosen_parts(places, kind)
switched = sum(len(indices) for indices in ablate.values())
can_mean = means_data_fits(model, dataset, context)
mode = st.radio("What a switched-off part gives", list(MODES), format_func=MODES.get, key=f"{PAGE}_mode",
                horizontal=True, persist_state="session", disabled=not can_mean) or "zero"
if not can_mean:
    mode = "zero"
    st.caption("Mean ablation needs the validation data this model reads, which is not at hand here: parts give 0.")
means = None
if mode == "mean":
    means = fitted_once(ablation_means, model, dataset_key(dataset), dataset.x_val[:MEAN_EXAMPLES], list(places))
result = ui.computed(compare, model, x, ablate, mode, means)
class_names = list(model.spec.class_names)
show_answer(result, model.spec.name, class_names, switched, "picture" if context.kind == "image" else "sentence")

st.subheader("Which parts matter for this input")
if model.spec.num_classes:
    classes = list(range(len(class_names)))
    best = int(np.argmax(result.before))
    if st.session_state.get(f"{PAGE}_target") not in classes:
        st.session_state.pop(f"{PAGE}_target", None)
    target_class = st.selectbox("The class whose probability is measured", classes, index=best,
                                key=f"{PAGE}_target", format_func=lambda k: class_names[k])
    target_class = best if target_class is None else target_class
else:
    target_class = None
word = PART_WORDS[kind]
with st.spinner(f"Switching off one {word} at a time…"):
    found = ui.computed(importance, model, x, hook, target_class, mode, means)
if kind == HEADS:
    heads = next(iter(places.values()))
    blocks = list(places)
    marked = [(blocks.index(h), i) for h, indices in ablate.items() for i in indices]
    figure = figure_once(head_importance_grid, found.drops, found.measure, marked)
else:
    figure = figure_once(part_importance_bars, found.drops, found.measure, word, ablate.get(hook, []))
strongest = np.unravel_index(int(np.argmax(found.drops)), found.drops.shape)
if kind == HEADS:
    top = f"block {counted(strongest[0])}, head {counted(strongest[1])}"
else:
    top = numbered(word, strongest[0])
ui.show_figure(figure, f"{PAGE}_importance", "importance",
               caption=f"Each {word} switched off alone ({mode}). Red: the {found.measure} falls (the {word} helped "
                       f"this answer); blue: it rises. The largest fall: {top}, by {found.drops.max():.3f}. "
                       f"Outlined (or black): the {word}s switched off above.")

st.subheader("Each block's answer")
lens = lens_kind(model)
if lens == CLASSIFIER:
    answers = ui.computed(block_answers, model, x)
    after = ui.computed(block_answers, model, x, ablate, mode, means).probabilities if switched else None
    ui.show_figure(figure_once(block_answers_figure, answers.probabilities, answers.class_names, after),
                   f"{PAGE}_blocks", "each-blocks-answer",
                   caption="The model's own classifier reads each block's output as it reads the last one: where "
                           "the lines settle is the block at which the decision forms. The last block's answer is "
                           "the model's." + (" Dashed: with the chosen parts switched off." if switched else ""))
elif lens == LOGIT_LENS:
    tokens = sentences[0].tokens
    found_lens = ui.computed(logit_lens, model, x, 5, ablate, mode, means)
    shown = min(len(tokens), LENS_TOKENS)
    cut = "" if shown == len(tokens) else f" Only the first {shown} of {len(tokens)} tokens are drawn."
    ui.show_figure(figure_once(logit_lens_figure, tokens[:shown], [row[:shown] for row in found_lens.top_tokens],
                               found_lens.top_probabilities[:, :shown]),
                   f"{PAGE}_logit_lens", "logit-lens",
                   caption="The logit lens: the final layer norm and the unembedding applied to each block's "
                           "stream. Each cell is the next token that block would predict after that word "
                           "(hover for the runners-up); the last row is the model's own prediction."
                           + (" The chosen parts are switched off here." if switched else "") + cut)
elif model.spec.kind == "rnn":
    st.caption("A recurrent network has no blocks: it reads one word at a time. Its answer after each word is "
               "on the Hidden states page.")
    st.page_link("app_pages/inspect_rnn.py", label="The prediction after each word (Hidden states)",
                 icon=":material/timeline:")
elif model.spec.kind == "cnn":
    st.caption("Each block's answer is for transformers, whose blocks all keep the same kind of vector; a CNN's "
               "layers each see something else. The Feature maps page shows what each layer computes.")
elif not model.spec.num_classes:
    st.caption(f"{common.as_markdown_text(model.spec.name)} has no classifier, so no block has an answer to read; "
               "the heads above still show what its output vector depends on.")
else:
    st.caption("Each block's answer is read here for Glassbox transformers, BERT-style text classifiers and "
               "GPT-2; this pretrained model's head is not one of them. The heads above still show what its "
               "answer depends on.")
