"""The user's own data: a ``.zip`` of one folder per class of pictures, or a ``.csv`` of ``text,label``.

Nothing is extracted to disk and nothing is trusted. A zip is refused outright when an entry's
path points outside the archive (``..``, an absolute path), when it would expand past
``MAX_UNCOMPRESSED_BYTES`` or hold more than ``MAX_FILES`` entries, when an entry is compressed
suspiciously well (a "zip bomb"), or when it is password-protected. One extra top folder is
accepted (``animals/cats/1.png``); ``__MACOSX`` and hidden files are ignored. Files that are not
pictures, damaged pictures and pictures too large to open safely are skipped and reported in
``dataset.warnings``. Classes need ``MIN_PER_CLASS`` examples each; there must be 2 to
``MAX_CLASSES`` of them.

Pictures are all framed by the dataset's own ``preprocess`` (fit inside, pad with the picture's
background): square, at ``image_size`` or, by default, the median size clamped to 16..64; grey
if every picture is grey, else colour.
"""
from __future__ import annotations

import csv
import io
import re
import warnings
import zipfile
from pathlib import PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError

from models.files import unsafe_zip_path

from ..data import Dataset, DatasetError
from ..limits import max_upload_bytes
from .common import image_dataset, text_dataset
from .preprocess import ImagePreprocessor

# The largest file accepted: ``training.limits.max_upload_bytes()`` (GLASSBOX_MAX_UPLOAD_MB, 50 MB
# by default), read at each upload; a text file is also held to MAX_CSV_BYTES.
MAX_UNCOMPRESSED_BYTES = 500 * 2**20
MAX_FILES = 20_000
MAX_RATIO = 100  # uncompressed / compressed, for entries above RATIO_CHECK_BYTES
RATIO_CHECK_BYTES = 2**20
MAX_IMAGE_PIXELS = 40_000_000  # about 7,000 × 6,000
MIN_PER_CLASS = 5
MAX_CLASSES = 100
IMAGE_SIZE_RANGE = (16, 64)  # the default picture side: the median, clamped to this
MAX_CSV_BYTES = 50 * 2**20
MAX_CSV_ROWS = 200_000
TEXT_HEADERS = {"text", "sentence", "review", "comment", "message", "content", "tweet"}
LABEL_HEADERS = {"label", "labels", "class", "category", "sentiment", "emotion", "mood", "tag", "target", "y"}
_IGNORED = {"__MACOSX", "Thumbs.db", "desktop.ini"}


def dataset_from_upload(data, filename: str, *, image_size: int | None = None, seed: int = 0) -> Dataset:
    """A Dataset from an uploaded ``.zip`` (pictures) or ``.csv`` (sentences); DatasetError says why not."""
    if hasattr(data, "getvalue"):
        data = data.getvalue()
    elif hasattr(data, "read"):
        data = data.read()
    data = bytes(data)
    suffix = PurePosixPath(str(filename).lower()).suffix
    if suffix == ".zip":
        return _images_from_zip(data, filename, image_size, seed)
    if suffix in (".csv", ".tsv", ".txt"):
        return _texts_from_csv(data, filename, seed)
    raise DatasetError(f"'{filename}' is neither a .zip of pictures (one folder per class) nor a .csv of "
                       "text,label rows")


# ---- pictures -----------------------------------------------------------------------------
def _size(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:,.1f} MB" if n_bytes >= 2**20 else f"{n_bytes / 2**10:,.0f} KB"


