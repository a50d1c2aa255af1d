"""The Model page's widgets: preset picker, design editor, CNN layer table, "Use this model",
save and load.

They edit the session's ``working_spec`` (its key and the other session keys live in
``common``, which creates them all). Each editor widget is seeded from the working spec
whenever the widget's key is missing, because Streamlit forgets a widget's value while its page
is not shown. ``load_into_editor`` is the one way to put a new spec in the editor;
``common.init_session_state`` calls it for the session's first spec, importing it when it runs
because this module imports ``common``.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from app_pages import common
from models import Layer, ModelSpec, SpecError, build_model, presets, shape_text
from models.checkpoint import CheckpointError, checkpoint_bytes, load_checkpoint
from models.spec import ACTIVATIONS, LAYER_TYPES

# ---- widget keys (browser and app tests find widgets by these) -------------------------
PRESET = "preset"
RESET_PRESET = "reset_preset"
EDIT_CURRENT = "edit_current"
EDIT_PREFIX = "edit_"  # every field of the design editor; cleared when a new spec is loaded
NAME = "edit_name"
NUM_CLASSES = "edit_num_classes"
CLASS_NAMES = "edit_class_names"
LAYER_EDITOR = "layer_editor"
MOVE_ROW = "move_row"
MOVE_UP = "move_up"
MOVE_DOWN = "move_down"
USE_MODEL = "use_model"
DOWNLOAD = "download"
UPLOAD = "upload"
UPLOAD_SPEC = "upload_spec"
LOAD_WEIGHTS = "load_weights"

CHECKPOINT_TYPES = ["zip", "safetensors", "pt", "pth"]
WEIGHTS_ONLY_TYPES = (".safetensors", ".pt", ".pth")  # carry no spec: the user names one
CURRENT_SPEC_CHOICE = "current"


# ---- preset picker --------------------------------------------------------------------
def preset_picker() -> None:
    _seed(PRESET, st.session_state[common.WORKING_PRESET])
    choose, reset, edit_current = st.columns([2, 1, 1], vertical_alignment="bottom")
    with choose:
        st.selectbox("Preset", presets.names(), key=PRESET, index=None, placeholder="Choose a preset…",
                     on_change=_on_preset_chosen)
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
        st.caption(f"Editing {st.session_state[common.WORKING_SPEC].name}. Choose a preset to start again from one.")


def _on_preset_chosen() -> None:
    name = st.session_state.get(PRESET)
    if name:
        load_into_editor(presets.get(name), preset=name)
    else:  # the choice was cleared: keep the design, forget where it came from
        st.session_state[common.WORKING_PRESET] = None


def _on_edit_current() -> None:
    load_into_editor(common.current_model().spec)


def load_into_editor(spec: ModelSpec, preset: str | None = None) -> None:
    """Make ``spec`` the one the Model page edits; its widgets are re-seeded from it.

    Call it from a callback (or before the page draws): widgets already drawn in this run
    cannot change their value.
    """
    state = st.session_state
    state[common.WORKING_SPEC] = copy.deepcopy(spec)
    state[common.WORKING_PRESET] = state[PRESET] = preset
    for key in [k for k in state if isinstance(k, str) and k.startswith(EDIT_PREFIX)]:
        del state[key]
    _restart_layer_editor([_row_from_layer(layer) for layer in spec.layers])


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
    spec = copy.deepcopy(st.session_state[common.WORKING_SPEC])
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

    st.session_state[common.WORKING_SPEC] = spec
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


# ---- the CNN layer table --------------------------------------------------------------
LAYER_COLUMNS = ["type", "channels", "kernel", "stride", "padding", "activation", "pool", "p"]
INT_COLUMNS = ("channels", "kernel", "stride", "padding")
GENERATION_COLUMN = "generation"  # hidden; a new value makes the editor forget old edits

LAYER_COLUMN_CONFIG = {
    "_index": st.column_config.NumberColumn("#", disabled=True, help="Row number, as in 'Layer to move' below"),
    "type": st.column_config.SelectboxColumn(
        "type", options=list(LAYER_TYPES), required=True, default="fc",
        help="conv: convolution · pool: pooling · fc: fully connected · batchnorm · act: activation · dropout"),
    "channels": st.column_config.NumberColumn("channels", min_value=0, step=1, default=16,
                                              help="conv: output channels · fc: output features"),
    "kernel": st.column_config.NumberColumn("kernel", min_value=1, step=1, default=3,
                                            help="conv and pool: side of the square window"),
    "stride": st.column_config.NumberColumn("stride", min_value=0, step=1, default=1,
                                            help="conv and pool: step of the window (pool: 0 means the kernel size)"),
    "padding": st.column_config.NumberColumn("padding", min_value=0, step=1, default=0,
                                             help="conv and pool: zeros added on each side"),
    "activation": st.column_config.SelectboxColumn("activation", options=list(ACTIVATIONS), default="relu",
                                                   help="act: the non-linearity"),
    "pool": st.column_config.SelectboxColumn("pool", options=["max", "avg"], default="max",
                                             help="pool: maximum or average of each window"),
    "p": st.column_config.NumberColumn("p", min_value=0.0, max_value=0.99, step=0.05, default=0.5, format="%.2f",
                                       help="dropout: chance of zeroing each unit while training"),
}


def layer_table_editor() -> tuple[list[Layer], list[str]]:
    """The CNN's layers as an editable table (add and delete rows) with Move up / Move down."""
    state = st.session_state
    if LAYER_EDITOR not in state:  # first visit, or back from another page: start from what was shown
        _restart_layer_editor(state[common.LAYER_ROWS])
    edited = st.data_editor(_layer_frame(state[common.LAYERS_BASE]), key=LAYER_EDITOR, num_rows="dynamic",
                            column_config=LAYER_COLUMN_CONFIG, column_order=LAYER_COLUMNS,
                            width="stretch")
    rows = [_clean_row(row) for row in edited.to_dict("records")]
    state[common.LAYER_ROWS] = rows
    _move_controls(rows)
    return _layers_from_rows(rows)


