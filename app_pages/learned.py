"""What it learned: what a CNN's filter wants to see, and the whole validation set as one map."""
import numpy as np
import streamlit as st

from app_pages import common
from app_pages import inspect_ui as ui
from app_pages.example_links import clicked_row, example_link, open_example
from app_pages.figures import plotly_chart
from app_pages.inspect_target import examples_dataset, inspection_target
from app_pages.shared_views import dataset_key, figure_once, model_key
from explain.dataset_map import dataset_map
from explain.featurevis import CLASS_SCORE, channel_count, channel_layers, top_examples, visualise
from explain.inputs import InputError, example_image, input_context
from explain.tokens import sentence_of
from models.words import with_article
from viz.dataset_map import dataset_map_figure
from viz.featurevis import climb_figure, pictures_row
from viz.labels import counted, stage_label

KEPT, KEPT_S = 32, 30 * 60  # pictures kept per server (a class tries a few dozen channels), and for how long
STEP_CHOICES = [32, 64, 128, 256, 512]
SHOWN_EXAMPLES = 6
DIMENSIONS = {2: "2-D", 3: "3-D"}
MAP_KEY = "learned_map"
OPEN_ROW, OPEN_BUTTON = "learned_open_row", "learned_open"

sentence = common.sentence


# ---- computed once per server ------------------------------------------------------------
@st.cache_resource(show_spinner=False, max_entries=KEPT, ttl=KEPT_S)
def shared_picture(key: str, hook: str, channel: int, steps: int, normalization_key: str, what: str,
                   _model, _normalization):
    """The picture that excites ``channel`` at ``hook``, for one model (by content) and number of
    steps; the progress bar is part of the result (on a repeat it is replayed, already emptied)."""
    what = common.as_markdown_text(what)  # a class name is the user's text
    bar = st.progress(0.0, text=f"Growing the picture {what} wants: starting…")

    def progress(done: int, total: int) -> None:
        bar.progress(done / total, text=f"Growing the picture {what} wants: step {done} of {total}…")

    found = visualise(_model, hook, channel, _normalization, steps=steps, progress=progress)
    bar.empty()
    return found


@st.cache_resource(show_spinner="Ranking the validation examples…", max_entries=KEPT, ttl=KEPT_S)
def shared_top_examples(key: str, data_key: str, hook: str, channel: int, _model, _x):
    return top_examples(_model, hook, channel, _x)


@st.cache_resource(show_spinner="Mapping the validation data…", max_entries=8, ttl=KEPT_S)
def shared_map(key: str, data_key: str, dims: int, _model, _dataset):
    """(the map, its figure) for one model (by content), data set and number of axes. The figure is
    made here too: its hover texts (every sentence) and its digest would cost each page run."""
    found = dataset_map(_model, _dataset.x_val, _dataset.y_val, dims=dims)
    texts = None if _dataset.input_kind == "image" else \
        [sentence_of(_dataset.x_val[int(row)], _dataset.vocab) for row in found.indices]
    return found, dataset_map_figure(found.coords, found.true, found.predicted, found.indices,
                                     list(_dataset.class_names), texts, found.explained_variance_ratio)


def _clicked() -> None:
    points = st.session_state[MAP_KEY].selection.points
    if points:
        st.session_state[common.MAP_CLICKED] = clicked_row(points[0])


# ---- the page ----------------------------------------------------------------------------
st.title("What it learned")
st.caption("Two ways to see what training put into the model: a picture grown from noise until one filter "
           "(or one class) responds as strongly as it can, and every validation example at once, placed by "
           "what the model's last layer makes of it.")
target = inspection_target()
model = target.model
dataset = examples_dataset(model)

clicked = st.session_state[common.MAP_CLICKED]
if clicked is not None and dataset is not None:
    st.session_state[common.MAP_CLICKED] = None
    link = example_link(model, dataset, clicked)
    if link is not None:
        open_example(link)

try:
    context = input_context(model, dataset)
except InputError:
    context = None  # a sequence model: it has no pictures to grow, and the map needs only its data
pictures_fit = (dataset is not None and dataset.input_kind == "image" and model.spec.input.kind == "image"
                and tuple(dataset.input_shape) == (model.spec.input.channels, model.spec.input.height,
                                                   model.spec.input.width))

# ---- what a filter wants -------------------------------------------------------------------
st.header("What a filter wants")
if model.spec.kind != "cnn":
    st.info(f"This part grows pictures for the filters of a CNN; the current model is "
            f"{common.as_markdown_text(common.model_summary(model))}. The map below works for it.",
            icon=":material/info:")
elif model.is_pretrained:
    st.info(f"{common.as_markdown_text(model.spec.name)} is a pretrained network of many layers; growing its "
            "pictures takes minutes on this server, so this part works on the CNNs built here.",
            icon=":material/info:")
elif context is None or context.kind != "image":
    st.warning("This model's pictures cannot be prepared here, so there is no picture to grow.")
