"""The Model page's file widgets: download the current model, load a checkpoint (a Glassbox
.zip, or bare weights for a design chosen here), and load a pretrained Hugging Face model.

A loaded model becomes the current model and its design goes into the editor
(``editor_state.load_into_editor``); what happened is kept in ``common.LOAD_RESULT``.
"""
from __future__ import annotations

import copy
import re

import streamlit as st

from app_pages import common
from app_pages.editor_state import load_into_editor
from models import ModelSpec, presets
from models.checkpoint import CheckpointError, checkpoint_bytes, load_checkpoint
from models.pretrained import BUILTIN_TEXT, PretrainedError, load_pretrained
from models.pretrained.finetuned import finetuned_zip
from training.limits import MB, max_model_upload_bytes

# ---- widget keys (browser and app tests find widgets by these) -------------------------
DOWNLOAD = "download"
UPLOAD = "upload"
UPLOAD_SPEC = "upload_spec"
LOAD_WEIGHTS = "load_weights"
PRETRAINED_SOURCE = "pretrained_source"
LOAD_BUILTIN = "load_builtin_pretrained"
LOAD_PRETRAINED = "load_pretrained"

CHECKPOINT_TYPES = ["zip", "safetensors", "pt", "pth"]
WEIGHTS_ONLY_TYPES = (".safetensors", ".pt", ".pth")  # carry no spec: the user names one
CURRENT_SPEC_CHOICE = "current"


# ---- save and load --------------------------------------------------------------------
def checkpoint_file_name(model) -> str:
    return (re.sub(r"[^\w.-]+", "-", model.spec.name).strip("-.") or "model") + ".zip"


def save_button() -> None:
    if common.presenting():
        return  # presenter mode hides downloads
    model = common.current_model()
    if model.is_pretrained and model.meta.run_id is not None:  # fine-tuned here: a Hugging Face folder, zipped
        megabytes = (4 * sum(p.numel() for p in model.parameters()) + MB) / MB
        st.download_button("Download the fine-tuned model", data=lambda: finetuned_zip(model),
                           file_name=checkpoint_file_name(model), mime="application/zip", key=DOWNLOAD,
                           on_click="ignore", icon=":material/download:")
        st.caption(f"{checkpoint_file_name(model)}, about {megabytes:,.0f} MB: its config, safetensors weights and "
                   f"tokenizer (a Hugging Face model folder, for transformers' from_pretrained too) and Glassbox's "
                   f"meta.json. Loads here again below: model files up to {max_model_upload_bytes() // MB} MB.")
        return
    if model.is_pretrained:
        st.caption(f"{common.as_markdown_text(model.spec.name)} is a pretrained model: load it again by its name or folder below, "
                   "under Pretrained models.")
        return
    try:
        data = checkpoint_bytes(model)
    except CheckpointError as err:
        st.error(str(err))
        return
    st.download_button("Download the current model", data=data, file_name=checkpoint_file_name(model),
                       mime="application/zip", key=DOWNLOAD, on_click="ignore", icon=":material/download:")
    st.caption(f"{checkpoint_file_name(model)}: the design and the weights of {common.as_markdown_text(model.spec.name)}, "
               "to load here again later or on another computer.")


def is_weights_only(filename: str) -> bool:
    return filename.lower().endswith(WEIGHTS_ONLY_TYPES)


def load_checkpoint_file(data: bytes, filename: str, spec: ModelSpec | None = None):
    """Load an uploaded checkpoint: (model, success message), or (None, what went wrong)."""
    try:
        model = load_checkpoint((data, filename), spec=spec)
    except CheckpointError as err:
        return None, str(err)
    return model, f"Loaded {common.model_summary(model)} from {filename}. It is now the current model."


def load_uploader() -> None:
    file = st.file_uploader("Load a checkpoint", type=CHECKPOINT_TYPES, key=UPLOAD, on_change=_on_upload,
                            max_upload_size=max_model_upload_bytes() // MB,
                            help="A .zip saved by Glassbox (a fine-tuned pretrained model too), or bare weights "
                                 f"(.safetensors, .pt, .pth) for a design you choose below. Up to "
                                 f"{max_model_upload_bytes() // MB} MB: a fine-tuned all-MiniLM-L6-v2 (87 MB) fits, "
                                 "a fine-tuned BERT-base (420 MB) does not.")
    if file is not None and is_weights_only(file.name):
        labels = _spec_choice_labels()
        st.selectbox("These weights belong to", list(labels), key=UPLOAD_SPEC, format_func=labels.get)
        st.button("Load weights", key=LOAD_WEIGHTS, on_click=_on_load_weights)
    result = st.session_state.get(common.LOAD_RESULT)
    if file is not None and result and result.get("file_id") == file.file_id:
        show = st.success if result["ok"] else st.error
        show(result["message"].replace("\n", "  \n"))  # keep the message's line breaks in Markdown


