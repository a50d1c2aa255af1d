"""The Train page for a pretrained text encoder: fine-tune it on ``sentiment`` or the user's own
.csv of text,label rows (training.finetune), with what it needs said before it starts.

The choices are kept in the session (``common.FINETUNE_SETTINGS``) and put back on every visit:
Streamlit forgets a widget's value while its page is not shown.
"""
from __future__ import annotations

import streamlit as st

from app_pages import common
from app_pages.train_run import attach, class_limits_caption, offer_to_stop
from training import finetune
from training.data import DatasetError
from training.devices import DeviceError
from training.hyperparameters import Hyperparameters, HyperparameterError
from training.jobs import JobError, TooManyRuns
from training.limits import MB, max_upload_bytes

# ---- widget keys (app tests find widgets by these) --------------------------------------
DATA = "finetune_data"
UPLOAD = "finetune_upload"
TRAIN_PART = "finetune_train"
TOP_BLOCKS = "finetune_top_blocks"
HEAD_LR = "finetune_head_lr"
LR = "finetune_lr"
EPOCHS = "finetune_epochs"
BATCH = "finetune_batch_size"
SEED = "finetune_seed"
START = "finetune_start"

SENTIMENT_N = 1500  # sentences: fine-tuning a pretrained encoder needs far fewer than training from scratch
UPLOAD_CHOICE = "upload"
DATA_LABELS = {"sentiment": f"sentiment ({SENTIMENT_N:,} short film reviews)", UPLOAD_CHOICE: "my own .csv of text,label"}


def _defaults(model) -> dict:
    hp, recipe = finetune.default_hyperparameters(), finetune.Recipe(base="")
    return {DATA: "sentiment", TRAIN_PART: recipe.train, TOP_BLOCKS: min(recipe.top_blocks, _blocks(model)),
            HEAD_LR: recipe.head_lr, LR: hp.lr, EPOCHS: hp.epochs, BATCH: hp.batch_size, SEED: hp.seed}


def _blocks(model) -> int:
    return model.spec.transformer.num_layers


def can_finetune(model) -> bool:
    """A BERT-family text encoder (the built-in MiniLM, BERT, DistilBERT, RoBERTa): not GPT-2, not an image model."""
    return model.is_pretrained and model.spec.input.kind == "tokens" and not model.family.causal


def finetune_section(model, open_by_default: bool) -> None:
    """The data, the settings, what the run needs, and Train."""
    if not can_finetune(model):
        st.info(f"{common.as_markdown_text(model.spec.name)} is a pretrained model Glassbox inspects but does not "
                "fine-tune: fine-tuning is for BERT-family text encoders (the built-in all-MiniLM-L6-v2, BERT, "
                "DistilBERT, RoBERTa). To train, choose a preset on the Model page.", icon=":material/info:")
        return
    state, saved = st.session_state, st.session_state[common.FINETUNE_SETTINGS]
    for key, value in _defaults(model).items():
        if key not in state:
            state[key] = saved.get(key, value)
    with st.expander(f"**Fine-tune {common.as_markdown_text(model.spec.name)}**: a new head for your classes, "
                     "on top of what it learned from far more text", expanded=open_by_default,
                     icon=":material/tune:"):
        st.caption("Fine-tuning trains a pretrained model a little more on one task. Its tokenizer stays its own; "
                   "a new classification head sized to your classes is added and trained with its own learning "
                   "rate; the encoder's blocks stay frozen or train too, as you choose.")
        data_column, settings_column = st.columns(2, gap="large")
        with data_column:
            dataset = _data(model)
        with settings_column:
            hp, recipe = _settings(model)
        for key in _defaults(model):
            saved[key] = state[key]
        problems = hp.validate() + recipe.problems(_blocks(model))
        common.show_problems(problems)
        plan = finetune.plan_for(model, dataset, hp, recipe) if dataset is not None and not problems else None
        if plan is not None:
            st.caption(plan.words())
            if not plan.fits:
                st.error(common.sentence(plan.refusal(model.spec.name)))
        st.button("Train", key=START, type="primary", disabled=plan is None or not plan.fits,
                  icon=":material/play_arrow:", on_click=_start, args=(model,),
                  help="Starts fine-tuning in the background: you can keep using the other pages.")
        error, state[common.TRAIN_ERROR] = state[common.TRAIN_ERROR], None  # shown once
        if error:
            common.show_problems(error)
        offer_to_stop()
        st.caption("When it finishes, the fine-tuned model becomes the current model; the Attention page then shows "
                   "the same head before and after fine-tuning.")
        class_limits_caption()