else:
    layers = [*channel_layers(model), CLASS_SCORE]
    if st.session_state.get("learned_layer") not in layers:
        st.session_state.pop("learned_layer", None)  # left from another model
    if st.session_state.get("learned_class") not in range(model.spec.num_classes):
        st.session_state.pop("learned_class", None)
    pick = st.columns([2, 1, 2])
    hook = pick[0].selectbox("Layer", layers, key="learned_layer", persist_state="session",
                             format_func=lambda h: "The class score (the model's answer)" if h == CLASS_SCORE
                             else f"{stage_label(h.rsplit('.', 1)[0])} ({h})")
    if hook == CLASS_SCORE:
        classes = list(model.spec.class_names) or [str(counted(i)) for i in range(model.spec.num_classes)]
        channel = pick[1].selectbox("Class", range(len(classes)), format_func=lambda i: classes[i],
                                    key="learned_class", persist_state="session")
        what = f"the class {classes[channel]}"
    else:
        channel = ui.index_input("Channel", channel_count(model, hook), 1, "learned_channel", pick[1])
        what = f"channel {counted(channel)} of {stage_label(hook.rsplit('.', 1)[0])}"
    steps = pick[2].select_slider("Steps", STEP_CHOICES, value=256, key="learned_steps", persist_state="session",
                                  help="How long the picture is improved: more steps, a stronger picture.")
    normalization = context.normalization
    vis = shared_picture(model_key(model), hook, channel, steps, repr(normalization), what, model, normalization)
    pictures = [vis.picture, vis.start_picture]
    titles = [("what it wants", f"{vis.activation:.2f}"), ("the noise it began as", f"{vis.start_activation:.2f}")]
    top = None
    if pictures_fit:
        top = shared_top_examples(model_key(model), dataset_key(dataset), hook, channel, model, dataset.x_val)
        for row, value in zip(top.indices[:SHOWN_EXAMPLES], top.activations):
            truth = dataset.class_names[int(dataset.y_val[int(row)])]
            pictures.append(example_image(context, dataset.x_val[int(row)], "").seen)
            titles.append((f"example {counted(row)} ({truth})", f"{value:.2f}"))
    measured = "the class's score" if hook == CLASS_SCORE else "the mean over the map's positions"
    shown = ("Then the validation examples it responds to most." if top is not None
             else "The model's data is not at hand, so no examples are shown.")
    ui.show_figure(figure_once(pictures_row, pictures, titles), "learned_pictures", "what-it-wants",
                   caption=common.as_markdown_text(
                       f"Left: a picture grown from noise in {steps} steps so that {what} responds as strongly as "
                       f"it can (the value under each title: {measured}). {shown}"))
    if top is not None:
        ui.show_figure(figure_once(climb_figure, vis.history, vis.start_activation, top.mean_activation,
                                   float(top.activations[0]), what), "learned_climb", "climb",
                       caption="Each step nudges the picture to raise the value (a little shifted and blurred "
                               "each time, so that only patterns that hold up survive). The dashed lines are what "
                               "real examples give.")
    st.caption("Small CNNs see small pictures: a 16×16 filter's picture is a few strokes, not a photograph. "
               "A model that is not trained yet wants noise.")

# ---- the whole data set at once -----------------------------------------------------------
st.header("The whole data set at once")
if model.is_pretrained or dataset is None:
    st.info("The map needs the data the model was trained on; there is none for this model.", icon=":material/info:")
    st.stop()
if not model.spec.num_classes or model.features_hook() is None:
    st.info("This model has no classifier, so there is nothing to map.", icon=":material/info:")
    st.stop()
if dataset.input_kind != model.spec.input.kind or (dataset.input_kind == "image" and not pictures_fit):
    st.info(f"The {common.as_markdown_text(dataset.name)} data does not fit this model's input, so it cannot be "
            "mapped.", icon=":material/info:")
    st.stop()
dims = st.segmented_control("View", list(DIMENSIONS), format_func=DIMENSIONS.get, default=2, required=True,
                            key="learned_dims", persist_state="session")
try:
    found, figure = shared_map(model_key(model), dataset_key(dataset), int(dims or 2), model, dataset)
except (ValueError, RuntimeError, IndexError) as err:
    st.error(f"The validation data could not be mapped: {sentence(err)}")
    st.stop()
trained_here = model.meta.dataset == dataset.name
note = "" if trained_here else f" The model was not trained on the {dataset.name} data, so expect no order."
st.caption(common.as_markdown_text(
    f"{len(found.indices):,} examples of the {dataset.name} validation data"
    + (f" (spread over all {len(dataset.x_val):,})" if len(found.indices) < len(dataset.x_val) else "")
    + f", each placed by the {found.feature_size:,} numbers its classifier reads ({found.hook}), squeezed to "
      f"{int(dims or 2)} directions with PCA. Colour is the true class; a cross is a mistake "
      f"({found.accuracy:.0%} right). Close points look alike to the model." + note))
plotly_chart(figure, key=MAP_KEY, on_select=_clicked, selection_mode="points")
kind_link = example_link(model, dataset, 0)
if kind_link is not None:
    st.caption(f"Click a point to open that example on the {kind_link.title} page"
               + (" (in 3-D, hover to read its number and open it below)." if int(dims or 2) == 3 else "."))
    open_at = st.columns([1, 2])
    first_mistake = int(found.indices[int(np.argmax(found.misclassified))]) if found.misclassified.any() else 0
    row = ui.index_input(f"Example (1 to {len(dataset.x_val):,})", len(dataset.x_val), counted(first_mistake),
                         OPEN_ROW, open_at[0])
    truth = dataset.class_names[int(dataset.y_val[row])]
    if open_at[1].button(common.as_markdown_text(f"Open example {counted(row)} ({with_article(truth)}) on the "
                                                 f"{kind_link.title} page"),
                         key=OPEN_BUTTON, icon=":material/open_in_new:"):
        open_example(example_link(model, dataset, row))
