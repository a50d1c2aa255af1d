"""The Model page's design widgets: the preset picker, the design editor (one widget per setting
of the spec's family), the shapes table and "Use this model".

They edit the session's working spec (``editor_state``): each widget is seeded from it
whenever the widget's key is missing, because Streamlit forgets a widget's value while its
page is not shown. The preset picker keeps its own value for the session
(``persist_state="session"``): its key is also written before the picker is ever drawn (the
session's first spec), and without it that first value came back after a page change. The
CNN layer table is ``layer_table``'s.

The design is not the current model until "Use this model" builds it; ``design_status`` says
so while they differ.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from app_pages import common
from app_pages import editor_state as editor
from app_pages.editor_state import EDIT_PREFIX, PRESET
from app_pages.layer_table import layer_table_editor, with_editor_hints
from models import ModelSpec, SpecError, build_model, presets, shape_text

# ---- widget keys (browser and app tests find widgets by these) -------------------------
RESET_PRESET = "reset_preset"
EDIT_CURRENT = "edit_current"
NAME = "edit_name"
NUM_CLASSES = "edit_num_classes"
CLASS_NAMES = "edit_class_names"
USE_MODEL = "use_model"


# ---- preset picker --------------------------------------------------------------------
def preset_picker() -> None:
    _seed(PRESET, st.session_state[editor.WORKING_PRESET])
    choose, reset, edit_current = st.columns([2, 1, 1], vertical_alignment="bottom")
    with choose:
        st.selectbox("Preset", presets.names(), key=PRESET, index=None, placeholder="Choose a preset…",
                     on_change=_on_preset_chosen, persist_state="session")
    chosen = st.session_state.get(PRESET)
    with reset:
        st.button("Start again from this preset", key=RESET_PRESET, on_click=_on_preset_chosen,
                  disabled=not chosen, width="stretch", help="Undo every change made since the preset was chosen.")
    with edit_current:
        st.button("Edit the current model", key=EDIT_CURRENT, on_click=_on_edit_current, width="stretch",
                  help="Put the current model's design in the editor below.")
    if chosen:
        st.caption(presets.describe(chosen))
    else:
        st.caption(f"Editing {st.session_state[editor.WORKING_SPEC].name}. Choose a preset to start again from one.")


def _on_preset_chosen() -> None:
    name = st.session_state.get(PRESET)
    if name:
        editor.load_into_editor(presets.get(name), preset=name)
    else:  # the choice was cleared: keep the design, forget where it came from
        st.session_state[editor.WORKING_PRESET] = None


def _on_edit_current() -> None:
    editor.load_into_editor(common.current_model().spec)


# ---- design editor --------------------------------------------------------------------
@dataclass(frozen=True)
class Field:
    """One setting of a spec, edited by one widget."""

    part: str  # "input", "rnn", "transformer", or "" for the spec itself
    attr: str
    label: str
    kind: str = "int"  # int | float | bool | choice
    choices: tuple[tuple[str, str], ...] = ()  # choice: (value, label shown)
    low: int = 1  # int: smallest value the widget accepts
    help: str | None = None

    @property
    def key(self) -> str:
        return f"{EDIT_PREFIX}{self.part}_{self.attr}" if self.part else f"{EDIT_PREFIX}{self.attr}"

    def get(self, spec: ModelSpec):
        return getattr(getattr(spec, self.part) if self.part else spec, self.attr)

    def set(self, spec: ModelSpec, value) -> None:
        setattr(getattr(spec, self.part) if self.part else spec, self.attr, value)


INPUT_FIELDS = {
    "image": [
        Field("input", "channels", "Colour channels", help="1 for grey pictures, 3 for colour (RGB)"),
        Field("input", "height", "Height (pixels)"),
        Field("input", "width", "Width (pixels)"),
    ],
    "tokens": [
        Field("input", "vocab_size", "Vocabulary size", low=2,
              help="How many different words the model knows; ids 0 and 1 are <pad> and <unk>."),
        Field("input", "max_len", "Longest sentence (words)"),
    ],
    "sequence": [
        Field("input", "features", "Numbers per time step"),
        Field("input", "max_len", "Longest sequence (steps)"),
    ],
}
RNN_FIELDS = [
    Field("rnn", "cell", "Cell", "choice", (("rnn", "RNN (tanh)"), ("lstm", "LSTM"), ("gru", "GRU"))),
    Field("rnn", "embed_dim", "Embedding size", help="Length of the vector each word becomes."),
    Field("rnn", "hidden_size", "Hidden size", help="Units in the hidden state h_t."),
    Field("rnn", "num_layers", "Stacked layers"),
    Field("rnn", "dropout", "Dropout between layers", "float", help="Used while training only."),
    Field("rnn", "bidirectional", "Also read right to left", "bool"),
]
TRANSFORMER_FIELDS = [
    Field("transformer", "d_model", "Width (d_model)", help="Length of every token's vector."),
    Field("transformer", "num_heads", "Attention heads", help="The width must split evenly into the heads."),
    Field("transformer", "num_layers", "Blocks"),
    Field("transformer", "mlp_ratio", "MLP ratio", help="Each block's MLP is this many times wider than d_model."),
    Field("transformer", "dropout", "Dropout", "float", help="Used while training only."),
    Field("transformer", "positional", "Positions", "choice", (("learned", "learned"), ("sinusoidal", "sinusoidal (fixed)"))),
    Field("transformer", "norm", "Layer norm", "choice", (("pre", "before each sub-layer (pre)"), ("post", "after each sub-layer (post, 2017)"))),
    Field("transformer", "pooling", "Summary of the tokens", "choice", (("cls", "a [CLS] token"), ("mean", "mean of all tokens"))),
]
PATCH_FIELD = Field("transformer", "patch_size", "Patch size (pixels)", help="The image is cut into square patches of this side.")
CLASSES_FIELD = Field("", "num_classes", "Classes", help="How many answers the classifier chooses between.")


def design_fields(spec: ModelSpec) -> list[Field]:
    """The settings of ``spec``'s family, except the CNN layer table."""
    fields = list(INPUT_FIELDS.get(spec.input.kind, []))
    if spec.kind == "rnn":
        fields += RNN_FIELDS
    elif spec.kind == "transformer":
        fields += TRANSFORMER_FIELDS + ([PATCH_FIELD] if spec.input.kind == "image" else [])
    return fields


