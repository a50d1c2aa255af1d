"""The inputs the Inspect pages show a model: pictures and sentences, prepared as in training.

An ``InputContext`` says how the current model's inputs are prepared. A trained model carries
that in its checkpoint (``model.meta``: vocabulary, picture size, normalisation); a model not
trained yet borrows it from the built-in data its preset is made for (digits for digits-cnn),
and says so. Everything a user hands in (uploaded bytes, a drawing, typed text) is checked
here and refused with an ``InputError`` in plain words; nothing here imports Streamlit.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image, ImageSequence, UnidentifiedImageError

from training.data import Dataset, DatasetError
from training.datasets import preprocessor_from_meta
from training.datasets.preprocess import ImagePreprocessor, TextPreprocessor, denormalize_to_uint8
from training.datasets.uploads import MAX_IMAGE_PIXELS, open_picture
from training.tokenizer import UNK, Tokenizer, split_words

MAX_IMAGE_BYTES = 50 * 2**20  # the app's upload limit; a picture file larger than this is refused
MAX_TEXT_BYTES = 1 * 2**20  # a .txt of sentences
MAX_SENTENCE_CHARS = 2_000  # one sentence; longer is not a sentence (a pasted book?)
MAX_SENTENCES = 8  # drawn together in one trajectory plot; more would be unreadable
# The most a text box takes (its max_chars) and a text is read from: about as much as a .txt may
# hold. Far above what is analysed (MAX_SENTENCES lines of MAX_SENTENCE_CHARS), so that a long
# paste reaches the page and is answered in words: the browser drops a paste over max_chars
# without one.
MAX_TEXT_CHARS = 1_000_000


class InputError(ValueError):
    """An input the model cannot be shown; the message says why in plain words."""


@dataclass
class InputContext:
    """How the current model's inputs are prepared."""

    kind: str  # image | tokens
    preprocess: Callable  # one raw picture / sentence -> one model input, no batch dim
    source: str  # plain words: where the preparation comes from, for the page
    trained: bool  # True when the model's own checkpoint says how (it was trained on that data)
    dataset_name: str | None = None  # the data the inputs are prepared like
    vocab: list[str] | None = None  # tokens: id -> word
    max_len: int | None = None  # tokens: the longest sentence the model reads
    normalization: dict | None = None  # image: {"mean": [...], "std": [...]}
    image_preprocessor: ImagePreprocessor | None = None
    pretrained: object | None = None  # a pretrained model (models.pretrained) whose tokenizer prepares sentences

    @property
    def tokenizer(self) -> Tokenizer:
        return self.preprocess.tokenizer


def input_context(model, dataset: Dataset | None = None) -> InputContext:
    """How to prepare inputs for ``model``: from its checkpoint, else like ``dataset`` (the data
    its preset is made for) when that fits the model, else plainly (pictures scaled to 0..1).

    InputError when there is no way (a text model with neither vocabulary nor fitting data)."""
    spec = model.spec
    if spec.input.kind == "sequence":
        raise InputError("this model reads sequences of numbers, which the Inspect pages cannot show yet; "
                         "choose a model that reads pictures or sentences")
    meta = model.meta
    if model.is_pretrained and spec.input.kind == "image":
        return _pretrained_image_context(model)
    if model.is_pretrained:  # its own tokenizer: subwords, so no word is unknown
        return InputContext("tokens", lambda text: pretrained_ids(model, text), f"{model.spec.name}'s own tokenizer "
                            "(words it does not know are split into pieces it does)", trained=True,
                            vocab=model.vocab, max_len=spec.input.max_len, pretrained=model)
    if meta.input_kind == spec.input.kind:
        try:
            preprocess = preprocessor_from_meta(meta.to_dict())
        except DatasetError:
            preprocess = None
        if preprocess is not None and _fits(spec, preprocess):
            return _context(spec, preprocess, meta.dataset, trained=True,
                            source=f"prepared as the {meta.dataset or 'training'} data it was trained on")
    if dataset is not None and dataset.input_kind == spec.input.kind:
        if spec.input.kind == "image" and tuple(dataset.input_shape) == _image_shape(spec):
            return _context(spec, dataset.preprocess, dataset.name, trained=False,
                            source=f"not trained yet; pictures are prepared as the {dataset.name} data is")
        if spec.input.kind == "tokens" and dataset.vocab and len(dataset.vocab) <= spec.input.vocab_size:
            return _context(spec, TextPreprocessor(dataset.vocab, spec.input.max_len), dataset.name, trained=False,
                            source=f"not trained yet; sentences use the words of the {dataset.name} data")
    if spec.input.kind == "image":
        channels = spec.input.channels
        plain = ImagePreprocessor(channels, spec.input.height, spec.input.width,
                                  {"mean": [0.0] * channels, "std": [1.0] * channels})
        return _context(spec, plain, None, trained=False,
                        source="not trained yet; pictures are resized and scaled to 0..1")
    raise InputError("this text model has no vocabulary yet, so typed words cannot be turned into its inputs: "
                     "train it on sentences first (Train page)")