def _restart_layer_editor(rows: list[dict]) -> None:
    st.session_state[common.LAYER_ROWS] = [dict(row) for row in rows]
    st.session_state[common.LAYERS_BASE] = [dict(row) for row in rows]
    st.session_state[common.EDITOR_GENERATION] = st.session_state.get(common.EDITOR_GENERATION, 0) + 1


def _layer_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=LAYER_COLUMNS)
    frame = frame.astype({"type": "object", "activation": "object", "pool": "object", "p": "float64",
                          **{column: "Int64" for column in INT_COLUMNS}})
    # Row numbers as a teacher counts them. Not a RangeIndex: the editor would hide its values.
    frame.index = pd.Index(list(range(1, len(frame) + 1)), dtype="int64")
    frame[GENERATION_COLUMN] = st.session_state[common.EDITOR_GENERATION]
    return frame


# The cells each type reads; the others stay empty so the table shows what matters.
USED_COLUMNS = {
    "conv": ("channels", "kernel", "stride", "padding"),
    "pool": ("kernel", "stride", "padding", "pool"),
    "fc": ("channels",),
    "batchnorm": (),
    "act": ("activation",),
    "dropout": ("p",),
}


def _row_from_layer(layer: Layer) -> dict:
    used = USED_COLUMNS.get(layer.type, LAYER_COLUMNS)
    return {column: getattr(layer, column) if column == "type" or column in used else None
            for column in LAYER_COLUMNS}


def _clean_row(record: dict) -> dict:
    """A data-editor row as plain Python values; an empty cell becomes None."""
    row = {}
    for column in LAYER_COLUMNS:
        value = record.get(column)
        if value is None or pd.isna(value):
            row[column] = None
        elif column in INT_COLUMNS:
            row[column] = int(value)
        elif column == "p":
            row[column] = float(value)
        else:
            row[column] = str(value)
    return row


def _layers_from_rows(rows: list[dict]) -> tuple[list[Layer], list[str]]:
    layers, problems = [], []
    for position, row in enumerate(rows, start=1):
        if not row["type"]:
            problems.append(f"layer {position}: choose its type ({', '.join(LAYER_TYPES)})")
            continue
        settings = {column: row[column] for column in LAYER_COLUMNS[1:] if row[column] is not None}
        layers.append(Layer(row["type"], **settings))
    return layers, problems


def describe_row(row: dict) -> str:
    """A short label for a layer row: 'conv 8 channels, kernel 3'."""
    def cell(column: str) -> str:
        value = row.get(column)
        return "?" if value is None else f"{value:g}" if isinstance(value, float) else str(value)

    kind = row.get("type") or "(no type yet)"
    return {
        "conv": f"conv {cell('channels')} channels, kernel {cell('kernel')}",
        "pool": f"{cell('pool')} pool {cell('kernel')}",
        "fc": f"fc {cell('channels')}",
        "act": f"act {cell('activation')}",
        "dropout": f"dropout {cell('p')}",
    }.get(kind, kind)


