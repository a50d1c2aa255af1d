"""What the three Inspect pages (and Attributions) share: their start (``page_setup``), the input
pickers, the prediction (with a note when the input is far from the model's training data,
``explain.familiarity``), and figures with their downloads.

Each page calls ``page_setup`` first (the model at a chosen training step, from
``inspect_target``), then an input picker, then draws its own views. The computations live in
``explain/`` and the figures in ``viz/``; this module only wires widgets to them.

Input widgets keep their values for the whole session (``persist_state="session"``), so a
sentence typed on one page is still there after a visit to another page.
"""
from __future__ import annotations

import base64
import binascii
import html
import io

import numpy as np
import streamlit as st
from PIL import Image

from app_pages import common
from app_pages.figures import plotly_chart
from app_pages.inspect_target import context_for, examples_dataset, inspection_target, require_kind
from app_pages.shared_views import computed_once, dataset_key, figure_once, fitted_once
from explain.familiarity import Familiarity, familiarity, fit_reference, trained_on
from explain.inputs import (MAX_SENTENCES, MAX_TEXT_CHARS, InputContext, InputError, PreparedImage, PreparedSentence,
                            example_image, prepare_image, prepare_sentence, read_image, read_text_file,
                            split_sentences)
from models.words import with_article
from training.limits import MB, max_upload_bytes
from viz.activations import probability_bars

IMAGE_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "gif"]
SOURCES = {"example": "An example from the data", "upload": "Upload a picture", "draw": "Draw",
           "camera": "Camera"}
SHOWN_SIDE = 168  # pixels: a 16×16 input is blown up (nearest neighbour) so each pixel is visible
LEAST_SHOWN_SIDE = 12  # pixels: the least either side of a picture is shown at (a 4000×3 strip is 168×12)

sentence = common.sentence


# ---- the page's start ------------------------------------------------------------------
def page_setup(kind: str | None):
    """What every Inspect page starts with: (target, dataset, input context), the step slider and
    the input note drawn; the page ends here, with the reason shown, if it cannot go on.
    ``kind`` (cnn | rnn | transformer) is the family the page shows; None for every family."""
    if kind is not None and not require_kind(kind):
        st.stop()
    target = inspection_target()
    dataset = examples_dataset(target.model)
    context = context_for(target.model, dataset)
    if context is None:
        st.stop()
    return target, dataset, context


# ---- pictures ---------------------------------------------------------------------------
def image_input(page: str, context: InputContext, dataset) -> PreparedImage | None:
    """Pick a picture (example, upload, drawing or camera); show it next to what the model receives."""
    sources = [s for s in SOURCES if s != "example" or _has_examples(dataset, context)]
    source = st.segmented_control("Picture", sources, format_func=SOURCES.get, key=f"{page}_source",
                                  default=sources[0], required=True, persist_state="session")
    try:
        prepared = _picture_from(source or sources[0], page, context, dataset)
    except InputError as err:
        st.error(sentence(err))
        return None
    if prepared is None:
        return None
    original, seen = st.columns(2)
    with original:
        same_size = prepared.original.size == prepared.seen.shape[1::-1]  # an example: the model's input itself
        shown = shown_picture(prepared.seen if same_size else prepared.original)
        st.image(shown, caption=f"{prepared.label} · {prepared.original.width}×{prepared.original.height}",
                 width=shown.width)
    with seen:
        shown = shown_picture(prepared.seen)
        st.image(shown, width=shown.width,
                 caption=f"what the model receives · {prepared.seen.shape[1]}×{prepared.seen.shape[0]}")
    return prepared


def _has_examples(dataset, context: InputContext) -> bool:
    """The data's validation pictures are inputs of the model's size, prepared the same way."""
    prep = context.image_preprocessor
    return (dataset is not None and dataset.input_kind == "image" and prep is not None
            and tuple(dataset.input_shape) == (prep.channels, prep.height, prep.width))


