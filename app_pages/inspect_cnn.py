"""Feature maps: what every conv and pooling layer of the current CNN makes of one picture."""
import streamlit as st

from app_pages import common
from app_pages import inspect_ui as ui
from app_pages.shared_views import figure_once
from explain.cnn import conv_arithmetic, inspect_cnn, pool_windows, receptive_field
from explain.stages import inspect_stages
from models.words import weights_phrase
from viz.cnn import conv_arithmetic_figure, feature_maps_figure, pooling_figure, receptive_field_figure
from viz.labels import counted, stage_label
from viz.probe import filters_figure

PRETRAINED_MAPS = 32  # maps shown per stage of a pretrained CNN (a ResNet stage has up to 2,048)
SCALES = {"shared": "one scale for all maps", "own": "each map its own scale"}

st.title("Feature maps")
st.caption("Give the CNN a picture and follow it through the network: each filter of a conv layer slides over "
           "its input and makes one feature map (bright where the pattern is found), and each pooling layer "
           "shrinks the maps by keeping the strongest (or average) value of every window.")
target, dataset, context = ui.page_setup("cnn")
model = target.model
picture = ui.image_input("cnn", context, dataset)
if picture is None:
    st.stop()

if model.is_pretrained:  # a ResNet: its stages' maps (hundreds of layers, no arithmetic)
    stages = ui.computed(inspect_stages, model, picture.x)
    if model.spec.num_classes:
        ui.prediction(stages.probabilities, stages.class_names, key="cnn_prediction")
    st.caption(f"{common.as_markdown_text(model.spec.name)} has too many layers to show one by one: here is what each of its stages "
               "hands to the next, the first maps of each.")
    for stage in stages.stages:
        channels, height, width = stage.maps.shape
        shown = min(channels, PRETRAINED_MAPS)
        ui.show_figure(figure_once(feature_maps_figure, stage.maps[:shown], shared_scale=False), f"{stage.name}_maps",
                       stage.name.replace(".", "-"),
                       caption=f"{stage.name}: {channels} maps of {height}×{width}"
                               + (f" (the first {shown} shown)" if shown < channels else "") + ".")
    st.divider()
    ui.activations_download(stages.activations, f"{model.spec.name}-activations", key="cnn_npz")
    st.stop()

inspection = ui.computed(inspect_cnn, model, picture.x)
ui.prediction(inspection.probabilities, inspection.class_names, key="cnn_prediction",
              familiar=ui.familiarity_of(model, dataset, context, picture.x))

scale = st.segmented_control("Colour scale of the maps", list(SCALES), format_func=SCALES.get, default="shared",
                             required=True, key="cnn_scale", persist_state="session",
                             help="One scale compares channels (a weak channel looks dark); its own scale "
                                  "shows the pattern inside every channel, however weak.")
shared = scale != "own"
seen = picture.seen[:, :, 0].astype(float) if picture.seen.shape[2] == 1 else picture.seen
convs = {view.name: view for view in inspection.convs}
pools = {view.name: view for view in inspection.pools}
shown = [stage for stage in inspection.stages if stage in convs or stage in pools]
# Only the open tab is drawn (a deep CNN has hundreds of small maps); switching tabs reruns the page.
tabs = st.tabs([stage_label(s) for s in shown], key="cnn_layer_tab", on_change="rerun")

for tab, stage in zip(tabs, shown):
    if tab.open is False:
        continue
    with tab:
        if stage in convs:
            view = convs[stage]
            channels = view.pre.shape[0]
            st.markdown(f"**{stage_label(stage)}** (`{stage}`): {channels} filters of {view.kernel}×{view.kernel}, "
                        f"stride {view.stride}, "
                        f"padding {view.padding} → {channels} maps of {view.pre.shape[1]}×{view.pre.shape[2]}.")
            ui.show_figure(figure_once(filters_figure, view.weight, cols=8, tile=70), f"{stage}_filters",
                           f"{stage}-filters",
                           caption=f"The filters ({weights_phrase(model.meta, model.is_pretrained)}): red where "
                                   "the filter wants brightness, blue where it wants darkness.")
            ui.show_figure(figure_once(feature_maps_figure, view.pre, shared_scale=shared), f"{stage}_pre",
                           f"{stage}-out",
                           caption=f"Feature maps before the activation ({stage}.out): the filter's match at "
                                   "each position, negative where it is the opposite of the pattern.")
            if view.post is not None:
                ui.show_figure(figure_once(feature_maps_figure, view.post, shared_scale=shared), f"{stage}_post",
                               f"{stage}-act", caption=f"After {view.activation or 'the activation'} "
                                                       f"({view.post_name}): what the next layer receives.")
            st.markdown("**How one value is computed**")
            pick = st.columns(3)
            channel = ui.index_input("Map (channel)", channels, 1, f"{stage}_channel", pick[0])
            row = ui.index_input("Row", view.pre.shape[1], view.pre.shape[1] // 2 + 1, f"{stage}_row", pick[1])
            col = ui.index_input("Column", view.pre.shape[2], view.pre.shape[2] // 2 + 1, f"{stage}_col", pick[2])
            arithmetic = conv_arithmetic(model, inspection, view.index, channel, row, col)
            box = receptive_field(model, stage, row, col)
            left, right = st.columns([1, 2])
            with left:
                ui.show_figure(figure_once(receptive_field_figure, seen, box, title="Its receptive field on the input"),
                               f"{stage}_field", f"{stage}-receptive-field",
                               caption=f"The {box[2] - box[0]}×{box[3] - box[1]} input pixels this value depends on.")
            with right:
                ui.show_figure(figure_once(conv_arithmetic_figure, arithmetic), f"{stage}_arith", f"{stage}-arithmetic",
                               caption="The window of its input, the filter, and their product, number by number.")
            st.latex(arithmetic.formula)
            st.latex(arithmetic.numbers)
        else:
            view = pools[stage]
            channels, height, width = view.before.shape
            out_h, out_w = view.after.shape[1:]
            st.markdown(f"**{stage_label(stage)}** (`{stage}`): {view.kind} pooling, "
                        f"window {view.kernel}×{view.kernel}, stride {view.stride}"
                        f" → {height}×{width} becomes {out_h}×{out_w} in each of the {channels} maps.")
            pick = st.columns(3)
            channel = ui.index_input("Map (channel)", channels, 1, f"{stage}_channel", pick[0])
            row = ui.index_input("Output row", out_h, 1, f"{stage}_row", pick[1])
            col = ui.index_input("Output column", out_w, 1, f"{stage}_col", pick[2])
            ui.show_figure(figure_once(pooling_figure, view.before[channel], view.after[channel], view.kernel,
                                       view.stride, view.padding, view.kind, highlight=(row, col)),
                           f"{stage}_pool", f"{stage}-channel-{counted(channel)}",
                           caption="Its input (left) and output (right): the outlined window on the left becomes "
                                   "the outlined cell on the right.")
            top, left_edge, bottom, right_edge = pool_windows(view, row, col)
            window = view.before[channel, max(top, 0):bottom, max(left_edge, 0):right_edge]
            summary = "largest" if view.kind == "max" else "average"
            st.caption(f"The {summary} of the window's values {', '.join(f'{v:.2f}' for v in window.flatten()[:16])}"
                       f" is {view.after[channel, row, col]:.3f}.")
            ui.show_figure(figure_once(feature_maps_figure, view.after, shared_scale=shared), f"{stage}_maps",
                           f"{stage}-out",
                           caption=f"All {channels} pooled maps ({stage}.out).")

st.divider()
ui.activations_download(inspection.activations, f"{model.spec.name}-activations", key="cnn_npz")
