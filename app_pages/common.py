"""Session state and the few helpers every page shares.

Every session key the app uses that belongs to no widget is created in ``init_session_state``
(app.py calls it on every run), so any page can read them whichever page the session opened
on. The Model page editor's keys are ``editor_state``'s; this module seeds them with the first
spec through ``editor_state.load_into_editor``. Results a page computes and keeps for the
session are in Streamlit's caches (``scope="session"``), not in session state. Changing the
current model happens in widget callbacks (or is followed by a rerun), so the sidebar, drawn
before the page, always names the model that is really current. ``unused_design`` says when the
Model page's design is not the current model (chosen there, not yet built with "Use this
model"), so the Model and Train pages can say so.

Who is using the session (``me``): with no teacher password set, nobody in particular (None:
single-user mode, everything allowed, as before classes). With one set, the person whose random
key is in the page's address (the query parameter ``me``; their name is kept on the server by
``training.people.People``), so a reload finds them again; ``keep_identity`` puts the key back in
the address after a page switch drops it. Until they have given a name, app.py shows the name
form (``people_ui``) instead of the page.
"""
from __future__ import annotations

import copy
import re
from dataclasses import replace

import streamlit as st

from app_pages.editor_state import EDITOR_GENERATION, WORKING_SPEC, load_into_editor, same_design
from models import build_model, presets
from training import people
from training.people import Person

DEFAULT_PRESET = "digits-cnn"
MARKDOWN_ANYWHERE = re.compile(r"([\\`*_\[\]<>|~$:&])")  # markup wherever it stands ("&" starts an entity)
MARKDOWN_LINE_START = re.compile(r"^([ \t]*)([-+#]|\d+(?=[.)]))", re.MULTILINE)  # markup only first on a line
SEED = 0  # a freshly built model has the same weights on every student's screen

# ---- session keys that belong to no widget -------------------------------------------
CURRENT_MODEL = "current_model"  # the HookedModel every page works with
LOAD_RESULT = "load_result"  # {file_id, ok, message} of the last checkpoint load
NOTICE = "notice"  # a success message shown once, after the rerun that caused it
RUN_REFUSAL = "run_refusal"  # why the last click on a run's button did nothing (shown once; None when it acted)
CURRENT_RUN = "current_run"  # id of the training run the Train page shows; None: attach to the newest
RUNS_WATCHED = "runs_watched"  # ids of runs this session saw queued or running
RUNS_ADOPTED = "runs_adopted"  # ids of runs whose final model this session already made current
TRAIN_SETTINGS = "train_settings"  # {model, dataset, hyperparameters} last chosen on the Train page
TRAIN_ERROR = "train_error"  # why the last click on Train started nothing (None when it did)
TRAIN_BUSY = "train_busy"  # (why, active run ids) when Train was refused for a person's runs (shown once)
INSPECT_STEPS = "inspect_steps"  # {run_id: step} chosen on the Inspect pages' slider, shared by them
REPLAY = "replay"  # the step slider that Play is stepping ({key, at, next}: see replay); None: none plays
PERSON = "person"  # the training.people.Person using this session (class mode); None until they gave a name
PERSON_KEY = "person_key"  # their browser's key (training.people.new_key), also in the page's address
KEY_PARAM = "me"  # the query parameter of the page's address that holds the key
PRESENTING = "presenting"  # presenter mode: larger text and figures, sidebar collapsed, downloads hidden
PRESENT_PARAM = "present"  # the query parameter that turns presenter mode on (1) or off (0)
LESSON_OPEN = "lesson_open"  # slug of the lesson open on the Lessons page; None: the list of lessons
LESSON_STEPS = "lesson_steps"  # {slug: 0-based step} where each lesson was left
LESSON_SEEN = "lesson_seen"  # {slug: set of 0-based steps seen}: a lesson's progress
LESSON_ANSWERS = "lesson_answers"  # {(slug, step)} whose answer was revealed
FINETUNE_SETTINGS = "finetune_settings"  # the Train page's fine-tuning choices, by widget key (app_pages.train_finetune)
LESSON_ADDRESS = "lesson_address"  # the (lesson, step) this session last put in the address; None: none yet
EXPLAINED_FOR = "explained_for"  # model_key of the model the Attributions page's chosen class belongs to; None: none
MAP_CLICKED = "map_clicked"  # the validation row (0-based) a click on the data map asked to open; None: none
ATTENTION_AUTO_HEAD = "attention_auto_head"  # (block, head) the Attention page opened by itself; None: none yet
NOBODY = Person(person_id="", name="")  # in class mode before a name is given: may see only shared runs, act on none
# (and the Model page editor's: editor_state.WORKING_SPEC, WORKING_PRESET, LAYER_ROWS, ...)


