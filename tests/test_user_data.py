"""The user's own data: a zip of class folders of pictures, or a csv of text,label — and every refusal."""
import io
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from training.data import DatasetError, fit_spec_to_dataset
from training.datasets import dataset_from_upload, preprocessor_from_meta, uploads
from training.datasets.preprocess import denormalize_to_uint8
from training.tokenizer import Tokenizer
from models import presets


def picture(seed: int, size=(40, 30), mode="RGB", fmt="PNG") -> bytes:
    rng = np.random.default_rng(seed)
    w, h = size
    pixels = np.zeros((h, w, 3), np.uint8)
    pixels[:] = rng.integers(0, 256, 3)
    pixels[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = rng.integers(0, 256, 3)
    image = Image.fromarray(pixels).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def class_folders(classes=("cats", "dogs", "owls"), per_class=6, top="pets/", mode="RGB", size=(40, 30)) -> dict:
    return {f"{top}{c}/{i}.png": picture(10 * k + i, size=size, mode=mode)
            for k, c in enumerate(classes) for i in range(per_class)}


# ---- a zip of pictures -------------------------------------------------------------------------------
def test_zip_of_class_folders():
    files = class_folders()
    files["pets/cats/notes.txt"] = b"these are my cats"
    files["pets/docs/readme.md"] = b"# my pets"  # a folder without pictures is not a class
    files["pets/dogs/list.csv"] = b"a,b"
    files["pets/owls/7.jpg"] = picture(99, fmt="JPEG", size=(60, 45))
    files["pets/owls/8.png"] = picture(98, mode="RGBA")
    files["__MACOSX/pets/cats/._0.png"] = b"resource fork"
    files["pets/.DS_Store"] = b"\0\0"
    ds = dataset_from_upload(zipped(files), "pets.zip", seed=3)
    assert ds.name == "pets.zip" and ds.source is None and ds.input_kind == "image"
    assert ds.class_names == ["cats", "dogs", "owls"]
    assert len(ds.x_train) + len(ds.x_val) == 20
    assert ds.input_shape == (3, 40, 40)  # the median size (longer side), square
    assert ds.warnings == [
        "3 files are not pictures and were skipped: pets/cats/notes.txt, pets/docs/readme.md, pets/dogs/list.csv",
        "1 folder has no pictures and was left out: docs"]
    assert "20 pictures in 3 classes" in ds.description
    for y in (ds.y_train, ds.y_val):
        assert set(y.tolist()) == {0, 1, 2}
    # What was trained on is what preprocess makes of the uploaded file ...
    everything = torch.cat([ds.x_train, ds.x_val])
    for name in ("pets/dogs/2.png", "pets/owls/7.jpg", "pets/owls/8.png"):
        x = ds.preprocess(Image.open(io.BytesIO(files[name])))
        assert (everything - x).abs().amax(dim=(1, 2, 3)).min() < 1e-5
    # ... and a training tensor saved as a picture comes back unchanged.
    for x in ds.x_val:
        pixels = denormalize_to_uint8(x, ds.normalization)
        torch.testing.assert_close(ds.preprocess(Image.fromarray(pixels)), x, atol=1e-5, rtol=0)
    assert torch.equal(preprocessor_from_meta(ds.meta())(Image.open(io.BytesIO(files["pets/owls/7.jpg"]))),
                       ds.preprocess(Image.open(io.BytesIO(files["pets/owls/7.jpg"]))))
    spec = fit_spec_to_dataset(presets.get("shapes-cnn"), ds)
    assert (spec.input.channels, spec.input.height, spec.num_classes) == (3, 40, 3)


def test_zip_without_a_top_folder_grey_pictures_and_a_chosen_size():
    ds = dataset_from_upload(zipped(class_folders(top="", mode="L", classes=("a", "b"))), "abc.zip", image_size=24)
    assert ds.class_names == ["a", "b"] and ds.input_shape == (1, 24, 24)  # all grey -> one channel
    assert ds.warnings == []
    big = dataset_from_upload(zipped(class_folders(top="", size=(400, 300))), "big.zip")
    assert big.input_shape == (3, 64, 64)  # the median size, clamped


def test_split_is_deterministic_per_seed():
    data = zipped(class_folders())
    a, b, c = (dataset_from_upload(data, "p.zip", seed=s) for s in (0, 0, 1))
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_val, b.y_val)
    assert not torch.equal(a.x_train, c.x_train)


def test_zip_path_traversal_is_refused():
    for bad in ("../evil.png", "pets/../../evil.png", "/etc/evil.png", "C:/evil.png", "pets\\..\\evil.png"):
        files = class_folders()
        files[bad] = picture(0)
        with pytest.raises(DatasetError, match="outside its folder"):
            dataset_from_upload(zipped(files), "pets.zip")


def test_zip_that_expands_too_far_is_refused(monkeypatch):
    files = class_folders()
    monkeypatch.setattr(uploads, "MAX_UNCOMPRESSED_BYTES", sum(map(len, files.values())) - 1)
    with pytest.raises(DatasetError, match="would expand to .* KB, more than"):
        dataset_from_upload(zipped(files), "pets.zip")