def _spec_choice_labels() -> dict[str, str]:
    labels = {CURRENT_SPEC_CHOICE: f"the current model ({common.current_model().spec.name})"}
    labels.update({name: f"preset {name}" for name in presets.names()})
    return labels


def _spec_for_choice(choice: str) -> ModelSpec:
    if choice == CURRENT_SPEC_CHOICE:
        return copy.deepcopy(common.current_model().spec)
    return presets.get(choice)


def _on_upload() -> None:
    # A callback runs once per new file, so a later rerun never loads the same file again
    # over what the user has done since.
    state = st.session_state
    state[common.LOAD_RESULT] = None
    file = state.get(UPLOAD)
    if file is not None and not is_weights_only(file.name):
        _load_uploaded(file, spec=None)


def _on_load_weights() -> None:
    file = st.session_state.get(UPLOAD)
    if file is not None:
        _load_uploaded(file, spec=_spec_for_choice(st.session_state.get(UPLOAD_SPEC, CURRENT_SPEC_CHOICE)))


def _load_uploaded(file, spec: ModelSpec | None) -> None:
    model, message = load_checkpoint_file(file.getvalue(), file.name, spec)
    st.session_state[common.LOAD_RESULT] = {"file_id": file.file_id, "ok": model is not None, "message": message}
    if model is not None:
        st.session_state[common.CURRENT_MODEL] = model
        load_into_editor(model.spec)


# ---- pretrained models -----------------------------------------------------------------
@st.cache_resource(show_spinner=False, max_entries=4)
def shared_pretrained(source: str):
    """A pretrained model, loaded once per server for everyone (tens of MB to hundreds): calls
    that hook into it take turns (models.hooks.turn_of), and nothing here changes its weights."""
    return load_pretrained(source)


def pretrained_loader() -> None:
    """Use the built-in pretrained text model, or load one by Hugging Face id or local folder."""
    st.caption(f"Real models trained by others on far more text: they know words the class grammar never "
               f"saw. {BUILTIN_TEXT} (6 blocks × 12 heads) is built in and works offline; a Hugging Face id "
               "(e.g. distilbert-base-uncased-finetuned-sst-2-english) needs the internet the first time.")
    builtin, other = st.columns([1, 2], vertical_alignment="bottom")
    with builtin:
        st.button(f"Use {BUILTIN_TEXT} (built in)", key=LOAD_BUILTIN, on_click=_load_pretrained, args=(BUILTIN_TEXT,),
                  icon=":material/download_done:", width="stretch")
    with other:
        field, button = st.columns([3, 1], vertical_alignment="bottom")
        source = field.text_input("Hugging Face model id, or a folder on this computer", key=PRETRAINED_SOURCE,
                                  placeholder="bert-base-uncased, gpt2, /home/me/models/my-bert")
        button.button("Load", key=LOAD_PRETRAINED, on_click=_load_pretrained, args=(None,), width="stretch",
                      disabled=not (source or "").strip())
    result = st.session_state.get(common.LOAD_RESULT)
    if result and result.get("pretrained") and not result["ok"]:
        st.error(result["message"])


def _load_pretrained(source: str | None) -> None:
    source = (source or st.session_state.get(PRETRAINED_SOURCE) or "").strip()
    if not source:
        return
    try:
        with st.spinner(f"Loading {source}…"):
            model = shared_pretrained(source)
    except PretrainedError as err:
        st.session_state[common.LOAD_RESULT] = {"pretrained": True, "ok": False, "message": common.sentence(err)}
        return
    common.make_current(model, f"Now using {common.as_markdown_text(common.model_summary(model))}. Its attention is on the Attention "
                               "page" + (", its attributions on the Attributions page." if model.spec.num_classes
                                         else "."))