# ---- session --------------------------------------------------------------------------
def init_session_state() -> None:
    """Create the session's keys (those of no widget), once per browser session."""
    state = st.session_state
    if CURRENT_MODEL not in state:
        spec = presets.get(DEFAULT_PRESET)
        state[CURRENT_MODEL] = build_model(spec, seed=SEED)
        state[EDITOR_GENERATION] = 0
        load_into_editor(spec, preset=DEFAULT_PRESET)
        state[LOAD_RESULT] = None
        state[NOTICE] = None
        state[RUN_REFUSAL] = None
        state[CURRENT_RUN] = None
        state[RUNS_WATCHED] = set()
        state[RUNS_ADOPTED] = set()
        state[TRAIN_SETTINGS] = None
        state[FINETUNE_SETTINGS] = {}
        state[TRAIN_ERROR] = None
        state[TRAIN_BUSY] = None
        state[INSPECT_STEPS] = {}
        state[REPLAY] = None
        state[PERSON] = None
        state[PERSON_KEY] = None
        state[PRESENTING] = False
        state[LESSON_OPEN] = None
        state[LESSON_STEPS] = {}
        state[LESSON_SEEN] = {}
        state[LESSON_ANSWERS] = set()
        state[LESSON_ADDRESS] = None
        state[EXPLAINED_FOR] = None
        state[MAP_CLICKED] = None
        state[ATTENTION_AUTO_HEAD] = None
    keep_identity()
    follow_present_param()


# ---- who is using the session ----------------------------------------------------------------
def teacher_password() -> str | None:
    """The teacher's password: $GLASSBOX_TEACHER_PASSWORD, else GLASSBOX_TEACHER_PASSWORD in
    Streamlit's secrets.toml; None when neither is set (single-user mode)."""
    found = people.teacher_password()
    if found is None and st.secrets.load_if_toml_exists():
        found = str(st.secrets.get(people.PASSWORD_VARIABLE) or "") or None
    return found


def class_mode() -> bool:
    """A class shares this server (a teacher password is set): every run has an owner."""
    return teacher_password() is not None


def me() -> Person | None:
    """Who acts in this session: None in single-user mode (everything allowed); in class mode
    the person (NOBODY until they gave their name)."""
    if not class_mode():
        return None
    return st.session_state[PERSON] or NOBODY


def become(key: str, person: Person) -> None:
    """This session is ``person`` from now on, and the page's address holds their key."""
    st.session_state[PERSON], st.session_state[PERSON_KEY] = person, key
    st.query_params[KEY_PARAM] = key


def sign_in_as_teacher() -> None:
    st.session_state[PERSON] = replace(st.session_state[PERSON], teacher=True)


def forget_me() -> None:
    """This tab starts again as someone new (the name form); the old address still works."""
    st.session_state[PERSON], st.session_state[PERSON_KEY] = None, None
    st.query_params.pop(KEY_PARAM, None)


def keep_identity() -> None:
    """In class mode: a new session (a reload) whose address holds a known key is that person
    again; a session that is someone keeps its key in the address (a page switch drops it)."""
    if not class_mode():
        return
    state = st.session_state
    in_address = st.query_params.get(KEY_PARAM)
    if state[PERSON] is None:
        if people.is_key(in_address):
            person_id = people.person_id_of(in_address)
            name = people.People().name_of(person_id)
            if name is not None:
                state[PERSON], state[PERSON_KEY] = Person(person_id, name), in_address
    elif in_address != state[PERSON_KEY]:
        st.query_params[KEY_PARAM] = state[PERSON_KEY]