def _move_controls(rows: list[dict]) -> None:
    if not rows:
        return
    state = st.session_state
    if not isinstance(state.get(MOVE_ROW), int) or not 0 <= state[MOVE_ROW] < len(rows):
        state[MOVE_ROW] = 0
    pick, up, down = st.columns([3, 1, 1], vertical_alignment="bottom")
    with pick:
        st.selectbox("Layer to move", list(range(len(rows))), key=MOVE_ROW,
                     format_func=lambda i: f"{i + 1}. {describe_row(rows[i])}")
    with up:
        st.button("Move up", key=MOVE_UP, on_click=_move_layer, args=(-1,), disabled=state[MOVE_ROW] == 0,
                  width="stretch")
    with down:
        st.button("Move down", key=MOVE_DOWN, on_click=_move_layer, args=(1,),
                  disabled=state[MOVE_ROW] == len(rows) - 1, width="stretch")


def _move_layer(offset: int) -> None:
    state = st.session_state
    rows, index = list(state[common.LAYER_ROWS]), state[MOVE_ROW]
    target = index + offset
    if 0 <= index < len(rows) and 0 <= target < len(rows):
        rows[index], rows[target] = rows[target], rows[index]
        _restart_layer_editor(rows)
        state[MOVE_ROW] = target  # the moved layer stays selected, so it can be moved again




# ---- shapes and "Use this model" ----------------------------------------------------
def show_layer_table(spec: ModelSpec, valid: bool) -> None:
    """Every layer's output shape and parameter count, worked out without building anything."""
    rows = spec.layer_table()
    if rows:
        table = pd.DataFrame([{"Layer": row.name, "What it does": row.layer, "Output shape": shape_text(row.output),
                               "Parameters": row.params} for row in rows])
        st.dataframe(table, hide_index=True, width="stretch", key="layer_shapes",
                     column_config={"What it does": st.column_config.TextColumn(width="large"),
                                    "Parameters": st.column_config.NumberColumn(format="localized")})
    if valid:
        st.metric("Total parameters", f"{spec.parameter_count():,}")
    elif rows:
        st.caption("Shapes stop at the first layer with a problem.")


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
        common.make_current(model, f"Now using {common.model_summary(model)}.")
        st.rerun()  # the sidebar was drawn before this click was handled


# ---- save and load --------------------------------------------------------------------
def checkpoint_file_name(model) -> str:
    return (re.sub(r"[^\w.-]+", "-", model.spec.name).strip("-.") or "model") + ".zip"


def save_button() -> None:
    model = common.current_model()
    if common.is_pretrained(model):
        st.caption(f"{model.spec.name} is a pretrained model: load it again by its name or folder below, "
                   "under Pretrained models.")
        return
    try:
        data = checkpoint_bytes(model)
    except CheckpointError as err:
        st.error(str(err))
        return
    st.download_button("Download the current model", data=data, file_name=checkpoint_file_name(model),
                       mime="application/zip", key=DOWNLOAD, on_click="ignore", icon=":material/download:")
    st.caption(f"{checkpoint_file_name(model)}: the design and the weights of {model.spec.name}, "
               "to load here again later or on another computer.")


def is_weights_only(filename: str) -> bool:
    return filename.lower().endswith(WEIGHTS_ONLY_TYPES)


def load_checkpoint_file(data: bytes, filename: str, spec: ModelSpec | None = None):
    """Load an uploaded checkpoint: (model, success message), or (None, what went wrong)."""
    try:
        model = load_checkpoint((data, filename), spec=spec)
    except CheckpointError as err:
        return None, str(err)
    return model, f"Loaded {common.model_summary(model)} from {filename}. It is now the current model."


def load_uploader() -> None:
    file = st.file_uploader("Load a checkpoint", type=CHECKPOINT_TYPES, key=UPLOAD, on_change=_on_upload,
                            help="A .zip saved by Glassbox, or bare weights (.safetensors, .pt, .pth) "
                                 "for a design you choose below.")
    if file is not None and is_weights_only(file.name):
        labels = _spec_choice_labels()
        st.selectbox("These weights belong to", list(labels), key=UPLOAD_SPEC, format_func=labels.get)
        st.button("Load weights", key=LOAD_WEIGHTS, on_click=_on_load_weights)
    result = st.session_state.get(common.LOAD_RESULT)
    if file is not None and result and result.get("file_id") == file.file_id:
        show = st.success if result["ok"] else st.error
        show(result["message"].replace("\n", "  \n"))  # keep the message's line breaks in Markdown


