"""Presenter mode on the page: its toggle in the sidebar, and what it changes around the page.

For a teacher at a 1280×720 projector: text is larger (a style block of our own, scaling the
page's root font size that Streamlit's sizes are given in), the sidebar is collapsed, and the
secondary controls (downloads) are not drawn (their modules ask ``common.presenting``). Figures
are enlarged by ``figures.plotly_chart``. Whether the mode is on is ``common``'s (session state,
kept in step with ``?present=1`` in the page's address).

Collapsing the sidebar: ``st.set_page_config(initial_sidebar_state="collapsed")`` is followed
by Streamlit only in a browser that has no remembered choice for this server (Streamlit 1.67
keeps one in localStorage from the first click on the sidebar's arrow, and that choice wins).
So when presenter mode starts (the toggle, ``?present=1``, or a reload in it) a small script also
closes the sidebar if it is open. Opened again with its arrow (to reach the toggle, or another
page), it stays open until the next reload: the script runs once, when its element first appears.
"""
from __future__ import annotations

import streamlit as st

from app_pages import common

TOGGLE = "presenter_toggle"  # widget key (tests find the toggle by it)
ROOT_FONT_PX = 20  # Streamlit's is 16: every rem-sized text, control and gap grows by a quarter

STYLE = f"""<style>
html {{ font-size: {ROOT_FONT_PX}px !important; }}
[data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] p {{ font-size: 0.95rem !important; }}
[data-testid="stMainBlockContainer"] {{ padding-left: 1.5rem; padding-right: 1.5rem; padding-top: 3rem; }}
</style>"""

# Clicks the sidebar's own collapse button when the sidebar is open (Streamlit then remembers
# "collapsed" as the browser's choice, as if the teacher had clicked it).
COLLAPSE_SIDEBAR = """<script>
(() => {
  const sidebar = window.parent.document.querySelector('[data-testid="stSidebar"]');
  if (sidebar && sidebar.getAttribute("data-collapsed") === "false") {
    const button = sidebar.querySelector('[data-testid="stSidebarCollapseButton"] button');
    if (button) button.click();
  }
})();
</script>"""


def page_config() -> None:
    """The sidebar starts collapsed in presenter mode (see the module's note)."""
    st.set_page_config(initial_sidebar_state="collapsed" if common.presenting() else "auto")


def apply() -> None:
    """In presenter mode: the larger text, and the sidebar closed."""
    if not common.presenting():
        return
    st.html(STYLE)
    st.html(COLLAPSE_SIDEBAR, unsafe_allow_javascript=True)


def toggle() -> None:
    """The sidebar's "Presenter mode" switch."""
    st.session_state[TOGGLE] = common.presenting()  # ?present=1 may have turned it on since it was drawn
    with st.sidebar:
        st.toggle("Presenter mode", key=TOGGLE, on_change=_toggled,
                  help="For a projector: larger text and chart labels, figures across the full width, the "
                       "sidebar closed and downloads hidden. Open the sidebar (the arrow at the top left) "
                       "to turn it off. Adding ?present=1 to the page's address turns it on.")


def _toggled() -> None:
    common.set_presenting(st.session_state[TOGGLE])
