"""Who is who, on the page: the name form a visitor fills in once, who they are in the sidebar,
the teacher's sign-in, and the Train page's line saying the app is in single-user mode.

Identity itself (the key in the page's address, the name kept on the server) is ``common``'s and
``training.people``'s; this module only draws. The password typed is checked in the sign-in
button's callback and cleared from the session at once: it is never shown, logged or kept.
"""
from __future__ import annotations

import streamlit as st

from app_pages import common
from training import people

# ---- widget keys (app and browser tests find widgets by these) ------------------------
NAME = "people_name"
NAME_FORM = "people_name_form"
PASSWORD = "people_teacher_password"
SIGN_IN_FORM = "people_sign_in_form"
SIGN_OUT = "people_sign_out"
SOMEONE_ELSE = "people_someone_else"
NAME_ERROR = "people_name_error"  # why the name given would not do (shown once)
SIGN_IN_ERROR = "people_sign_in_error"  # why the sign-in failed (shown once)


def needs_name() -> bool:
    """In class mode, whether this session has yet to say who it is (then the form replaces the page)."""
    return common.class_mode() and st.session_state[common.PERSON] is None


# ---- the name form -------------------------------------------------------------------------
def name_form() -> None:
    """Asked once per browser: the name the teacher will see beside this person's runs."""
    st.title("Welcome to Glassbox")
    st.markdown("Your class shares this Glassbox. Type your name: the teacher sees it beside your "
                "training runs. Nobody else can see or stop your runs.")
    with st.form(NAME_FORM, border=False):
        st.text_input("Your name", key=NAME, max_chars=people.NAME_MAX, placeholder="for example Ada L.")
        st.form_submit_button("Start", type="primary", on_click=_give_name)
    error = st.session_state.pop(NAME_ERROR, None)
    if error:
        st.error(error)
    st.caption("Glassbox remembers you in this page's address, not by your name: bookmark the page to come "
               "back as yourself, and do not share its address.")


def _give_name() -> None:
    """The form's callback: this browser becomes a new person with the name typed."""
    key = people.new_key()
    try:
        person = people.People().register(people.person_id_of(key), st.session_state.get(NAME, ""))
    except (ValueError, OSError) as err:
        st.session_state[NAME_ERROR] = common.sentence(err)
        return
    common.become(key, person)


# ---- the sidebar ---------------------------------------------------------------------------
def sidebar() -> None:
    """Who this session is, and the teacher's sign-in (class mode only)."""
    person = st.session_state[common.PERSON]
    if not common.class_mode() or person is None:
        return
    with st.sidebar:
        name = common.as_markdown_text(person.name)
        if person.teacher:
            st.markdown(f":material/school: **{name}**, signed in as the teacher")
            st.caption("You see every run and can stop, delete or share any. Reloading the page signs you out.")
            st.button("Sign out as the teacher", key=SIGN_OUT, on_click=_sign_out)
            return
        st.markdown(f":material/person: You are **{name}**")
        with st.expander("Teacher sign-in"):
            with st.form(SIGN_IN_FORM, border=False):
                st.text_input("Teacher's password", key=PASSWORD, type="password")
                st.form_submit_button("Sign in", on_click=_sign_in)
        error = st.session_state.pop(SIGN_IN_ERROR, None)
        if error:
            st.error(error, icon=":material/lock:")
        st.button(f"Not {person.name}? Start as someone new", key=SOMEONE_ELSE, on_click=common.forget_me,
                  type="tertiary")


def _sign_in() -> None:
    """The sign-in's callback: the password is compared in constant time, then forgotten."""
    given, st.session_state[PASSWORD] = st.session_state.get(PASSWORD, ""), ""
    expected = common.teacher_password()
    if expected is not None and given and people.password_matches(given, expected):
        common.sign_in_as_teacher()
        st.session_state[common.NOTICE] = "You are signed in as the teacher: you see every run, with its owner."
    else:
        st.session_state[SIGN_IN_ERROR] = "That is not the teacher's password."


def _sign_out() -> None:
    person = st.session_state[common.PERSON]
    st.session_state[common.PERSON] = people.Person(person.person_id, person.name)


# ---- the Train page -------------------------------------------------------------------------
def mode_line() -> None:
    """One line on the Train page: single-user mode, or whose runs the page lists."""
    person = common.me()
    if person is None:
        st.caption(":material/person: Single-user mode: everyone who opens this Glassbox sees and controls "
                   "every run. To share it with a class, set GLASSBOX_TEACHER_PASSWORD (see the README).")
    elif person.teacher:
        st.caption(":material/school: You are the teacher: the runs below are everyone's, with their owners.")
    else:
        st.caption(":material/group: Below are your runs and the ones your teacher shared with the class.")