def design_editor() -> tuple[ModelSpec, list[str]]:
    """Draw the editor for the working spec; return the spec as edited and the problems the
    editor itself found (``spec.validate()`` finds the rest)."""
    spec = copy.deepcopy(st.session_state[editor.WORKING_SPEC])
    problems: list[str] = []

    _seed(NAME, spec.name)
    name_column, _ = st.columns(2)
    with name_column:
        spec.name = st.text_input("Name", key=NAME,
                                  help="Shown in the sidebar and used as the file name when saving.").strip()

    st.markdown(f"**{spec.family()}** settings")
    _field_grid(design_fields(spec), spec)

    st.markdown("**Classifier**")
    left, right = st.columns([1, 3])
    with left:
        _field_widget(CLASSES_FIELD, spec, on_change=_fit_class_names)
    with right:
        _seed(CLASS_NAMES, ", ".join(spec.class_names))
        names = st.text_input("Class names (comma-separated, optional)", key=CLASS_NAMES)
        spec.class_names = _split_names(names)

    if spec.kind == "cnn":
        st.markdown("**Layers** (in order; the classifier is added after the last one)")
        spec.layers, layer_problems = layer_table_editor()
        problems += layer_problems

    st.session_state[editor.WORKING_SPEC] = spec
    return spec, problems


def _seed(key: str, value) -> None:
    if key not in st.session_state:
        st.session_state[key] = value


def _field_grid(fields: list[Field], spec: ModelSpec, per_row: int = 4) -> None:
    for start in range(0, len(fields), per_row):
        for column, field in zip(st.columns(per_row), fields[start:start + per_row]):
            with column:
                _field_widget(field, spec)


