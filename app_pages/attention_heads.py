"""Which head the Attention page opens: picked by block and head number, by a click on the
all-heads grid, or by the "most concentrated head" button; the choice survives a page change.

A click on the grid reaches the page as a Plotly selection (``viz.attention.attention_grid``
puts one point on each tile, its customdata the tile's 0-based [block, head]); the chart's
``on_select`` callback copies it into the two pickers' session state before they are drawn.
"""
from __future__ import annotations

import streamlit as st

from app_pages import common
from viz.labels import counted, numbered

LAYER_KEY, HEAD_KEY, GRID_KEY, LINES_KEY = "attention_layer", "attention_head", "attention_grid", "attention_lines_heads"
AVERAGE = -1  # the head choice meaning "the mean of all heads"


def clicked_head(selection) -> tuple[int, int] | None:
    """(block, head), 0-based, of the tile a grid selection points at; None when it points at none."""
    for point in (selection or {}).get("points") or []:
        data = point.get("customdata")
        if isinstance(data, (list, tuple)) and len(data) == 2:
            return int(data[0]), int(data[1])
    return None


def open_head(layer: int, head: int) -> None:
    """Make the pickers show block ``layer``, head ``head`` (0-based) on the next run."""
    st.session_state[LAYER_KEY] = counted(layer)
    st.session_state[HEAD_KEY] = head
    st.session_state[LINES_KEY] = [head]


def _lines_follow_head() -> None:
    """A head chosen in the picker is also the one the lines view draws."""
    st.session_state.pop(LINES_KEY, None)  # lines_heads starts again from the open head


def open_clicked_head() -> None:
    """The grid's on_select callback: open the head whose tile was clicked."""
    event = st.session_state.get(GRID_KEY) or {}
    found = clicked_head(event.get("selection"))
    if found is not None:
        open_head(*found)


def opened(layers: int, heads: int, first: tuple[int, int]) -> tuple[int, int]:
    """(block, head), 0-based (head may be AVERAGE), that the page shows: the one last chosen,
    brought into range for this model, or ``first`` until someone chooses (a new input then
    opens its own ``first``)."""
    state = st.session_state
    auto = state.get(common.ATTENTION_AUTO_HEAD)
    unchosen = state.get(HEAD_KEY) is None or state.get(LAYER_KEY) is None or \
        (auto is not None and (state[LAYER_KEY], state[HEAD_KEY]) == (counted(auto[0]), auto[1]))
    if unchosen:
        open_head(*first)
        state[common.ATTENTION_AUTO_HEAD] = first
    # A choice left from a model with more blocks or heads is brought back into range.
    if not isinstance(state[LAYER_KEY], int) or not 1 <= state[LAYER_KEY] <= layers:
        state[LAYER_KEY] = min(max(int(state[LAYER_KEY] or 1), 1), layers)
    if state[HEAD_KEY] >= heads:
        state[HEAD_KEY] = min(first[1], heads - 1)
    return state[LAYER_KEY] - 1, state[HEAD_KEY]


def head_pickers(layers: int, heads: int) -> tuple[int, int]:
    """Block and head boxes, after ``opened``; (block, head), 0-based (head may be AVERAGE)."""
    left, right = st.columns(2)
    layer = left.number_input(f"Block (1 to {layers})", min_value=1, max_value=layers, step=1, key=LAYER_KEY,
                              persist_state="session")
    head = right.selectbox(f"Head (1 to {heads})", list(range(heads)) + [AVERAGE], key=HEAD_KEY,
                           persist_state="session", on_change=_lines_follow_head,
                           format_func=lambda h: "average of the heads" if h == AVERAGE else numbered("head", h))
    return int(layer) - 1, AVERAGE if head is None else int(head)


def lines_heads(heads: int, head: int) -> list[int]:
    """The heads the lines view draws (0-based), chosen with the open head first."""
    state = st.session_state
    if LINES_KEY not in state or not isinstance(state[LINES_KEY], list):
        state[LINES_KEY] = list(range(heads)) if head == AVERAGE else [head]
    state[LINES_KEY] = [h for h in state[LINES_KEY] if isinstance(h, int) and 0 <= h < heads]
    chosen = st.multiselect("Heads drawn (one colour each)", list(range(heads)), key=LINES_KEY,
                            persist_state="session", format_func=lambda h: numbered("head", h))
    return list(chosen)