# ---- presenter mode ---------------------------------------------------------------------------
def presenting() -> bool:
    """Whether this session is in presenter mode (a projector at the front of a class)."""
    return bool(st.session_state.get(PRESENTING, False))


def set_presenting(on: bool) -> None:
    """Turn presenter mode on or off, and say so in the page's address (a reload keeps it)."""
    st.session_state[PRESENTING] = bool(on)
    keep_present_param()


def follow_present_param() -> None:
    """``?present=1`` (or 0) in the address turns presenter mode on (off); then the address says
    what the mode is, like ``keep_identity`` for ``me``: a page switch drops the parameter."""
    wanted = st.query_params.get(PRESENT_PARAM)
    if wanted in ("1", "0"):
        st.session_state[PRESENTING] = wanted == "1"
    keep_present_param()


def keep_present_param() -> None:
    """``present=1`` in the address while presenting; no ``present`` otherwise. Only the one
    parameter is touched, so ``me`` stays as it is."""
    if presenting():
        if st.query_params.get(PRESENT_PARAM) != "1":
            st.query_params[PRESENT_PARAM] = "1"
    elif PRESENT_PARAM in st.query_params:
        del st.query_params[PRESENT_PARAM]


def current_model():
    return st.session_state[CURRENT_MODEL]


def parameter_count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def sentence(text) -> str:
    """A message as a sentence for the page: capitalised, ending in a full stop."""
    text = str(text).strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?", ")")) else text + "."


def model_summary(model) -> str:
    """'digits-cnn · CNN · 18,346 parameters', plus ' · trained on digits' once it has been trained."""
    summary = f"{model.spec.name} · {model.spec.family()} · {parameter_count(model):,} parameters"
    if model.is_pretrained:  # fine-tuned here: it also knows the data it was fine-tuned on
        return f"{summary} · pretrained" + (f", fine-tuned on {model.meta.dataset}" if model.meta.dataset else "")
    trained_on = model.meta.dataset
    return f"{summary} · trained on {trained_on}" if trained_on else summary


def show_current_model_in_sidebar() -> None:
    model = current_model()
    with st.sidebar:
        st.caption("Current model")
        st.markdown(as_markdown_text(model_summary(model)))  # a model's name is the user's text
        fitted = fitted_to_data(model)
        if fitted:
            st.caption(f"Parameters counted after training fitted {fitted} to the data: the count can "
                       "differ from its design's on the Model page.")


# ---- the design on the Model page and the current model -------------------------------
def fitted_to_data(model) -> str:
    """What training fitted to the data in a trained model ('its vocabulary (500 words) and its
    2 classes'), or '' for a model not trained here. Training takes the input size, the
    vocabulary and the classes from the data, which changes the parameter count."""
    if model.is_pretrained or not model.meta.dataset:
        return ""
    spec = model.spec
    if spec.input.kind == "tokens":
        part = f"its vocabulary ({spec.input.vocab_size:,} words)"
    elif spec.input.kind == "image":
        part = f"its input size ({spec.input.channels}×{spec.input.height}×{spec.input.width})"
    else:
        part = "its input"
    return f"{part} and its {spec.num_classes} classes"


def is_design_of(design, model) -> bool:
    """Whether ``model`` is ``design`` built: as designed, or trained (then with its input size,
    vocabulary and classes fitted to the data, which are not compared)."""
    if model.is_pretrained:
        return False  # a pretrained model is loaded, never built from the editor
    if model.meta.dataset and design.input.kind == model.spec.input.kind:
        design = copy.deepcopy(design)
        design.input = copy.deepcopy(model.spec.input)
        design.num_classes, design.class_names = model.spec.num_classes, list(model.spec.class_names)
    return same_design(design, model.spec)


def unused_design():
    """The Model page's design when it is not the current model (chosen or edited there but not
    yet built with "Use this model"); None when it is."""
    design = st.session_state[WORKING_SPEC]
    return None if is_design_of(design, current_model()) else design