def _field_widget(field: Field, spec: ModelSpec, on_change=None) -> None:
    """Draw one setting's widget and write its value into ``spec``."""
    value = field.get(spec)
    if field.kind == "float" and isinstance(value, int):
        value = float(value)  # number_input refuses an int value with float limits
    _seed(field.key, value)
    if field.kind == "int":
        value = st.number_input(field.label, key=field.key, min_value=field.low, step=1,
                                help=field.help, on_change=on_change)
    elif field.kind == "float":
        value = st.number_input(field.label, key=field.key, min_value=0.0, max_value=0.99, step=0.05,
                                format="%.2f", help=field.help, on_change=on_change)
    elif field.kind == "bool":
        value = st.checkbox(field.label, key=field.key, help=field.help, on_change=on_change)
    else:
        labels = dict(field.choices)
        if st.session_state[field.key] not in labels:  # e.g. a checkpoint with a value the UI lacks
            labels[st.session_state[field.key]] = str(st.session_state[field.key])
        value = st.selectbox(field.label, list(labels), key=field.key, format_func=labels.get,
                             help=field.help, on_change=on_change)
    field.set(spec, value)


def _split_names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _fit_class_names() -> None:
    """Keep the class names in step with the number of classes: cut, or number the new ones."""
    state = st.session_state
    names, count = _split_names(state.get(CLASS_NAMES, "")), state.get(NUM_CLASSES)
    if names and isinstance(count, int) and count >= 1:
        names = names[:count] + [str(i) for i in range(len(names), count)]
        state[CLASS_NAMES] = ", ".join(names)


# ---- the design and the current model -------------------------------------------------
def design_status(spec: ModelSpec) -> None:
    """Say when the design on this page is not the current model, and which button makes it so."""
    if common.unused_design() is None:
        return
    current = common.current_model()
    which = "changed" if spec.name == current.spec.name else common.as_markdown_text(spec.name or "no name yet")
    st.info(f"The design below ({which}) is not the current model yet: the other pages (Train, Feature maps, "
            f"...) still use {common.as_markdown_text(common.model_summary(current))}. Press **Use this model** "
            "below the shapes to build this design with fresh weights and make it the current model, or "
            "**Edit the current model** to bring its design here.",
            icon=":material/info:")


def design_problems(spec: ModelSpec) -> list[str]:
    """What ``spec.validate()`` finds, with the editor's control that fixes it named."""
    return with_editor_hints(spec.validate())


# ---- shapes and "Use this model" ----------------------------------------------------
def show_layer_table(spec: ModelSpec, valid: bool) -> None:
    """Every layer's output shape and parameter count, worked out without building anything."""
    rows = spec.layer_table()
    if rows:
        table = pd.DataFrame([{"Layer": row.name, "What it does": row.layer, "Output shape": shape_text(row.output),
                               "Parameters": row.params} for row in rows])
        st.dataframe(table, hide_index=True, width="stretch", height="content", key="layer_shapes",
                     column_config={"What it does": st.column_config.TextColumn(width="large"),
                                    "Parameters": st.column_config.NumberColumn(format="localized")})
    if valid:
        count = spec.parameter_count()
        st.metric("Total parameters", f"{count:,}")
        _trained_count_note(spec, count)
    elif rows:
        st.caption("Shapes stop at the first layer with a problem.")


def _trained_count_note(spec: ModelSpec, count: int) -> None:
    """The current model is this design trained, with another count: say why."""
    model = common.current_model()
    fitted = common.fitted_to_data(model)
    trained_count = common.parameter_count(model)
    if fitted and trained_count != count and common.is_design_of(spec, model):
        st.caption(f"This design has {count:,} parameters as set here. The current model, this design "
                   f"trained on {common.as_markdown_text(model.meta.dataset)}, has {trained_count:,}: "
                   f"training fitted {fitted} to the data.")


def use_model_button(spec: ModelSpec, problems: list[str]) -> None:
    clicked = st.button("Use this model", key=USE_MODEL, type="primary", disabled=bool(problems),
                        help="Build this design with fresh, untrained weights and make it the current model.")
    if problems:
        st.caption("Fix the problems above to use this model.")
    common.show_notice()
    if clicked:
        try:
            model = build_model(spec, seed=common.SEED)
        except SpecError as err:
            common.show_problems(err.messages)
            return
        common.make_current(model, f"Now using {common.as_markdown_text(common.model_summary(model))}.")
        st.rerun()  # the sidebar was drawn before this click was handled
