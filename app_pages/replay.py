"""The training-step slider with a Play button: replay how a model formed, checkpoint by checkpoint.

``step_slider`` draws Play/Pause, the slider over a run's checkpoint steps (log-spaced, so
placed evenly, not by value) and a label under every position with its real step number.
The Inspect pages, Attributions (through ``inspect_target``) and the Train page's results of
a run use it.

While a slider plays, a fragment reruns every ``PLAY_EVERY_S``; when a step is due it moves
the slider one checkpoint on and reruns the page, whose views then show that checkpoint; at
the last checkpoint it stops. It is drawn before the slider, so the value it sets is in place
when the slider is drawn (Streamlit refuses a widget's value set after the widget, in the
same run). Which slider plays, and when it last moved, is ``common.REPLAY`` (one per session).
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

TICK_STYLE = """<style>
.gb-ticks{position:relative;height:1.3em;margin:-0.6rem 0.5rem 0.4rem 0.5rem;font-size:0.75rem;
  color:rgba(49,51,63,0.7);white-space:nowrap}
.gb-ticks span{position:absolute;transform:translateX(-50%)}
</style>"""


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
    button, slider = st.columns([1, 9], vertical_alignment="center")
    with button:
        if playing(key):
            st.fragment(_tick, run_every=PLAY_EVERY_S)(key, steps)
        on = playing(key)
        st.button("Pause" if on else "Play", key=play_key(key), on_click=_toggle, args=(key, steps),
                  icon=":material/pause:" if on else ":material/play_arrow:",
                  help="Steps through the saved checkpoints, one every "
                       f"{PLAY_EVERY_S:g} s, and stops at the last." if not on else "Stops the replay here.")
    with slider:
        step = st.select_slider(label, options=steps, key=key, format_func=lambda s: f"{s:,}", help=help)
        st.markdown(tick_marks(steps), unsafe_allow_html=True)
    return step


def tick_labels(steps: Sequence[int]) -> list[tuple[float, str]]:
    """(where along the slider, 0 to 1; the step as read) for every checkpoint: the options sit
    evenly along the slider whatever their values."""
    last = max(len(steps) - 1, 1)
    return [(index / last, f"{step:,}") for index, step in enumerate(steps)]


def tick_marks(steps: Sequence[int]) -> str:
    spans = "".join(f'<span style="left:{100 * where:.3f}%">{html.escape(text)}</span>'
                    for where, text in tick_labels(steps))
    return f'{TICK_STYLE}<div class="gb-ticks">{spans}</div>'


def next_step(steps: Sequence[int], current) -> int | None:
    """The checkpoint after ``current``; None at the last (or when ``current`` is not one)."""
    steps = list(steps)
    if current not in steps or current == steps[-1]:
        return None
    return steps[steps.index(current) + 1]


def advance(key: str, steps: Sequence[int]) -> bool:
    """If ``key`` plays and its next step is due, move it on (and stop at the last step);
    True when something changed. Called before the slider is drawn."""
    state = st.session_state
    replay = state.get(common.REPLAY)
    if not replay or replay["key"] != key:
        return False
    now = clock()
    if now - replay["at"] < PLAY_EVERY_S * DUE_SHARE:
        return False
    following = next_step(steps, state.get(key))
    if following is not None:
        state[key] = following
    state[common.REPLAY] = None if following is None or following == steps[-1] else {"key": key, "at": now}
    return True


def _tick(key: str, steps: list[int]) -> None:
    """The fragment that plays: on its own reruns it rerun the page, so every view follows."""
    if advance(key, steps):
        st.rerun(scope="app")


def _toggle(key: str, steps: list[int]) -> None:
    """Play (from the start when at the end) or Pause: a callback, so it runs before the slider."""
    state = st.session_state
    if playing(key):
        state[common.REPLAY] = None
        return
    if state.get(key) == steps[-1]:
        state[key] = steps[0]
    state[common.REPLAY] = {"key": key, "at": clock()}