def _spec_choice_labels() -> dict[str, str]:
    labels = {CURRENT_SPEC_CHOICE: f"the current model ({common.current_model().spec.name})"}
    labels.update({name: f"preset {name}" for name in presets.names()})
    return labels


def _spec_for_choice(choice: str) -> ModelSpec:
    if choice == CURRENT_SPEC_CHOICE:
        return copy.deepcopy(common.current_model().spec)
    return presets.get(choice)


def _on_upload() -> None:
    # A callback runs once per new file, so a later rerun never loads the same file again
    # over what the user has done since.
    state = st.session_state
    state[common.LOAD_RESULT] = None
    file = state.get(UPLOAD)
    if file is not None and not is_weights_only(file.name):
        _load_uploaded(file, spec=None)


def _on_load_weights() -> None:
    file = st.session_state.get(UPLOAD)
    if file is not None:
        _load_uploaded(file, spec=_spec_for_choice(st.session_state.get(UPLOAD_SPEC, CURRENT_SPEC_CHOICE)))


def _load_uploaded(file, spec: ModelSpec | None) -> None:
    model, message = load_checkpoint_file(file.getvalue(), file.name, spec)
    st.session_state[common.LOAD_RESULT] = {"file_id": file.file_id, "ok": model is not None, "message": message}
    if model is not None:
        st.session_state[common.CURRENT_MODEL] = model
        load_into_editor(model.spec)


# ---- pretrained models -----------------------------------------------------------------
PRETRAINED_SOURCE = "pretrained_source"
LOAD_BUILTIN = "load_builtin_pretrained"
LOAD_PRETRAINED = "load_pretrained"


@st.cache_resource(show_spinner=False, max_entries=4)
def shared_pretrained(source: str):
    """A pretrained model, loaded once per server for everyone (tens of MB to hundreds): calls
    that hook into it take turns (models.hooks.turn_of), and nothing here changes its weights."""
    from models.pretrained import load_pretrained

    return load_pretrained(source)


def pretrained_loader() -> None:
    """Use the built-in pretrained text model, or load one by Hugging Face id or local folder."""
    from models.pretrained import BUILTIN_TEXT

    st.caption(f"Real models trained by others on far more text: they know words the class grammar never "
               f"saw. {BUILTIN_TEXT} (6 blocks × 12 heads) is built in and works offline; a Hugging Face id "
               "(e.g. distilbert-base-uncased-finetuned-sst-2-english) needs the internet the first time.")
    builtin, other = st.columns([1, 2], vertical_alignment="bottom")
    with builtin:
        st.button(f"Use {BUILTIN_TEXT} (built in)", key=LOAD_BUILTIN, on_click=_load_pretrained, args=(BUILTIN_TEXT,),
                  icon=":material/download_done:", width="stretch")
    with other:
        field, button = st.columns([3, 1], vertical_alignment="bottom")
        source = field.text_input("Hugging Face model id, or a folder on this computer", key=PRETRAINED_SOURCE,
                                  placeholder="bert-base-uncased, gpt2, /home/me/models/my-bert")
        button.button("Load", key=LOAD_PRETRAINED, on_click=_load_pretrained, args=(None,), width="stretch",
                      disabled=not (source or "").strip())
    result = st.session_state.get(common.LOAD_RESULT)
    if result and result.get("pretrained") and not result["ok"]:
        st.error(result["message"])


def _load_pretrained(source: str | None) -> None:
    from models.pretrained import PretrainedError

    source = (source or st.session_state.get(PRETRAINED_SOURCE) or "").strip()
    if not source:
        return
    try:
        with st.spinner(f"Loading {source}…"):
            model = shared_pretrained(source)
    except PretrainedError as err:
        st.session_state[common.LOAD_RESULT] = {"pretrained": True, "ok": False, "message": common.sentence(err)}
        return
    common.make_current(model, f"Now using {common.model_summary(model)}. Its attention is on the Attention "
                               "page" + (", its attributions on the Attributions page." if model.spec.num_classes
                                         else "."))