def _pretrained_image_context(model) -> InputContext:
    """A pretrained image model's own preprocessing (models.pretrained.vision): its size, mean and
    std; a picture of another shape is centre-cropped to the aspect, then resized, as photos are."""
    image = model.meta.image
    normalization = {"mean": list(image["mean"]), "std": list(image["std"])}
    preprocess = ImagePreprocessor(model.spec.input.channels, image["height"], image["width"], normalization,
                                   {"resize": "crop"})
    return _context(model.spec, preprocess, None, trained=True,
                    source=f"prepared as {model.spec.name}'s own preprocessing (resize to "
                           f"{image['height']}×{image['width']}, its mean and std)")


def _image_shape(spec) -> tuple[int, int, int]:
    return spec.input.channels, spec.input.height, spec.input.width


def _fits(spec, preprocess) -> bool:
    if isinstance(preprocess, ImagePreprocessor):
        return (preprocess.channels, preprocess.height, preprocess.width) == _image_shape(spec)
    return len(preprocess.tokenizer) <= spec.input.vocab_size


def _context(spec, preprocess, dataset_name, trained: bool, source: str) -> InputContext:
    if isinstance(preprocess, TextPreprocessor):
        return InputContext("tokens", preprocess, source, trained, dataset_name, vocab=preprocess.tokenizer.vocab,
                            max_len=min(preprocess.max_len, spec.input.max_len))
    return InputContext("image", preprocess, source, trained, dataset_name, normalization=preprocess.normalization,
                        image_preprocessor=preprocess)


# ---- pictures ---------------------------------------------------------------------------
@dataclass
class PreparedImage:
    """A picture and what the model makes of it before the first layer."""

    original: Image.Image  # as handed in (first frame of an animation), for display
    seen: np.ndarray  # (H, W, C) uint8: the model's input drawn as a picture (after resizing, inverting, ...)
    x: torch.Tensor  # (C, H, W) float32: the model's input
    label: str  # "upload: cat.png", "example 3 of the validation data (a 7)", ...


def read_image(data: bytes, name: str = "the file") -> Image.Image:
    """The picture in ``data`` (PNG, JPEG, WebP, BMP, GIF's first frame, ...), decoded in memory.

    Refused with an InputError: an empty file, something that is not a picture, a damaged one,
    and one too large to decode safely (a decompression bomb)."""
    if not data:
        raise InputError(f"'{name}' is empty")
    if len(data) > MAX_IMAGE_BYTES:
        raise InputError(f"'{name}' is larger than {MAX_IMAGE_BYTES // 2**20} MB; use a smaller picture")
    try:
        image = open_picture(data)
        frame = next(ImageSequence.Iterator(image))  # an animated GIF or WebP: its first frame
        frame.load()
        return frame.copy() if frame is not image else image
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"'{name}' is too large to open safely (over {MAX_IMAGE_PIXELS // 1_000_000} million "
                         "pixels); use a smaller picture") from None
    except UnidentifiedImageError:
        raise InputError(f"'{name}' is not a picture: use a PNG, JPEG, WebP, BMP or GIF file") from None
    except (OSError, SyntaxError, ValueError, EOFError, StopIteration):
        raise InputError(f"'{name}' could not be read as a picture; it may be damaged or cut short") from None


def prepare_image(context: InputContext, image: Image.Image, label: str) -> PreparedImage:
    """Run ``image`` through the model's own preprocessing; keep the picture the model sees."""
    if context.kind != "image":
        raise InputError("this model reads sentences, not pictures")
    try:
        seen = context.image_preprocessor.prepare(image)  # (H, W, C) uint8
        x = context.preprocess(image)  # (C, H, W)
    except DatasetError as err:
        raise InputError(str(err)) from None
    return PreparedImage(image, seen, x, label)