def _listing(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _skipped(names: list[str], one: str, many: str, what: str) -> str:
    """'2 files are not pictures and were skipped: a.txt, b.doc' ('' when there are none)."""
    if not names:
        return ""
    was = "was" if len(names) == 1 else "were"
    return f"{_plural(len(names), one, many)} {what.format(was=was)}: {_listing(names)}"


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _open_zip(data: bytes, filename: str) -> zipfile.ZipFile:
    if len(data) > max_upload_bytes():
        raise DatasetError(f"'{filename}' is {_size(len(data))}; uploads are limited to {_size(max_upload_bytes())} "
                           "on this server, which the whole class shares")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise DatasetError(f"'{filename}' is not a valid .zip file") from None
    if len(entries) > MAX_FILES:
        raise DatasetError(f"'{filename}' holds {len(entries):,} files; at most {MAX_FILES:,} are accepted")
    bad = [e.filename for e in entries if unsafe_zip_path(e.filename)]
    if bad:
        raise DatasetError(f"'{filename}' was refused: it contains paths that point outside its folder "
                           f"({_listing(bad, 3)}), which a safe zip never does")
    total = sum(e.file_size for e in entries)
    if total > MAX_UNCOMPRESSED_BYTES:
        raise DatasetError(f"'{filename}' was refused: it would expand to {_size(total)}, more than the "
                           f"{_size(MAX_UNCOMPRESSED_BYTES)} allowed")
    bombs = [e.filename for e in entries
             if e.file_size > RATIO_CHECK_BYTES and e.file_size > MAX_RATIO * max(1, e.compress_size)]
    if bombs:
        raise DatasetError(f"'{filename}' was refused: {_listing(bombs, 3)} expands more than {MAX_RATIO} times "
                           "its compressed size, which pictures never do (it looks like a zip bomb)")
    if any(e.flag_bits & 0x1 for e in entries):
        raise DatasetError(f"'{filename}' is password-protected; upload a zip without a password")
    return archive


def _class_files(archive: zipfile.ZipFile, filename: str) -> tuple[dict[str, list], list[str]]:
    """{class folder: [zip entries]} (one top folder level stripped if all share it), loose files."""
    entries = []
    for entry in archive.infolist():
        parts = PurePosixPath(entry.filename.replace("\\", "/")).parts
        if entry.is_dir() or not parts or any(p.startswith(".") or p in _IGNORED for p in parts):
            continue
        entries.append((parts, entry))
    if not entries:
        raise DatasetError(f"'{filename}' is empty: put your pictures in one folder per class (cats/…, dogs/…)")
    if all(len(parts) >= 3 for parts, _ in entries) and len({parts[0] for parts, _ in entries}) == 1:
        entries = [(parts[1:], entry) for parts, entry in entries]
    classes, loose = {}, []
    for parts, entry in sorted(entries, key=lambda pe: pe[0]):
        if len(parts) == 1:
            loose.append(parts[0])
        else:
            classes.setdefault(parts[0], []).append(entry)
    if not classes:
        raise DatasetError(f"'{filename}' has no class folders: put the pictures of each class in its own "
                           "folder (cats/…, dogs/…) and zip those folders")
    return classes, loose


def open_picture(data: bytes) -> Image.Image:
    """The picture in ``data``, checked to be small enough to decode safely; errors as PIL raises them."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image = Image.open(io.BytesIO(data))
    if image.size[0] * image.size[1] > MAX_IMAGE_PIXELS:
        raise Image.DecompressionBombError(f"{image.size[0]}×{image.size[1]} pixels")
    return image


def _images_from_zip(data: bytes, filename: str, image_size, seed: int) -> Dataset:
    archive = _open_zip(data, filename)
    classes, loose = _class_files(archive, filename)
    if len(classes) > MAX_CLASSES:
        raise DatasetError(f"'{filename}' has {len(classes)} class folders; at most {MAX_CLASSES} are accepted")
    not_images, too_large, damaged, found = [], [], [], []  # found: (class index, entry, (w, h))
    for label, (name, members) in enumerate(sorted(classes.items())):
        for entry in members:
            try:
                image = open_picture(archive.read(entry))
                found.append((label, entry, image.size))
            except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                too_large.append(entry.filename)
            except UnidentifiedImageError:
                not_images.append(entry.filename)
            except (OSError, SyntaxError, ValueError, EOFError, zipfile.BadZipFile):
                damaged.append(entry.filename)
    if image_size is None:
        median = float(np.median([max(size) for _, _, size in found])) if found else IMAGE_SIZE_RANGE[0]
        image_size = int(min(max(round(median), IMAGE_SIZE_RANGE[0]), IMAGE_SIZE_RANGE[1]))
    elif isinstance(image_size, bool) or not isinstance(image_size, int) or not 8 <= image_size <= 256:
        raise DatasetError(f"the picture size must be a whole number of pixels from 8 to 256, not {image_size!r}")
    colour = ImagePreprocessor(3, image_size, image_size, None, {"resize": "pad"})
    pictures, labels = [], []
    for label, entry, _ in found:
        try:
            pictures.append(colour.prepare(open_picture(archive.read(entry))))
            labels.append(label)
        except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError, DatasetError):
            damaged.append(entry.filename)
    notes = [_skipped(not_images, "file is not a picture", "files are not pictures", "and {was} skipped"),
             _skipped(damaged, "picture", "pictures", "could not be read (damaged?) and {was} skipped"),
             _skipped(too_large, "picture is", "pictures are",
                      f"too large to open safely (over {MAX_IMAGE_PIXELS // 1_000_000} million pixels) and skipped"),
             _skipped(loose, "file is", "files are", "not inside a class folder and {was} skipped")]
    notes = [note for note in notes if note]
    if not pictures:
        raise DatasetError(f"no pictures could be read from '{filename}'. " + "; ".join(notes))
    names = sorted(classes)
    counts = np.bincount(labels, minlength=len(names))
    if (counts == 0).any():  # a folder of notes or documents is not a class
        empty = [n for n, c in zip(names, counts) if c == 0]
        notes.append(f"{_plural(len(empty), 'folder has', 'folders have')} no pictures and "
                     f"{'was' if len(empty) == 1 else 'were'} left out: {_listing(empty)}")
        keep = np.flatnonzero(counts)
        labels = np.searchsorted(keep, labels).tolist()
        names = [names[i] for i in keep]
    _check_classes(names, np.asarray(labels), "pictures", filename, notes)
    images = np.stack(pictures)  # (N, H, W, 3)
    grey = bool((images[..., :1] == images).all())
    if grey:
        images = np.ascontiguousarray(images[..., :1])
    preprocessor = ImagePreprocessor(1 if grey else 3, image_size, image_size, None, {"resize": "pad"})
    description = (f"{len(images)} pictures in {len(names)} classes from {filename} "
                   f"({image_size}×{image_size} {'grey' if grey else 'colour'})")
    return image_dataset(filename, images, np.asarray(labels, dtype=np.int64), names, preprocessor=preprocessor,
                         seed=seed, description=description, warnings=notes)


def _check_classes(names: list[str], labels: np.ndarray, what: str, filename: str, notes=()) -> None:
    counts = np.bincount(labels, minlength=len(names))
    used = [n for n, c in zip(names, counts) if c > 0]
    if len(used) < 2:
        only = f" ('{used[0]}')" if used else ""
        raise DatasetError(f"'{filename}' has only one class{only}: a classifier needs at least two")
    if len(names) > MAX_CLASSES:
        raise DatasetError(f"'{filename}' has {len(names)} classes; at most {MAX_CLASSES} are accepted")
    few = [f"{n} ({c})" for n, c in zip(names, counts) if c < MIN_PER_CLASS]
    if few:
        detail = (" " + "; ".join(notes)) if notes else ""
        raise DatasetError(f"every class needs at least {MIN_PER_CLASS} {what}; "
                           f"too few in: {_listing(few, 10)}.{detail}")


# ---- sentences ----------------------------------------------------------------------------
def _decode(data: bytes, notes: list[str]) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        notes.append("the file is not UTF-8, so it was read as Windows-1252 (save it as 'CSV UTF-8' if "
                     "letters look wrong)")
        return data.decode("cp1252", errors="replace")


def _line_list(lines: list[int]) -> str:
    shown = ", ".join(map(str, lines[:10]))
    return shown + (f" and {len(lines) - 10} more" if len(lines) > 10 else "")


def _opens_a_quote_left_open(lines: list[str]) -> bool:
    """Whether the lines one row was read from hold an odd number of quotes: a quote opened and
    never closed, so the reader took the rest of the file (or of the line) as one text."""
    return "".join(lines).count('"') % 2 == 1


def _quote_left_open(filename: str, line: int) -> str:
    return (f"line {line} of '{filename}' opens a quote (\") that is never closed, so everything after it was "
            "read as one text; close the quote, or write a quote inside a text as two (\"\")")


def _csv_problem(filename: str, source_lines: list[str], line: int, err: csv.Error) -> str:
    """What is wrong, in the user's words, where the csv module raised ``err`` reading ``line``."""
    here = source_lines[line - 1] if 0 < line <= len(source_lines) else ""
    if "field larger than field limit" in str(err):
        if _opens_a_quote_left_open(source_lines[line - 1:]):
            return _quote_left_open(filename, line)
        return (f"line {line} of '{filename}' is {len(here.rstrip(chr(13))):,} characters long; a .csv for "
                "training has one short text and its label on each line (text,label)")
    return f"'{filename}' is not a valid CSV near line {line}: {err}"


def read_text_csv(data: bytes, filename: str) -> tuple[list[str], np.ndarray, list[str], list[str]]:
    """(texts, label indices, class names, notes for the user) of a .csv of text,label rows,
    checked; DatasetError says what is wrong (fine-tuning reads the texts with a model's own tokenizer)."""
    limit = min(MAX_CSV_BYTES, max_upload_bytes())
    if len(data) > limit:
        raise DatasetError(f"'{filename}' is {_size(len(data))}; a text file is limited to {_size(limit)} "
                           "on this server, which the whole class shares")
    notes: list[str] = []
    content = _decode(data, notes)
    if "\x00" in content:
        raise DatasetError(f"'{filename}' is not a text file")
    if not content.strip():
        raise DatasetError(f"'{filename}' is empty: it needs rows of text,label")
    first_line = content.lstrip().split("\n", 1)[0]
    delimiter = "," if "," in first_line else ";" if ";" in first_line else "\t" if "\t" in first_line else ","
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=delimiter)
    source_lines = content.split("\n")  # as the reader counts them, to say what is wrong with one
    rows = []  # (line number, cells)
    unclosed = []  # lines that open a quote that is never closed (it swallows the lines after it)
    try:
        while True:
            line = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                break
            if any(c.strip() for c in cells):
                rows.append((line, [c.strip() for c in cells]))
            if _opens_a_quote_left_open(source_lines[line - 1:reader.line_num]):
                unclosed.append(line)
            if len(rows) > MAX_CSV_ROWS + 1:
                raise DatasetError(f"'{filename}' has more than {MAX_CSV_ROWS:,} rows")
    except csv.Error as err:
        raise DatasetError(_csv_problem(filename, source_lines, line, err)) from None
    if not rows:
        raise DatasetError(f"'{filename}' is empty: it needs rows of text,label")
    text_col = label_col = None
    header = [c.lower() for c in rows[0][1]]
    if any(c in LABEL_HEADERS for c in header) and any(c in TEXT_HEADERS for c in header):
        text_col = next(i for i, c in enumerate(header) if c in TEXT_HEADERS)
        label_col = next(i for i, c in enumerate(header) if c in LABEL_HEADERS)
        rows = rows[1:]
    texts, raw_labels, missing = [], [], []
    for line, cells in rows:
        if text_col is None:  # text,label — a comma inside an unquoted text stays in the text
            text, label = (delimiter.join(cells[:-1]), cells[-1]) if len(cells) >= 2 else (cells[0], "")
        else:
            text = cells[text_col] if text_col < len(cells) else ""
            label = cells[label_col] if label_col < len(cells) else ""
        if not text.strip() or not label:
            missing.append(line)
        texts.append(text.strip()), raw_labels.append(label)
    if not texts:
        raise DatasetError(f"'{filename}' has a header but no rows of text,label")
    if unclosed and set(unclosed) & set(missing):
        raise DatasetError(_quote_left_open(filename, unclosed[0]))
    if missing:
        raise DatasetError(f"{_plural(len(missing), 'row has', 'rows have')} no text or no label in '{filename}' "
                           f"(line {_line_list(missing)}); fill {'it' if len(missing) == 1 else 'them'} in or "
                           f"delete {'it' if len(missing) == 1 else 'them'}")
    distinct = set(raw_labels)
    names = sorted(distinct, key=int) if all(re.fullmatch(r"-?\d+", n) for n in distinct) else sorted(distinct)
    if len(names) > MAX_CLASSES:
        raise DatasetError(f"'{filename}' has {len(names)} different labels; at most {MAX_CLASSES} are accepted "
                           "(is the label in the second column, after the text?)")
    index = {name: i for i, name in enumerate(names)}
    labels = np.asarray([index[n] for n in raw_labels], dtype=np.int64)
    _check_classes(names, labels, "rows", filename)
    return texts, labels, names, notes


def _texts_from_csv(data: bytes, filename: str, seed: int) -> Dataset:
    texts, labels, names, notes = read_text_csv(data, filename)
    description = f"{len(texts)} sentences in {len(names)} classes from {filename}"
    return text_dataset(filename, texts, labels, names, seed=seed, description=description, warnings=notes)
