"""Attributions: which parts of the input made the current model decide, by several Captum methods."""
from dataclasses import astuple

import numpy as np
import streamlit as st
import torch

from app_pages import attribution_sanity as sanity_check
from app_pages import common
from app_pages import inspect_ui as ui
from app_pages import shared_views
from app_pages.attribution_faithfulness import show_faithfulness
from app_pages.shared_views import figure_once
from explain.attributions import Settings, attribute_many, available_methods, gradcam_layers, image_baseline
from explain.predictions import class_names_of
from explain.probe import default_probe_sentence
from viz.attributions import MODES, attribution_grid, token_attribution_figure, token_attribution_html

KEPT = 16  # results kept (for the whole server) while a class flips between inputs and methods
KEPT_S = 30 * 60  # a result nobody asked for this long is dropped
PREDICTED = -1  # the target choice "whatever the model predicts"
DEFAULT_METHODS = ("saliency", "integrated_gradients", "grad_cam")
SMALL_GAP = 0.05  # Integrated Gradients: a gap up to this share of the total is small

st.title("Attributions")
st.caption("Which parts of the input made the model decide? Each method below answers with one number per "
           "pixel (or word): how much it pushed the model towards the chosen class. Methods disagree, and "
           "seeing where is part of the lesson.")
target, dataset, context = ui.page_setup(None)
model = target.model
methods = available_methods(model)  # key -> its entry in the table of methods
if not model.spec.num_classes:
    st.info(f"{common.as_markdown_text(model.spec.name)} has no classifier, so there is no class whose evidence could be shown. Load one "
            "with a classification head on the Model page (e.g. distilbert-base-uncased-finetuned-sst-2-english) "
            "or use a Glassbox model.", icon=":material/info:")
    st.stop()
if not methods:
    st.info("Attributions are shown for models that read pictures or sentences; this one reads neither.")
    st.stop()

# ---- the input --------------------------------------------------------------------------
picture = sentence = None
if context.kind == "image":
    picture = ui.image_input("attr", context, dataset)
    if picture is None:
        st.stop()
    x = picture.x
else:
    default = default_probe_sentence(context.vocab, dataset.x_val if dataset is not None else None)
    sentences = ui.sentence_inputs("attr", context, default, several=False)
    if not sentences:
        st.stop()
    sentence = sentences[0]
    x = sentence.ids

with torch.no_grad():
    probabilities = torch.softmax(ui.computed(model, x.unsqueeze(0)).float(), dim=-1)[0].numpy()
class_names = class_names_of(model)
predicted = int(np.argmax(probabilities))
ui.prediction(probabilities, class_names, key="attr_prediction", top_k=3,
              familiar=ui.familiarity_of(model, dataset, context, x))

# ---- what to compute --------------------------------------------------------------------
chosen = st.pills("Methods", list(methods), format_func=lambda key: methods[key].label, selection_mode="multi",
                  default=[m for m in DEFAULT_METHODS if m in methods] or list(methods)[:2],
                  key="attr_methods", persist_state="session")
if st.session_state[common.EXPLAINED_FOR] != shared_views.model_key(model):
    # A class chosen for another model means nothing here (another model's "3" may be "positive"):
    # back to the prediction, before the picker is drawn.
    st.session_state[common.EXPLAINED_FOR] = shared_views.model_key(model)
    st.session_state["attr_target"] = PREDICTED
left, _ = st.columns([1, 2])
with left:
    choice = st.selectbox("Explain the class", [PREDICTED] + list(range(len(class_names))), key="attr_target",
                          format_func=lambda k: f"the predicted one ({class_names[predicted]})" if k == PREDICTED
                          else class_names[k], persist_state="session",
                          help="Attributions answer 'what speaks for this class?'; pick another class to ask "
                               "what would speak for it.")
target_class = predicted if choice in (None, PREDICTED) or choice >= len(class_names) else int(choice)
chosen = [m for m in (chosen or []) if m in methods]
if not chosen:
    st.info("Choose one or more methods above.")
    st.stop()