def example_image(context: InputContext, x: torch.Tensor, label: str) -> PreparedImage:
    """A dataset example (already a model input) with the picture it shows."""
    seen = denormalize_to_uint8(x, context.normalization) if context.normalization else _to_uint8(x)
    picture = Image.fromarray(seen[:, :, 0] if seen.shape[2] == 1 else seen)
    return PreparedImage(picture, seen, x.detach().float(), label)


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    values = x.detach().float().numpy().transpose(1, 2, 0)  # (C, H, W) -> (H, W, C)
    low, high = float(values.min()), float(values.max())
    return np.rint((values - low) / ((high - low) or 1.0) * 255).astype(np.uint8)


# ---- sentences --------------------------------------------------------------------------
@dataclass
class PreparedSentence:
    """A sentence and the tokens the model reads."""

    text: str
    tokens: list[str]  # as the model sees them: unknown words are "<unk>"
    words: list[str]  # as typed (lower-cased, split), same length as tokens
    unknown: list[bool]  # per token: the model never saw this word
    ids: torch.Tensor  # (T,) int64 token ids, no padding
    cut: int = 0  # words dropped because the sentence is longer than the model reads
    notes: list[str] = field(default_factory=list)


def read_text_file(data: bytes, name: str = "the file") -> str:
    """The text of an uploaded .txt (UTF-8, or Latin-1 as a fallback); refuses binary files."""
    if not data:
        raise InputError(f"'{name}' is empty")
    if len(data) > MAX_TEXT_BYTES:
        raise InputError(f"'{name}' is larger than {MAX_TEXT_BYTES // 2**20} MB; a file of sentences is much smaller")
    if b"\x00" in data[:8192]:
        raise InputError(f"'{name}' is not a text file: save your sentences as plain text, one per line")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def split_sentences(text: str, limit: int = MAX_SENTENCES) -> tuple[list[str], list[str]]:
    """(sentences, notes): one sentence per non-empty line, the first ``limit`` of them; a note
    says so when there are more.

    InputError when there is none, when the text is longer than any box takes, or when a line
    read is far too long to be a sentence (lines are numbered as the user sees them)."""
    text = str(text)
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(f"the text has {len(text):,} characters; at most {MAX_TEXT_CHARS:,} are read: "
                         "paste or upload less")
    numbered = [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not numbered:
        raise InputError("type a sentence first (one per line to compare several)")
    notes = []
    if len(numbered) > limit:
        notes.append(f"your text has {len(numbered):,} lines; only the first {limit:,} are read")
    for number, line in numbered[:limit]:
        if len(line) > MAX_SENTENCE_CHARS:
            raise InputError(f"line {number:,} has {len(line):,} characters; a sentence here can have at most "
                             f"{MAX_SENTENCE_CHARS:,}: shorten it, or put one sentence per line")
    return [line for _, line in numbered[:limit]], notes


def pretrained_ids(model, text: str) -> torch.Tensor:
    from models.pretrained import tokenize

    return tokenize(model, text)[0]


def prepare_sentence(context: InputContext, text: str) -> PreparedSentence:
    """``text`` as the model reads it: words looked up in its vocabulary, cut at its length."""
    if context.kind != "tokens":
        raise InputError("this model reads pictures, not sentences")
    if context.pretrained is not None:
        return _pretrained_sentence(context, text)
    words = split_words(text)
    if not words:
        raise InputError(f"'{text.strip()[:40]}' has no words the model could read")
    cut = max(0, len(words) - context.max_len)
    words = words[: context.max_len]
    tokenizer = context.tokenizer
    tokens = [w if w in tokenizer else UNK for w in words]
    ids = torch.tensor([tokenizer.id_of(w) for w in words], dtype=torch.int64)
    notes = []
    if cut:
        notes.append(f"the model reads at most {context.max_len} words, so the last {cut} were left out")
    unknown = [token == UNK for token in tokens]
    if all(unknown):
        notes.append("the model knows none of these words, so it sees only <unk>")
    return PreparedSentence(text, tokens, words, unknown, ids, cut, notes)


def _pretrained_sentence(context: InputContext, text: str) -> PreparedSentence:
    """A sentence through a pretrained model's own tokenizer: subword pieces ("z", "##or") and
    its special tokens ([CLS], [SEP]) as the model reads them; cut at its maximum length."""
    from models.pretrained import tokenize

    if not text.strip():
        raise InputError("type a sentence first")
    ids, tokens, cut = tokenize(context.pretrained, text)
    unknown_token = getattr(context.pretrained.tokenizer, "unk_token", None)
    unknown = [token == unknown_token for token in tokens]
    notes = [f"the model reads at most {len(ids)} tokens, so the last {cut} were left out"] if cut else []
    return PreparedSentence(text, list(tokens), list(tokens), unknown, ids, cut, notes)
