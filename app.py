"""Glassbox: build, train and look inside neural networks in the browser.

Run with ``streamlit run app.py``. This file sets up the session, lists the pages and shows
the current model and the presenter mode toggle in the sidebar; each page is a file in
``app_pages/``. When a class shares the server (a teacher password is set), a visitor who has not
yet said who they are gets the name form instead of the page (``app_pages.people_ui``).

The folder is deliberately not called ``pages/``: Streamlit 1.67 still switches to its old
folder-based navigation when a ``pages/`` folder sits next to the entry point, for the first
run of a fresh server (a first visit straight to /model then runs the page without this file)
and for every AppTest run. Listing the pages here with ``st.navigation`` is the only navigation.
"""
import streamlit as st

from app_pages import common, people_ui, presenter_ui
from app_pages.serving import use_server_threads

use_server_threads()  # torch in the server: one thread (see app_pages/serving.py)
st.set_page_config(page_title="Glassbox", page_icon=":material/visibility:", layout="wide")
common.init_session_state()
presenter_ui.page_config()
presenter_ui.apply()

page = st.navigation([
    st.Page(file, title=title, icon=icon, default=(index == 0))
    for index, (file, title, icon, _what) in enumerate(common.PAGES)
])
if people_ui.needs_name():
    people_ui.name_form()  # the page asked for stays in the address: it opens once the name is given
else:
    people_ui.sidebar()
    common.show_current_model_in_sidebar()
    presenter_ui.toggle()
    page.run()
