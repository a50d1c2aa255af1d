"""The training-step slider with a Play button: replay how a model formed, checkpoint by checkpoint.

``step_slider`` draws Play/Pause, the slider over a run's checkpoint steps (log-spaced, so
placed evenly, not by value) and a label under every position with its real step number.
The Inspect pages, Attributions (through ``inspect_target``) and the Train page's results of
a run use it.

While a slider plays, a fragment reruns every ``PLAY_EVERY_S``. When the next step is due it
notes it (``common.REPLAY``: which slider plays, when it last moved, the step to show next)
and reruns the page; the page's run puts that step into the slider before drawing it, so the
browser's slider moves too and every view below shows that checkpoint. (A widget's value set
from a fragment's own run, or after the widget in the same run, would not reach the browser,
which would then send its old value back.) At the last checkpoint the replay stops.
"""
from __future__ import annotations

import html
import time
from collections.abc import Sequence

import streamlit as st

from app_pages import common

PLAY_EVERY_S = 1.5  # one checkpoint this often: time to look at each one
DUE_SHARE = 0.6  # a tick that comes this share of PLAY_EVERY_S after the last move moves again
clock = time.monotonic  # tests put a pretend clock here

# The labels' row is inset like the slider's track (Streamlit pads it by 0.375rem each side), so
# label i sits under option i: i / (n - 1) of the track's width from its left end. Inline styles:
# a Markdown element holding a <style> is drawn with no height, and what follows would cover it.
TICK_ROW_STYLE = ("position:relative;height:1.3em;margin:0 0.375rem 1.25rem;font-size:0.75rem;"
                  "opacity:0.7;white-space:nowrap")  # the theme's text colour, light or dark
TICK_STYLE = "position:absolute;transform:translateX({shift})"  # centred; the two end labels kept inside


def play_key(key: str) -> str:
    """The widget key of a slider's Play/Pause button."""
    return f"{key}_play"


def playing(key: str) -> bool:
    replay = st.session_state.get(common.REPLAY)
    return bool(replay) and replay["key"] == key


def step_slider(label: str, steps: Sequence[int], key: str, default: int, help: str | None = None) -> int:
    """Play/Pause, the slider over ``steps`` (widget ``key``, starting at ``default``) and its
    tick labels; returns the step chosen."""
    steps = list(steps)
    state = st.session_state
    if state.get(key) not in steps:  # new, or the run's checkpoints changed (a resume) since
        state[key] = default if default in steps else steps[-1]
    show_due_step(key, steps)
    on = playing(key)
    # Always drawn, ticking only while playing: the page's layout (and so every element's place
    # in it) is the same whether it plays or not.
    st.fragment(_tick, run_every=PLAY_EVERY_S if on else None)(key, steps)
    with st.container(horizontal=True, vertical_alignment="center", wrap=False, gap="medium"):
        st.button("Pause" if on else "Play", key=play_key(key), on_click=_toggle, args=(key, steps), width="content",
                  icon=":material/pause:" if on else ":material/play_arrow:",
                  help="Steps through the saved checkpoints, one every "
                       f"{PLAY_EVERY_S:g} s, and stops at the last." if not on else "Stops the replay here.")
        with st.container():
            step = st.select_slider(label, options=steps, key=key, format_func=lambda s: f"{s:,}", help=help)
            st.markdown(tick_marks(steps), unsafe_allow_html=True)
            st.markdown(hide_own_ticks(key), unsafe_allow_html=True)
    return step


def tick_labels(steps: Sequence[int]) -> list[tuple[float, str]]:
    """(where along the slider, 0 to 1; the step as read) for every checkpoint: the options sit
    evenly along the slider whatever their values."""
    last = max(len(steps) - 1, 1)
    return [(index / last, f"{step:,}") for index, step in enumerate(steps)]


def tick_marks(steps: Sequence[int]) -> str:
    """The labels as HTML: one under each position of the slider."""
    spans = "".join(f'<span style="{TICK_STYLE.format(shift=_shift(where))};left:{100 * where:.3f}%">'
                    f'{html.escape(text)}</span>' for where, text in tick_labels(steps))
    return f'<div class="gb-ticks" style="{TICK_ROW_STYLE}">{spans}</div>'


def _shift(where: float) -> str:
    """The first label starts at its position and the last ends at it (centred, they would stick
    out of the page's column and be cut off); the others are centred under theirs."""
    return "0" if where == 0 else "-100%" if where == 1 else "-50%"


def hide_own_ticks(key: str) -> str:
    """CSS that hides the slider's own labels (its first and last step only), which ours replace."""
    return f'<style>.st-key-{key} [data-testid="stSliderTickBar"]{{display:none}}</style>'


def next_step(steps: Sequence[int], current) -> int | None:
    """The checkpoint after ``current``; None at the last (or when ``current`` is not one)."""
    steps = list(steps)
    if current not in steps or current == steps[-1]:
        return None
    return steps[steps.index(current) + 1]


def note_due_step(key: str, steps: Sequence[int]) -> bool:
    """If ``key`` plays and its next step is due, note that step for the page's next run (or,
    at the last step, end the replay); True when the page must rerun to show it."""
    state = st.session_state
    replay = state.get(common.REPLAY)
    if not replay or replay["key"] != key or replay.get("next") is not None:
        return False
    now = clock()
    if now - replay["at"] < PLAY_EVERY_S * DUE_SHARE:
        return False
    following = next_step(steps, state.get(key))
    state[common.REPLAY] = None if following is None else {"key": key, "at": now, "next": following}
    return True


def show_due_step(key: str, steps: Sequence[int]) -> None:
    """Put the step noted by ``note_due_step`` into the slider (before it is drawn); the replay
    ends when that is the last step."""
    state = st.session_state
    replay = state.get(common.REPLAY)
    if not replay or replay["key"] != key or replay.get("next") is None:
        return
    shown = replay["next"]
    if shown in steps:
        state[key] = shown
    # The wait for the next step counts from here, when the page starts drawing this one.
    state[common.REPLAY] = {**replay, "next": None, "at": clock()} if shown in steps and shown != steps[-1] else None


def _tick(key: str, steps: list[int]) -> None:
    """The fragment that plays: a due step reruns the whole page, which shows it."""
    if note_due_step(key, steps):
        st.rerun(scope="app")


def _toggle(key: str, steps: list[int]) -> None:
    """Play (from the start when at the end) or Pause: a callback, so it runs before the slider."""
    state = st.session_state
    if playing(key):
        state[common.REPLAY] = None
        return
    if state.get(key) == steps[-1]:
        state[key] = steps[0]
    state[common.REPLAY] = {"key": key, "at": clock(), "next": None}