def _data(model):
    st.markdown("**Data**")
    choice = st.selectbox("Sentences to fine-tune on", list(DATA_LABELS), key=DATA, format_func=DATA_LABELS.get)
    try:
        if choice != UPLOAD_CHOICE:
            dataset = builtin_data(model.meta.pretrained, model.spec.input.max_len, model)
        else:
            file = st.file_uploader("A .csv whose rows are text,label (a header row is optional)", type=["csv", "tsv", "txt"],
                                    key=UPLOAD, max_upload_size=max_upload_bytes() // MB)
            if file is None:
                st.caption(f"Files up to {max_upload_bytes() // MB} MB: the whole class shares this server.")
                return None
            dataset = uploaded_data(model.meta.pretrained, file.file_id, file.name, file.getvalue(), model)
    except DatasetError as err:
        st.error(common.sentence(err))
        return None
    for note in dataset.warnings:
        st.warning(common.sentence(note))
    st.caption(f"{common.as_markdown_text(dataset.description)} {len(dataset.x_train):,} to train on, "
               f"{len(dataset.x_val):,} to check on · {dataset.num_classes} classes · up to "
               f"{dataset.input_shape[0]} tokens of {common.as_markdown_text(model.spec.name)}'s own tokenizer.")
    return dataset


@st.cache_resource(show_spinner="Reading the sentences with the model's tokenizer…", max_entries=4)
def builtin_data(source: str, max_len: int, _model):
    """``sentiment`` read with the model's tokenizer, once per server and model."""
    return finetune.finetune_dataset(_model.tokenizer, *finetune.sentiment_texts(SENTIMENT_N), model_max_len=max_len)


@st.cache_resource(show_spinner="Reading your file…", scope="session", max_entries=2)
def uploaded_data(source: str, file_id: str, name: str, _data: bytes, _model):
    return finetune.finetune_dataset(_model.tokenizer, *finetune.csv_texts(_data, name),
                                     model_max_len=_model.spec.input.max_len)


def _settings(model) -> tuple[Hyperparameters, finetune.Recipe]:
    state = st.session_state
    st.markdown("**Settings**")
    st.radio("What training changes", list(finetune.TRAIN_LABELS), key=TRAIN_PART, format_func=finetune.TRAIN_LABELS.get,
             help="The head only is fastest, but the encoder cannot learn anything new (word order, negation). "
                  "Training the top blocks too is a middle way; everything learns most.")
    if state[TRAIN_PART] == "top":
        st.number_input("Top blocks to train", key=TOP_BLOCKS, min_value=1, max_value=_blocks(model), step=1,
                        help=f"Of {model.spec.name}'s {_blocks(model)} blocks, the last ones (nearest the head) train.")
    left, right = st.columns(2)
    with left:
        st.number_input("Head learning rate", key=HEAD_LR, min_value=0.0, step=0.0005, format="%g",
                        help="The new head starts from random weights, so it learns with larger steps.")
        st.number_input("Encoder learning rate", key=LR, min_value=0.0, step=0.00001, format="%g",
                        disabled=state[TRAIN_PART] == "head",
                        help="Small steps: the pretrained blocks already know a lot, and large steps would undo it.")
    with right:
        st.number_input("Epochs", key=EPOCHS, min_value=1, max_value=50, step=1)
        st.number_input("Batch size", key=BATCH, min_value=1, max_value=512, step=8)
    return _chosen(model)


def _start(model) -> None:
    """Train's callback: the choices as the session holds them now, then the run is attached."""
    state = st.session_state
    try:
        dataset = (builtin_data(model.meta.pretrained, model.spec.input.max_len, model) if state[DATA] != UPLOAD_CHOICE
                   else _upload_now(model))
        if dataset is None:
            raise DatasetError("choose the sentences to fine-tune on first")
        hp, recipe = _chosen(model)
        run_id = finetune.submit(model, dataset, hp, recipe, owner=common.me())
    except HyperparameterError as err:
        state[common.TRAIN_ERROR] = err.messages
        return
    except TooManyRuns as err:
        state[common.TRAIN_BUSY] = (str(err), err.active)
        return
    except (DatasetError, DeviceError, JobError, KeyError) as err:
        state[common.TRAIN_ERROR] = [common.sentence(err)]
        return
    attach(run_id)
    state[common.RUNS_WATCHED].add(run_id)


def _upload_now(model):
    file = st.session_state.get(UPLOAD)
    return None if file is None else uploaded_data(model.meta.pretrained, file.file_id, file.name, file.getvalue(), model)


def _chosen(model) -> tuple[Hyperparameters, finetune.Recipe]:
    state, defaults = st.session_state, finetune.default_hyperparameters()
    hp = Hyperparameters(optimizer=defaults.optimizer, lr=float(state[LR]), batch_size=int(state[BATCH]),
                         epochs=int(state[EPOCHS]), weight_decay=defaults.weight_decay, grad_clip=defaults.grad_clip,
                         seed=int(state[SEED]), schedule=defaults.schedule)
    return hp, finetune.Recipe(base=model.meta.pretrained, train=state[TRAIN_PART], top_blocks=int(state[TOP_BLOCKS]),
                               head_lr=float(state[HEAD_LR]))
