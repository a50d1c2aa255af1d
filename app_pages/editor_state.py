"""The Model page's editor state: the spec being edited, the CNN layer table's rows, and
``load_into_editor``, the one way to put a new spec in the editor.

``common.init_session_state`` seeds the editor with the session's first spec through this
module, and the editor's widgets (``model_design``, ``layer_table``) read and write the same
keys, so it imports neither of them nor ``common``: the imports all point here.

The layer table is edited as rows of plain values (one dict per layer, None for an empty
cell); ``row_from_layer`` and ``layers_from_rows`` convert between them and ``models.Layer``.
A row holds exactly the cells its type reads (``fit_row_to_type``): a new row gets the values
that apply to its type and no others, so the table never shows a setting that is ignored.

The preset picker keeps its choice across page changes with ``persist_state="session"``
(Streamlit drops the value of a widget whose page is not shown); the spec it stands for is
``WORKING_SPEC``, which no widget owns.
"""
from __future__ import annotations

import copy

import pandas as pd
import streamlit as st

from models import Layer, ModelSpec
from models.spec import LAYER_TYPES

# ---- session keys that belong to no widget (created by common.init_session_state) ------
WORKING_SPEC = "working_spec"  # the spec the Model page is editing (not built yet)
WORKING_PRESET = "working_preset"  # the preset the working spec started from, None if none
LAYER_ROWS = "layer_rows"  # the CNN layer table as last shown, rows not yet valid included
LAYERS_BASE = "layers_base"  # the table the data editor was given; its edits are relative to it
EDITOR_GENERATION = "editor_generation"  # bumped to give the data editor a fresh start

# ---- widget keys a new spec resets ------------------------------------------------------
PRESET = "preset"  # the preset picker: shows the preset the spec came from
EDIT_PREFIX = "edit_"  # every field of the design editor; cleared when a new spec is loaded

# ---- layer table rows -------------------------------------------------------------------
LAYER_COLUMNS = ["type", "channels", "kernel", "stride", "padding", "activation", "pool", "p"]
INT_COLUMNS = ("channels", "kernel", "stride", "padding")
# The cells each type reads; the others stay empty so the table shows what matters.
USED_COLUMNS = {
    "conv": ("channels", "kernel", "stride", "padding"),
    "pool": ("kernel", "stride", "padding", "pool"),
    "fc": ("channels",),
    "batchnorm": (),
    "act": ("activation",),
    "dropout": ("p",),
}
# What a cell a row's type reads holds when the row is new or the cell was left empty.
NEW_CELL_VALUES = {
    "conv": {"channels": 16, "kernel": 3, "stride": 1, "padding": 0},
    "pool": {"kernel": 2, "stride": 2, "padding": 0, "pool": "max"},
    "fc": {"channels": 16},
    "batchnorm": {},
    "act": {"activation": "relu"},
    "dropout": {"p": 0.5},
}


def load_into_editor(spec: ModelSpec, preset: str | None = None) -> None:
    """Make ``spec`` the one the Model page edits; its widgets are re-seeded from it.

    Call it from a callback (or before the page draws): widgets already drawn in this run
    cannot change their value.
    """
    state = st.session_state
    state[WORKING_SPEC] = copy.deepcopy(spec)
    state[WORKING_PRESET] = state[PRESET] = preset
    for key in [k for k in state if isinstance(k, str) and k.startswith(EDIT_PREFIX)]:
        del state[key]
    restart_layer_editor([row_from_layer(layer) for layer in spec.layers])


def restart_layer_editor(rows: list[dict]) -> None:
    """Give the layer table ``rows`` as its new starting point, forgetting the edits made to
    the old one (the data editor keeps its edits relative to the table it was given)."""
    st.session_state[LAYER_ROWS] = [dict(row) for row in rows]
    st.session_state[LAYERS_BASE] = [dict(row) for row in rows]
    st.session_state[EDITOR_GENERATION] = st.session_state.get(EDITOR_GENERATION, 0) + 1


def row_from_layer(layer: Layer) -> dict:
    used = USED_COLUMNS.get(layer.type, LAYER_COLUMNS)
    return {column: getattr(layer, column) if column == "type" or column in used else None
            for column in LAYER_COLUMNS}


def fit_row_to_type(row: dict) -> dict:
    """``row`` with the cells its type reads filled (a new value where empty) and the others
    emptied; a row without a known type is left as it is."""
    used = USED_COLUMNS.get(row.get("type"))
    if used is None:
        return dict(row)
    new_values = NEW_CELL_VALUES[row["type"]]
    return {column: row["type"] if column == "type"
            else (new_values.get(column) if row.get(column) is None else row[column]) if column in used
            else None
            for column in LAYER_COLUMNS}


def same_design(a: ModelSpec, b: ModelSpec) -> bool:
    """Whether two specs describe the same model (a layer's settings its type does not read
    are not compared)."""
    def plain(spec: ModelSpec) -> ModelSpec:
        spec = copy.deepcopy(spec)
        spec.layers = [row_from_layer(layer) for layer in spec.layers]
        return spec
    return plain(a) == plain(b)


def clean_row(record: dict) -> dict:
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


def layers_from_rows(rows: list[dict]) -> tuple[list[Layer], list[str]]:
    """The layers the rows describe, and a problem for each row that has no type yet."""
    layers, problems = [], []
    for position, row in enumerate(rows, start=1):
        if not row["type"]:
            problems.append(f"layer {position}: choose its type ({', '.join(LAYER_TYPES)})")
            continue
        settings = {column: row[column] for column in LAYER_COLUMNS[1:] if row[column] is not None}
        layers.append(Layer(row["type"], **settings))
    return layers, problems
