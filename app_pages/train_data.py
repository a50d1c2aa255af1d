"""The Train page's data picker: a built-in dataset or an upload, and how the current model is
fitted to it (input size, vocabulary, classes), with a word on what changes.

A built-in dataset is the server's shared copy (``run_data.builtin_dataset``); an uploaded one
is read once per file and kept for the session that uploaded it.
"""
from __future__ import annotations

import streamlit as st

from app_pages import common
from app_pages.run_data import builtin_dataset, default_options
from training.data import DatasetError, fit_spec_to_dataset
from training.datasets import builtin_names, dataset_from_upload, describe, needs_download
from training.limits import MB, max_upload_bytes

# ---- widget keys (app and browser tests find widgets by these) ------------------------
DATASET = "train_dataset"
DATA_UPLOAD = "train_data_upload"

UPLOAD_CHOICE = "upload"  # the dataset choice that shows the uploader
UPLOAD_TYPES = ["zip", "csv", "tsv", "txt"]
PICTURE_PRESETS = "digits-cnn, shapes-cnn or shapes-vit"
SENTENCE_PRESETS = "sentiment-lstm, sentiment-gru or sentiment-transformer"
UPLOADS_KEPT = 2  # uploaded datasets kept per session (the one shown, and the one before)

sentence = common.sentence


def dataset_picker(spec):
    """The dataset chooser (built-in or an upload); the chosen Dataset, or None with the reason shown."""
    names = builtin_names() + [UPLOAD_CHOICE]
    labels = {name: name for name in builtin_names()} | {UPLOAD_CHOICE: "my own data (upload)…"}
    choice = st.selectbox("Dataset", names, key=DATASET, format_func=labels.get)
    if choice == UPLOAD_CHOICE:
        return _uploaded_dataset()
    st.caption(describe(choice))
    try:
        first_time = "Downloading {} (only the first time)…" if needs_download(choice) else "Preparing {}…"
        with st.spinner(first_time.format(choice)):
            return builtin_dataset(choice, default_options(choice))
    except DatasetError as err:
        st.error(sentence(err))
        return None


@st.cache_resource(show_spinner=False, scope="session", max_entries=UPLOADS_KEPT)
def read_upload(file_id: str, name: str, _data: bytes) -> tuple[object, str | None]:
    """(dataset, None) for an uploaded file, or (None, why it cannot be used); read once per file."""
    try:
        return dataset_from_upload(_data, name), None
    except DatasetError as err:
        return None, sentence(err)


def _uploaded_dataset():
    file = st.file_uploader("A .zip with one folder of pictures per class, or a .csv of text,label rows",
                            type=UPLOAD_TYPES, key=DATA_UPLOAD, max_upload_size=max_upload_bytes() // MB,
                            help="Pictures: cats/1.jpg, cats/2.jpg, dogs/1.jpg, … zipped. "
                                 "Sentences: a CSV whose rows are text,label (a header row is optional).")
    if file is None:
        st.caption("Pictures are resized to the same square size; every class needs at least 5 examples. "
                   f"Files up to {max_upload_bytes() // MB} MB: the whole class shares this server.")
        return None
    with st.spinner(f"Reading {file.name}…"):
        dataset, error = read_upload(file.file_id, file.name, file.getvalue())
    if error:
        st.error(error)
        return None
    st.caption(dataset.description)
    return dataset


def chosen_dataset():
    """The dataset the picker shows, without drawing anything (for the Train callback)."""
    state = st.session_state
    choice = state.get(DATASET)
    if choice != UPLOAD_CHOICE:
        return builtin_dataset(choice, default_options(choice))
    file = state.get(DATA_UPLOAD)
    return None if file is None else read_upload(file.file_id, file.name, file.getvalue())[0]


def fit_to_data(spec, dataset):
    """The spec to train (input size, vocabulary and classes taken from the data), or None with
    the reason and a model that would fit shown."""
    try:
        fitted = fit_spec_to_dataset(spec, dataset)
    except DatasetError as err:
        st.error(sentence(err))
        reads, wanted = (("pictures", PICTURE_PRESETS) if dataset.input_kind == "image"
                         else ("sentences", SENTENCE_PRESETS))
        st.info(f"On the Model page, choose a preset that reads {reads} (for example {wanted}) and come back; "
                "or pick other data above.", icon=":material/lightbulb:")
        st.page_link("app_pages/model.py", label="Go to the Model page", icon=":material/account_tree:")
        return None
    for warning in dataset.warnings:
        st.warning(sentence(warning))
    st.caption(data_summary(dataset) + adaptation_note(spec, fitted))
    return fitted


def data_summary(dataset) -> str:
    """'1,438 examples to train on, 359 to check on · 10 classes · 1×16×16 pictures'."""
    shape = dataset.input_shape
    kind = (f"{'×'.join(map(str, shape))} pictures" if dataset.input_kind == "image"
            else f"sentences of up to {shape[0]} words, {len(dataset.vocab or []):,} different words")
    return (f"{len(dataset.x_train):,} examples to train on, {len(dataset.x_val):,} to check on · "
            f"{dataset.num_classes} classes · {kind}.")


def adaptation_note(spec, fitted) -> str:
    changes = []
    if spec.input.kind == "image" and (spec.input.channels, spec.input.height, spec.input.width) != \
            (fitted.input.channels, fitted.input.height, fitted.input.width):
        changes.append(f"its input becomes {fitted.input.channels}×{fitted.input.height}×{fitted.input.width}")
    if spec.input.kind == "tokens" and spec.input.vocab_size != fitted.input.vocab_size:
        changes.append(f"it learns {fitted.input.vocab_size:,} word vectors")
    if spec.num_classes != fitted.num_classes:
        changes.append(f"it chooses between {fitted.num_classes} classes")
    return f" To fit this data, {'; '.join(changes)}." if changes else ""