def test_zip_bomb_ratio_and_too_many_files_are_refused(monkeypatch):
    files = class_folders()
    files["pets/cats/zeros.bmp"] = bytes(3 * 2**20)  # 3 MB that compress to a few KB
    with pytest.raises(DatasetError, match="zip bomb"):
        dataset_from_upload(zipped(files), "pets.zip")
    monkeypatch.setattr(uploads, "MAX_FILES", 10)
    with pytest.raises(DatasetError, match="holds 18 files; at most 10"):
        dataset_from_upload(zipped(class_folders()), "pets.zip")


def test_pictures_too_large_to_open_safely_are_skipped_or_refused(monkeypatch):
    files = class_folders()
    files["pets/cats/huge.png"] = picture(5, size=(200, 200))
    monkeypatch.setattr(uploads, "MAX_IMAGE_PIXELS", 10_000)
    ds = dataset_from_upload(zipped(files), "pets.zip")
    assert len(ds.x_train) + len(ds.x_val) == 18
    assert any("too large to open safely" in w and "huge.png" in w for w in ds.warnings)
    monkeypatch.setattr(uploads, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(DatasetError, match="no pictures could be read.*too large"):
        dataset_from_upload(zipped(files), "pets.zip")


def test_pil_decompression_bomb_check_also_applies(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # PIL warns above this and refuses above twice it
    files = class_folders(size=(30, 20))  # 600 pixels: PIL's warning, turned into a refusal
    with pytest.raises(DatasetError, match="too large to open safely"):
        dataset_from_upload(zipped(files), "pets.zip")


def test_non_pictures_are_counted_and_nothing_usable_is_refused():
    files = {f"pets/{c}/{i}.txt": b"hello" for c in ("a", "b") for i in range(3)}
    with pytest.raises(DatasetError, match="no pictures could be read.*6 files are not pictures"):
        dataset_from_upload(zipped(files), "pets.zip")
    damaged = class_folders()
    damaged["pets/cats/broken.png"] = picture(1)[:60]
    ds = dataset_from_upload(zipped(damaged), "pets.zip")
    assert any("1 picture could not be read" in w and "broken.png" in w for w in ds.warnings)


def test_too_few_pictures_in_a_class_names_the_class():
    files = class_folders(per_class=6)
    for i in range(3, 6):
        del files[f"pets/owls/{i}.png"]
    with pytest.raises(DatasetError, match=r"at least 5 pictures; too few in: owls \(3\)"):
        dataset_from_upload(zipped(files), "pets.zip")


def test_class_count_limits():
    with pytest.raises(DatasetError, match="only one class \\('cats'\\)"):
        dataset_from_upload(zipped(class_folders(classes=("cats",))), "cats.zip")
    many = {f"c{k}/1.png": b"x" for k in range(101)}
    with pytest.raises(DatasetError, match="101 class folders; at most 100"):
        dataset_from_upload(zipped(many), "many.zip")
    with pytest.raises(DatasetError, match="no class folders"):
        dataset_from_upload(zipped({f"{i}.png": picture(i) for i in range(10)}), "flat.zip")


def test_loose_files_are_reported():
    files = class_folders(top="")
    files["readme.png"] = picture(3)
    ds = dataset_from_upload(zipped(files), "pets.zip")
    assert any("not inside a class folder" in w and "readme.png" in w for w in ds.warnings)


def test_not_a_zip_and_unknown_kinds_are_refused():
    with pytest.raises(DatasetError, match="not a valid .zip"):
        dataset_from_upload(b"PK but not really", "pets.zip")
    with pytest.raises(DatasetError, match="neither a .zip"):
        dataset_from_upload(picture(0), "cat.png")
    with pytest.raises(DatasetError, match="empty"):
        dataset_from_upload(zipped({"__MACOSX/x": b""}), "pets.zip")


def test_password_protected_zip_is_refused():
    data = bytearray(zipped(class_folders()))
    # Set the "encrypted" flag in every central-directory entry (zipfile cannot write encrypted zips).
    at = data.find(b"PK\x01\x02")
    while at != -1:
        data[at + 8] |= 0x1
        at = data.find(b"PK\x01\x02", at + 4)
    with pytest.raises(DatasetError, match="password"):
        dataset_from_upload(bytes(data), "pets.zip")


# ---- a csv of sentences ------------------------------------------------------------------------------
def rows(n_per_class=6, labels=("happy", "sad")) -> list[str]:
    words = {"happy": ["sunny", "warm", "great"], "sad": ["rainy", "cold", "grey"], "meh": ["ok", "fine", "so-so"]}
    return [f"the day was {words[label][i % 3]} and {words[label][(i + 1) % 3]},{label}"
            for label in labels for i in range(n_per_class)]


def test_csv_of_text_and_label():
    text = "\ufefftext,label\n" + "\n".join(rows()) + '\n"a ""quoted"", sunny day, with commas",happy\n\n'
    ds = dataset_from_upload(text.encode("utf-8"), "moods.csv", seed=1)
    assert ds.input_kind == "tokens" and ds.class_names == ["happy", "sad"] and ds.source is None
    assert len(ds.x_train) + len(ds.x_val) == 13
    assert ds.vocab[:2] == ["<pad>", "<unk>"]
    tok = Tokenizer(ds.vocab)
    train_words = {w for row in ds.x_train for w in tok.decode(row)}
    assert set(ds.vocab[2:]) == train_words  # built from the training split only
    assert ds.preprocess("The day was SUNNY").tolist()[:4] == [tok.id_of(w) for w in ("the", "day", "was", "sunny")]
    assert torch.equal(preprocessor_from_meta(ds.meta())("cold and grey"), ds.preprocess("cold and grey"))
    assert fit_spec_to_dataset(presets.get("sentiment-gru"), ds).input.vocab_size == len(ds.vocab)


def test_csv_without_header_semicolons_and_numeric_labels():
    plain = dataset_from_upload("\n".join(rows()).encode(), "moods.csv")
    assert plain.class_names == ["happy", "sad"]
    semicolons = "\n".join(r.replace(",", ";") for r in rows(labels=("happy", "sad", "meh")))
    assert dataset_from_upload(semicolons.encode(), "m.csv").class_names == ["happy", "meh", "sad"]
    numbered = "\n".join(f"sentence number {i},{i % 11}" for i in range(66))
    assert dataset_from_upload(numbered.encode(), "n.csv").class_names[:3] == ["0", "1", "2"]  # 10 after 9
    unquoted = "\n".join(r.replace(" and ", ", and ") for r in rows())  # commas inside an unquoted text
    assert dataset_from_upload(unquoted.encode(), "u.csv").class_names == ["happy", "sad"]


def test_csv_in_windows_encoding_is_read_with_a_warning():
    text = "\n".join(rows() + [f"caf\xe9 au lait {i},happy" for i in range(6)])
    ds = dataset_from_upload(text.encode("cp1252"), "moods.csv")
    assert "not UTF-8" in ds.warnings[0]
    assert "café" in ds.vocab  # read correctly, not as two garbled characters


def test_csv_refusals():
    with pytest.raises(DatasetError, match="empty"):
        dataset_from_upload(b"", "m.csv")
    with pytest.raises(DatasetError, match="empty"):
        dataset_from_upload(b"\n \n", "m.csv")
    with pytest.raises(DatasetError, match="header but no rows"):
        dataset_from_upload(b"text,label\n", "m.csv")
    lines = ["text,label"] + rows()
    lines[3] = ",happy"  # line 4: no text
    lines[6] = "a day with no label,"  # line 7: no label
    lines[9] = "just text"  # line 10: no comma at all
    with pytest.raises(DatasetError, match=r"3 rows have no text or no label .*line 4, 7, 10"):
        dataset_from_upload("\n".join(lines).encode(), "m.csv")
    with pytest.raises(DatasetError, match="only one class \\('happy'\\)"):
        dataset_from_upload("\n".join(rows(labels=("happy",))).encode(), "m.csv")
    with pytest.raises(DatasetError, match=r"at least 5 rows; too few in: sad \(3\)"):
        dataset_from_upload("\n".join(rows()[:9]).encode(), "m.csv")
    many = "\n".join(f"text {i},label{i}" for i in range(101))
    with pytest.raises(DatasetError, match="101 different labels; at most 100"):
        dataset_from_upload(many.encode(), "m.csv")
    with pytest.raises(DatasetError, match="not a text file"):
        dataset_from_upload(b"\x00\x01\x02,\x00", "m.csv")


def test_csv_with_a_quote_never_closed_is_blamed_on_the_quote():
    lines = ["text,label"] + rows()
    lines[1] = '"the day was sunny and warm,happy'  # line 2: the quote swallows the rest of the file
    with pytest.raises(DatasetError) as refused:
        dataset_from_upload("\n".join(lines).encode(), "m.csv")
    message = str(refused.value)
    assert "line 2" in message and "quote" in message and "never closed" in message, message
    assert "no text or no label" not in message
    last = ["text,label"] + rows() + ['"the day was grey,sad']  # the quote only takes its own line
    with pytest.raises(DatasetError, match=r"line 14 of 'm.csv' opens a quote \(\"\) that is never closed"):
        dataset_from_upload("\n".join(last).encode(), "m.csv")
    long = ["text,label", '"' + "a" * 200_000] + rows()  # it swallows more than the csv module's field limit
    with pytest.raises(DatasetError, match=r"line 2 of 'm.csv' opens a quote"):
        dataset_from_upload("\n".join(long).encode(), "m.csv")


def test_a_huge_line_is_refused_in_plain_words():
    with pytest.raises(DatasetError) as refused:
        dataset_from_upload(b"a" * 2**20, "one-line.csv")
    message = str(refused.value)
    assert "field limit" not in message and "131072" not in message, message
    assert "line 1 of 'one-line.csv' is 1,048,576 characters long" in message
    assert "one short text and its label on each line" in message