def _picture_from(source: str, page: str, context: InputContext, dataset) -> PreparedImage | None:
    if source == "example":
        count = len(dataset.x_val)
        index = index_input(f"Example (1 to {count:,} of the {dataset.name} validation data)", count, 1,
                            f"{page}_example")
        truth = dataset.class_names[int(dataset.y_val[index])]
        return example_image(context, dataset.x_val[index], f"example {index + 1} ({with_article(truth)})")
    if source == "upload":
        file = st.file_uploader("A picture (PNG, JPEG, WebP, BMP or GIF)", type=IMAGE_TYPES, key=f"{page}_upload",
                                max_upload_size=max_upload_bytes() // MB)
        if file is None:
            st.caption("Any size and colour: it is prepared exactly as the training pictures were.")
            return None
        return prepare_image(context, read_image(file.getvalue(), file.name), f"upload: {file.name}")
    if source == "draw":
        from app_pages.canvas import drawing_canvas

        st.caption("Draw with the mouse or a finger, large and centred, like a digit on paper.")
        png = drawing_canvas(key=f"{page}_canvas")
        if not png:
            return None
        return prepare_image(context, read_image(decode_data_url(png), "your drawing"), "your drawing")
    photo = st.camera_input("Take a picture", key=f"{page}_camera")
    if photo is None:
        return None
    return prepare_image(context, read_image(photo.getvalue(), "the camera picture"), "camera")


def decode_data_url(url: str) -> bytes:
    """The bytes of a ``data:image/png;base64,...`` URL (what the drawing canvas sends)."""
    head, _, payload = str(url).partition(",")
    if not head.startswith("data:image/") or ";base64" not in head:
        raise InputError("the drawing could not be read; clear it and draw again")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InputError("the drawing could not be read; clear it and draw again") from None


def shown_size(width: int, height: int, side: int = SHOWN_SIDE, least: int = LEAST_SHOWN_SIDE) -> tuple[int, int]:
    """The size a ``width``×``height`` picture is shown at: a small one blown up by a whole number
    (pixels stay square) and a large one scaled down, so that its longer side is about ``side``;
    then each side at least ``least`` pixels, so that a strip (4000×3, 169×1) stays visible."""
    longest = max(width, height, 1)
    if longest <= side:
        scale = side // longest
        shown = width * scale, height * scale
    else:
        shown = round(width * side / longest), round(height * side / longest)
    return max(shown[0], least), max(shown[1], least)


def shown_picture(picture: np.ndarray | Image.Image, side: int = SHOWN_SIDE) -> Image.Image:
    """A picture ((H, W, C) uint8 array, or a PIL image of any mode) at its ``shown_size``:
    enlarged with nearest-neighbour, reduced by averaging, in a mode every browser shows."""
    if isinstance(picture, np.ndarray):
        picture = Image.fromarray(picture[:, :, 0] if picture.shape[2] == 1 else picture)
    if picture.mode not in ("RGB", "RGBA", "L"):
        transparent = picture.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in picture.info
        picture = picture.convert("RGBA" if transparent else "RGB")
    size = shown_size(*picture.size, side=side)
    grows = size[0] >= picture.width and size[1] >= picture.height
    return picture.resize(size, Image.NEAREST if grows else Image.BOX)


# ---- sentences --------------------------------------------------------------------------
def sentence_inputs(page: str, context: InputContext, default: str, several: bool = True) -> list[PreparedSentence]:
    """Type sentences (one per line) or upload a .txt; show each as the model's tokens.

    A page that reads one sentence (``several=False``) lets the user choose which line of a
    text of several lines it reads."""
    label = "Sentences, one per line (each is drawn separately)" if several else "A sentence"
    # max_chars far above what is read: the browser drops a longer paste without a word, while
    # what reaches the page is answered (split_sentences says what it reads of a long text).
    typed = st.text_area(label, value=default, key=f"{page}_text", height=92 if several else 68,
                         persist_state="session", max_chars=MAX_TEXT_CHARS)
    file = st.file_uploader("…or a .txt file with one sentence per line", type=["txt"], key=f"{page}_text_file",
                            max_upload_size=max_upload_bytes() // MB)
    text = typed
    if file is not None:
        try:
            text = read_text_file(file.getvalue(), file.name)
        except InputError as err:
            st.error(sentence(err))
            return []
    try:
        sentences, notes = split_sentences(text, limit=MAX_SENTENCES)
    except InputError as err:
        st.warning(sentence(err))
        return []
    if notes:
        st.caption(sentence("; ".join(notes)))
    if not several and len(sentences) > 1:
        sentences = [sentences[line_choice(f"{page}_line", sentences)]]
    prepared = []
    for line in sentences:
        try:
            prepared.append(prepare_sentence(context, line))
        except InputError as err:
            st.warning(sentence(err))
    for item in prepared:
        show_tokens(item)
    return prepared


def line_choice(key: str, lines: list[str]) -> int:
    """Which of several lines a one-sentence page reads (0-based), chosen by the user."""
    st.caption("Your text has several lines; this page reads one sentence at a time: choose it below.")
    if key in st.session_state and st.session_state[key] not in range(len(lines)):
        st.session_state[key] = 0  # a choice left from a longer text
    return st.selectbox("The sentence to read", range(len(lines)), key=key,
                        format_func=lambda i: f"{i + 1}: {_preview(lines[i])}")


def _preview(line: str, length: int = 80) -> str:
    return line if len(line) <= length else line[: length - 1] + "…"


def show_tokens(item: PreparedSentence) -> None:
    """The sentence as the model sees it: one chip per token, unknown words in red."""
    chips = []
    for word, token, unknown in zip(item.words, item.tokens, item.unknown):
        if unknown:
            chips.append(f'<span class="gb-token gb-unknown" title="not in the model\'s vocabulary: it reads &lt;unk&gt;">'
                         f'{html.escape(word)} → &lt;unk&gt;</span>')
        else:
            chips.append(f'<span class="gb-token">{html.escape(token)}</span>')
    st.markdown(TOKEN_STYLE + '<div class="gb-tokens">' + " ".join(chips) + "</div>", unsafe_allow_html=True)
    for note in item.notes:
        st.caption(sentence(note))


TOKEN_STYLE = """<style>
.gb-tokens{line-height:2.1em;margin-bottom:.3em}
.gb-token{background:#e0ecff;border-radius:.4em;padding:.15em .45em;margin-right:.15em;font-family:monospace}
.gb-unknown{background:#fde2e2;color:#991b1b}
</style>"""


# ---- prediction, figures, downloads ------------------------------------------------------
def prediction(probabilities: np.ndarray, class_names: list[str], key: str, top_k: int = 5,
               familiar: Familiarity | None = None) -> None:
    """The model's answer and its top classes; next to it, when the input is far from the model's
    training data (``familiar``, from ``familiarity_of``), a note saying so in plain words."""
    best = int(np.argmax(probabilities))
    st.markdown(f"The model says **{common.as_markdown_text(class_names[best])}** ({probabilities[best]:.0%} sure).")
    familiarity_note(familiar)
    show_figure(figure_once(probability_bars, probabilities, class_names, top_k=top_k), key, "prediction",
                downloads=False)


def familiarity_of(model, dataset, context: InputContext, x) -> Familiarity | None:
    """How far the prepared input ``x`` is from the data ``model`` was trained on; None when
    that data is not at hand (a pretrained model, one not trained yet, uploaded data now gone).
    The reference is fitted once per server for the model's content (``shared_views``)."""
    if not trained_on(model, dataset, context.vocab):
        return None
    try:
        reference = fitted_once(fit_reference, model, dataset_key(dataset), dataset.x_train, dataset.y_train,
                                dataset.x_val, list(dataset.class_names), dataset.name)
        return familiarity(model, reference, x, context.vocab)
    except (ValueError, RuntimeError, IndexError, KeyError, np.linalg.LinAlgError):
        return None  # a model that cannot be measured simply gets no note; its views say what is wrong


def familiarity_note(familiar: Familiarity | None, prefix: str = "") -> None:
    """A warning in plain words when the input is far from the training data; nothing otherwise."""
    if familiar is not None and familiar.far:
        st.warning(common.as_markdown_text(prefix + familiar.reason), icon=":material/help:")


def show_figure(fig, key: str, name: str, downloads: bool = True, caption: str | None = None, **chart_options):
    """A Plotly figure (its toolbar saves a PNG) and, under it, a standalone HTML download (not in
    presenter mode, which hides downloads). ``chart_options`` go to ``st.plotly_chart`` (e.g.
    ``on_select``); what it returns (the selection, with ``on_select``) is returned."""
    if caption:
        st.caption(caption)
    event = plotly_chart(fig, key=key, config={"displaylogo": False,
                                               "toImageButtonOptions": {"format": "png", "filename": name, "scale": 2}},
                         **chart_options)
    if downloads and not common.presenting():
        st.download_button("Download as HTML", data=lambda: fig.to_html(include_plotlyjs=True, full_html=True),
                           file_name=f"{name}.html", mime="text/html", key=f"{key}_html", type="tertiary",
                           icon=":material/download:", on_click="ignore",
                           help="A standalone web page with this interactive figure (works offline).")
    return event


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{name: np.asarray(value) for name, value in arrays.items()})
    return buffer.getvalue()


def activations_download(arrays: dict[str, np.ndarray], name: str, key: str,
                         label: str = "Download the raw activations (.npz)") -> None:
    """Every array the page computed, by name (a hook name, or a method), as a NumPy .npz (not in
    presenter mode, which hides downloads)."""
    if common.presenting():
        return
    st.download_button(label, data=lambda: npz_bytes(arrays),
                       file_name=f"{name}.npz", mime="application/octet-stream", key=key,
                       icon=":material/download:", on_click="ignore",
                       help="numpy.load(file) gives one array per name, e.g. 'conv.0.act'.")


def index_input(label: str, count: int, default: int, key: str, column=None) -> int:
    """A 1-based number box for choosing one of ``count`` things; returns the 0-based index.

    A value left from another model (with more channels or rows) is brought back into range
    instead of failing."""
    state = st.session_state
    if key in state and not (isinstance(state[key], int) and 1 <= state[key] <= count):
        state[key] = min(max(int(state[key] or 1), 1), count)
    place = column if column is not None else st
    value = place.number_input(label, min_value=1, max_value=count, value=min(max(default, 1), count), step=1,
                               key=key)
    return int(value) - 1


def computed(compute, *args, **kwargs):
    """``compute(*args, **kwargs)``, or a plain message and the end of the page if the model
    cannot handle this input (e.g. a hand-edited checkpoint whose layers disagree). Computed once
    per server for the same model and input (``shared_views``): the result is shared, read it only."""
    try:
        return computed_once(compute, *args, **kwargs)
    except (ValueError, RuntimeError, IndexError) as err:
        st.error(f"The model could not be run on this input: {sentence(err)}")
        st.stop()