settings = Settings()
with st.expander("Settings: display, steps, windows, SmoothGrad"):
    columns = st.columns(3)
    with columns[0]:
        mode = "signed"
        if picture is not None:
            mode = st.segmented_control("Show", list(MODES), format_func=lambda m: m, default="signed", required=True,
                                        key="attr_mode", persist_state="session",
                                        help=" · ".join(MODES.values())) or "signed"
            blend = st.slider("Heatmap over the picture", 0.0, 1.0, 0.8, 0.05, key="attr_blend",
                              persist_state="session", help="0: only the picture, 1: only the heatmap.")
        settings.n_steps = st.slider("Integrated Gradients: steps", 10, 300, settings.n_steps, 10, key="attr_steps",
                                     persist_state="session",
                                     help="More steps follow the path from the baseline more finely: a smaller delta.")
    with columns[1]:
        if picture is not None and "occlusion" in methods:
            side = min(picture.x.shape[-2:])
            settings.occlusion_window = st.slider("Occlusion: window (pixels)", 1, max(2, side // 2),
                                                  min(settings.occlusion_window, side // 2), key="attr_window",
                                                  persist_state="session")
            settings.occlusion_stride = st.slider("Occlusion: stride (pixels)", 1, max(2, side // 2),
                                                  min(settings.occlusion_stride, side // 2), key="attr_stride",
                                                  persist_state="session")
        layers = gradcam_layers(model) if "grad_cam" in methods else []
        if layers:
            settings.grad_cam_layer = st.selectbox("Grad-CAM layer", layers, index=len(layers) - 1,
                                                   key="attr_gradcam_layer", persist_state="session",
                                                   help="Deeper layers see larger parts of the picture, in coarser maps.")
    with columns[2]:
        # Sentences: the word scores come from Layer IG on the embeddings, which SmoothGrad does not wrap.
        settings.smoothgrad = picture is not None and st.toggle(
            "SmoothGrad (average over noisy copies)", key="attr_smoothgrad", persist_state="session",
            help="Wraps each gradient method in Captum's NoiseTunnel: less speckle.")
        if settings.smoothgrad:
            settings.nt_samples = st.slider("Noisy copies", 2, 50, settings.nt_samples, key="attr_nt_samples",
                                            persist_state="session")
if picture is None:
    blend = 0.0


# ---- compute (cached per model, input, target, methods and settings, once per server) ------
@st.cache_resource(show_spinner=False, max_entries=KEPT, ttl=KEPT_S)
def shared_attributions(model_key: str, input_digest: str, target_class: int, methods: tuple,
                        settings_key: tuple, label: str, _model, _x, _settings, _baselines) -> list:
    """Attributions for one model (by content: every session's copy of it shares them), input,
    class, methods and settings; the last few are kept while a class flips between inputs and
    methods (the progress bar is part of the result: on a repeat it is replayed, already emptied).
    Shared by the sessions that ask: read them only."""
    bar = st.progress(0.0, text=f"{label}: starting…")

    def progress(done: int, total: int, method_label: str) -> None:
        bar.progress(done / max(total, 1), text=f"{label}: {method_label} ({done + 1} of {total})…")

    found = ui.computed(attribute_many, _model, _x, target_class, list(methods), _settings,
                        baselines=_baselines, progress=progress)
    bar.empty()
    return found


baselines = image_baseline(x, context.normalization) if picture is not None else None


def computed_attributions(which_model, label: str) -> list:
    return shared_attributions(shared_views.model_key(which_model), shared_views.content_key(x, baselines),
                               target_class, tuple(chosen), astuple(settings), label,
                               which_model, x, settings, baselines)


def gap_verdict(delta: float, expected_total: float) -> str:
    """Integrated Gradients' convergence gap in plain words, against the total it should reach."""
    if abs(expected_total) < 1e-9:
        return ("The model's score hardly changes between the baseline and this input, so there is no total to "
                "compare the gap with.")
    share = abs(delta) / abs(expected_total)
    if share <= SMALL_GAP:
        shown = "under 0.1%" if share < 0.001 else f"{share:.1%}"
        return f"The gap is small: {shown} of the total. The scores add up."
    return (f"The gap is large: {share:.0%} of the total, so the scores do not add up yet. More steps (in the "
            "settings above) make it smaller.")


attributions = computed_attributions(model, "Trained model")

st.subheader(f"What speaks for “{common.as_markdown_text(class_names[target_class])}”")
if picture is not None:
    image = picture.seen
    ui.show_figure(figure_once(attribution_grid, [[(a.label, a.values) for a in attributions]], mode=mode,
                               image=image, blend=blend, column_scale=False),
                   "attr_grid", f"attributions-{class_names[target_class]}",
                   caption="Red: pushed towards the class; blue: pushed away (signed). Each map has its own "
                           "colour scale, under it.")
else:
    for index, attribution in enumerate(attributions):
        st.markdown(f"**{attribution.label}**")
        st.markdown(token_attribution_html(sentence.tokens, attribution.values), unsafe_allow_html=True)
        ui.show_figure(figure_once(token_attribution_figure, sentence.tokens, attribution.values),
                       f"attr_tokens_{index}",
                       f"{attribution.method}-tokens")

for attribution in attributions:
    if attribution.note:
        st.caption(f"{attribution.label}: {attribution.note}")
integrated = [a for a in attributions if a.delta is not None]
for attribution in integrated:
    st.markdown(f"**{attribution.label}: does it add up?** Integrated Gradients promises that its scores add up "
                "to how much the model's score for the class changes between the baseline "
                f"({'a black picture' if picture is not None else 'a sentence of padding'}) and this input.")
    st.latex(rf"\sum_i \text{{attribution}}_i = {attribution.total:.4f} \qquad "
             rf"f(x) - f(\text{{baseline}}) = {attribution.expected_total:.4f} \qquad "
             rf"\delta = {attribution.delta:.2e}")
    st.caption("The convergence delta is the gap between the two: the integral is approximated with "
               f"{settings.n_steps} steps, and more steps make it smaller.")
    st.markdown(gap_verdict(attribution.delta, attribution.expected_total))
if settings.smoothgrad:
    wrapped = [methods[m].label for m in chosen if methods[m].gradients]
    st.caption(f"SmoothGrad averages {', '.join(wrapped) or 'no chosen method'} over {settings.nt_samples} "
               "noisy copies of the input.")

show_faithfulness(model, x, target_class, attributions, "image" if picture is not None else "tokens", baselines,
                  settings, class_names[target_class])

# ---- the sanity check (Adebayo et al., 2018) ------------------------------------------------------
st.subheader("Sanity check: does each map depend on what the model learned?")
if st.toggle("Compare with the model with random weights", value=True, key="attr_sanity", persist_state="session",
             help="A method that shows what the model learned must change when the weights are random; one "
                  "that only finds edges in the picture will not."):
    random_attributions = computed_attributions(sanity_check.randomized_model(model), "Random weights")
    sanity_check.show(model, x, target_class, settings, baselines, attributions, random_attributions,
                      None if picture is not None else sentence.tokens)

st.divider()
ui.activations_download({a.method: a.values for a in attributions}, f"{model.spec.name}-attributions",
                        key="attr_npz", label="Download the attributions (.npz)")
