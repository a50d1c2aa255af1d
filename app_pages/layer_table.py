"""The Model page's CNN layer table: an editable table of layers (add and delete rows) with
Move up / Move down. Its rows live in the editor state (``editor_state``).

A row shows only the cells its type reads: after an edit that adds a row or changes a type,
the rows are fitted to their types (``editor_state.fit_row_to_type``) and the table starts
again from them, so a new row is numbered and an ignored setting is never shown. Empty cells
are drawn empty (not "None").
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from app_pages import editor_state as editor
from models import Layer
from models.shapes import CONV_AFTER_FC
from models.spec import ACTIVATIONS, LAYER_TYPES

# ---- widget keys (browser and app tests find widgets by these) -------------------------
LAYER_EDITOR = "layer_editor"
MOVE_ROW = "move_row"
MOVE_UP = "move_up"
MOVE_DOWN = "move_down"

GENERATION_COLUMN = "generation"  # hidden; a new value makes the editor forget old edits

LAYER_COLUMN_CONFIG = {
    "_index": st.column_config.NumberColumn("#", disabled=True, help="Row number, as in 'Layer to move' below"),
    "type": st.column_config.SelectboxColumn(
        "type", options=list(LAYER_TYPES), required=True, default="fc",
        help="conv: convolution · pool: pooling · fc: fully connected · batchnorm · act: activation · dropout"),
    "channels": st.column_config.NumberColumn("channels", min_value=0, step=1,
                                              help="conv: output channels · fc: output features"),
    "kernel": st.column_config.NumberColumn("kernel", min_value=1, step=1,
                                            help="conv and pool: side of the square window"),
    "stride": st.column_config.NumberColumn("stride", min_value=0, step=1,
                                            help="conv and pool: step of the window (pool: 0 means the kernel size)"),
    "padding": st.column_config.NumberColumn("padding", min_value=0, step=1,
                                             help="conv and pool: zeros added on each side"),
    "activation": st.column_config.SelectboxColumn("activation", options=list(ACTIVATIONS),
                                                   help="act: the non-linearity"),
    "pool": st.column_config.SelectboxColumn("pool", options=["max", "avg"],
                                             help="pool: maximum or average of each window"),
    "p": st.column_config.NumberColumn("p", min_value=0.0, max_value=0.99, step=0.05, format="%.2f",
                                       help="dropout: chance of zeroing each unit while training"),
}


def layer_table_editor() -> tuple[list[Layer], list[str]]:
    """The CNN's layers as an editable table (add and delete rows) with Move up / Move down."""
    state = st.session_state
    if LAYER_EDITOR not in state:  # first visit, or back from another page: start from what was shown
        editor.restart_layer_editor(state[editor.LAYER_ROWS])
    edited = st.data_editor(_layer_frame(state[editor.LAYERS_BASE]), key=LAYER_EDITOR, num_rows="dynamic",
                            column_config=LAYER_COLUMN_CONFIG, column_order=editor.LAYER_COLUMNS,
                            width="stretch", height="content", placeholder="")
    rows = [editor.clean_row(row) for row in edited.to_dict("records")]
    fitted = [editor.fit_row_to_type(row) for row in rows]
    if fitted != rows or state[LAYER_EDITOR].get("added_rows"):
        # Show the rows as they count: numbered, with the cells of their type and no others.
        editor.restart_layer_editor(fitted)
        st.rerun()
    state[editor.LAYER_ROWS] = rows
    _move_controls(rows)
    return editor.layers_from_rows(rows)


def _layer_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=editor.LAYER_COLUMNS)
    frame = frame.astype({"type": "object", "activation": "object", "pool": "object", "p": "float64",
                          **{column: "Int64" for column in editor.INT_COLUMNS}})
    # Row numbers as a teacher counts them. Not a RangeIndex: the editor would hide its values.
    frame.index = pd.Index(list(range(1, len(frame) + 1)), dtype="int64")
    frame[GENERATION_COLUMN] = st.session_state[editor.EDITOR_GENERATION]
    return frame


def with_editor_hints(problems: list[str]) -> list[str]:
    """The problems, with the control that fixes a layer in the wrong place named."""
    return [f"{problem}; select it under 'Layer to move' and use Move up" if CONV_AFTER_FC in problem
            else problem for problem in problems]


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
    rows, index = list(state[editor.LAYER_ROWS]), state[MOVE_ROW]
    target = index + offset
    if 0 <= index < len(rows) and 0 <= target < len(rows):
        rows[index], rows[target] = rows[target], rows[index]
        editor.restart_layer_editor(rows)
        state[MOVE_ROW] = target  # the moved layer stays selected, so it can be moved again