def as_markdown_text(text) -> str:
    """``text`` shown as it is in a Markdown element (st.markdown, captions, messages, labels):
    what Markdown, HTML or Streamlit's colours, icons and maths would read as markup is escaped.
    Characters that are markup only at the start of a line (a list's "-", "+" or "1.", a
    heading's "#") are escaped only there, so a name like "digits-cnn" stays as typed."""
    escaped = MARKDOWN_ANYWHERE.sub(r"\\\1", str(text))
    # "- x" -> "\- x"; "1. x" -> "1\. x" (a backslash before a digit is no escape: it would show)
    return MARKDOWN_LINE_START.sub(lambda m: m.group(1) + (m.group(2) + "\\" if m.group(2)[0].isdigit()
                                                           else "\\" + m.group(2)), escaped)


def make_current(model, notice: str) -> None:
    st.session_state[CURRENT_MODEL] = model
    st.session_state[NOTICE] = notice
    st.session_state[LOAD_RESULT] = None  # "... is now the current model" would no longer be true


def show_notice() -> None:
    """Show, once, the success message left by the run that changed the current model."""
    notice = st.session_state.get(NOTICE)
    if notice:
        st.session_state[NOTICE] = None
        st.success(notice)


# ---- problems -------------------------------------------------------------------------
def show_problems(problems: list[str]) -> None:
    for problem in problems:
        st.error(problem[:1].upper() + problem[1:])


# ---- pages ----------------------------------------------------------------------------
# (file, title, icon, what it does): app.py's navigation and the Home page's list both read this.
PAGES = [
    ("app_pages/home.py", "Home", ":material/home:",
     "What Glassbox is and where to start."),
    ("app_pages/lessons.py", "Lessons", ":material/school:",
     "Short guided lessons, step by step, on ready-trained models: what a convolution computes, pooling and "
     "the receptive field, training, and more; each step has a live view, one thing to try and a question."),
    ("app_pages/model.py", "Model", ":material/account_tree:",
     "Pick a ready-made CNN, RNN or Transformer or design your own, see every layer's output shape "
     "and parameter count, and save or load checkpoints; or load a pretrained Hugging Face model (one is built in)."),
    ("app_pages/train.py", "Train", ":material/model_training:",
     "Train the current model on built-in data or your own pictures or sentences, and watch the loss, "
     "the accuracy and the first layer change live; compare runs and see what the model gets wrong."),
    ("app_pages/inspect_cnn.py", "Feature maps", ":material/grid_on:",
     "CNNs: give it a picture (an example, an upload, a drawing or the camera) and see every conv layer's "
     "filters and feature maps, every pooling step, and how one value is computed, number by number."),
    ("app_pages/inspect_rnn.py", "Hidden states", ":material/timeline:",
     "RNNs, LSTMs and GRUs: type sentences and follow the hidden state as a path, the units and gates word "
     "by word, the prediction after each word, and one step's update with its numbers."),
    ("app_pages/inspect_attention.py", "Attention", ":material/hub:",
     "Transformers: every block and head's attention on your sentence or picture, one query token's "
     "scores before and after the softmax, and what the class token looks at in an image."),
    ("app_pages/attributions.py", "Attributions", ":material/highlight:",
     "Which pixels or words made the model decide: Saliency, Integrated Gradients, GradientShap, DeepLift, "
     "Occlusion, Grad-CAM and more (Captum), side by side, for any class; and a sanity check against the "
     "same model with random weights."),
    ("app_pages/take_apart.py", "Take apart", ":material/build:",
     "Switch attention heads, conv channels or hidden units off and watch the answer move, see which parts this "
     "answer depends on, and read each block's answer (where a transformer's decision forms)."),
    ("app_pages/learned.py", "What it learned", ":material/psychology:",
     "What a CNN's filter wants to see (a picture grown to excite it, beside the examples that do most), "
     "and the whole validation set as a map of what the classifier reads, its mistakes marked."),
]
