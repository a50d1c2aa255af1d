"""Built-in datasets against references: what a picture or sentence becomes through ``preprocess``
is what the model trained on; labels follow their stated rules; downloads are checked offline
with files in the real formats written here."""
import dataclasses
import gzip
import hashlib
import io
import json
import pickle
import struct
import tarfile
import urllib.error

import numpy as np
import pytest
import torch
from PIL import Image

from models import build_model, presets
from training.data import DatasetError, fit_spec_to_dataset
from training.datasets import builtin_names, describe, load_dataset, preprocessor_from_meta, remote
from training.datasets import sentiment as sentiment_module
from training.datasets.preprocess import denormalize_to_uint8
from training.tokenizer import Tokenizer, split_words

SMALL = {"digits": {}, "shapes": {"n": 400}, "sentiment": {"n": 600}, "brackets": {"n": 600}}


@pytest.fixture(scope="module")
def built():
    return {name: load_dataset(name, **options) for name, options in SMALL.items()}


def _as_picture(x: torch.Tensor, dataset) -> Image.Image:
    """A training tensor turned back into the 8-bit picture it was made from."""
    pixels = denormalize_to_uint8(x, dataset.normalization)
    return Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)


def assert_preprocess_gives_training_tensors(dataset, count=None):
    for xs in (dataset.x_train, dataset.x_val):
        for x in xs[:count]:
            again = dataset.preprocess(_as_picture(x, dataset))
            assert again.shape == x.shape and again.dtype == torch.float32
            torch.testing.assert_close(again, x, atol=1e-5, rtol=0)


# ---- every built-in -------------------------------------------------------------------------
def test_builtin_names_and_descriptions():
    assert builtin_names() == ["digits", "shapes", "sentiment", "brackets", "mnist", "fashion-mnist", "cifar10"]
    for name in builtin_names():
        assert describe(name) and "\n" not in describe(name)


@pytest.mark.parametrize("name", list(SMALL))
def test_shapes_dtypes_and_splits(built, name):
    ds = built[name]
    n = ds.x_train.shape[0] + ds.x_val.shape[0]
    assert n == SMALL[name].get("n", 1797)
    assert ds.y_train.dtype == ds.y_val.dtype == torch.int64
    assert len(ds.y_train) == len(ds.x_train) and len(ds.y_val) == len(ds.x_val)
    assert 0.18 < len(ds.x_val) / n < 0.22  # 80/20
    for y in (ds.y_train, ds.y_val):  # stratified: every class in both splits, in proportion
        counts = torch.bincount(y, minlength=ds.num_classes).float()
        assert counts.min() > 0.7 * counts.mean()
    if ds.input_kind == "image":
        assert ds.x_train.dtype == torch.float32 and ds.x_train.dim() == 4
        assert ds.vocab is None and len(ds.normalization["mean"]) == ds.input_shape[0]
        flat = ds.x_train.transpose(0, 1).reshape(ds.input_shape[0], -1)  # normalised on the train split
        torch.testing.assert_close(flat.mean(1), torch.zeros(ds.input_shape[0]), atol=1e-3, rtol=0)
        torch.testing.assert_close(flat.std(1), torch.ones(ds.input_shape[0]), atol=1e-3, rtol=0)
    else:
        assert ds.x_train.dtype == torch.int64 and ds.x_train.dim() == 2
        assert ds.vocab[:2] == ["<pad>", "<unk>"] and int(ds.x_train.max()) < len(ds.vocab)
        assert ds.input_shape[0] <= 32
        assert (ds.x_train[:, 0] != 0).all()  # no empty sentence


@pytest.mark.parametrize("name", list(SMALL))
def test_deterministic_per_seed_and_rebuilt_from_source(built, name):
    ds = built[name]
    assert ds.source == {"builtin": name, "options": {**ds.source["options"], "seed": 0}}
    again = load_dataset(ds.source["builtin"], **ds.source["options"])
    assert torch.equal(again.x_train, ds.x_train) and torch.equal(again.y_train, ds.y_train)
    assert torch.equal(again.x_val, ds.x_val) and again.vocab == ds.vocab
    other = load_dataset(name, seed=1, **SMALL[name])
    assert not torch.equal(other.y_train, ds.y_train) or not torch.equal(other.x_train, ds.x_train)


def test_unknown_names_and_options_are_refused():
    with pytest.raises(DatasetError, match="digits, shapes"):
        load_dataset("imagenet")
    with pytest.raises(DatasetError, match="no option 'colour'.*n, size, noise"):
        load_dataset("shapes", colour="red")
    with pytest.raises(DatasetError, match="'n' must be"):
        load_dataset("shapes", n=-3)


@pytest.mark.parametrize("name", list(SMALL))
def test_meta_rebuilds_the_same_preprocess(built, name):
    ds = built[name]
    meta = json.loads(json.dumps(ds.meta()))  # as a checkpoint stores it: plain JSON
    rebuilt = preprocessor_from_meta(meta)
    pickle.loads(pickle.dumps(ds.preprocess))  # a worker process can receive it
    if ds.input_kind == "image":
        rng = np.random.default_rng(0)
        inputs = [_as_picture(ds.x_val[0], ds), Image.fromarray(rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)),
                  Image.new("RGBA", (20, 40), (0, 0, 0, 0)), Image.new("L", (90, 60), 200)]
    else:
        inputs = ["the film was not very good", "(()]", "", "WONDERFUL but boring!"]
    for raw in inputs:
        assert torch.equal(rebuilt(raw), ds.preprocess(raw))


def test_meta_without_dataset_information_is_refused():
    with pytest.raises(DatasetError, match="how its inputs were prepared"):
        preprocessor_from_meta({})
    with pytest.raises(DatasetError, match="vocabulary"):
        preprocessor_from_meta({"input_kind": "tokens", "input_shape": [8], "vocab": None})


# ---- pictures: preprocess is what was trained on ----------------------------------------------
def test_digits_preprocess_gives_every_training_tensor(built):
    ds = built["digits"]
    assert ds.input_shape == (1, 16, 16) and ds.class_names == [str(d) for d in range(10)]
    assert ds.image_options["invert_light_background"] is True
    assert_preprocess_gives_training_tensors(ds)


def test_shapes_preprocess_gives_training_tensors(built):
    ds = built["shapes"]
    assert ds.input_shape == (3, 32, 32) and ds.class_names == ["circle", "square", "triangle", "cross"]
    assert_preprocess_gives_training_tensors(ds)


def test_any_picture_mode_reaches_the_same_tensor(built):
    digits, shapes = built["digits"], built["shapes"]
    x = digits.x_val[3]
    grey = np.asarray(_as_picture(x, digits))
    variants = [Image.fromarray(grey).convert(mode) for mode in ("RGB", "RGBA", "LA", "P")]
    variants += [Image.fromarray(grey.astype(np.uint16) * 257), Image.fromarray(grey.astype(np.int32)),
                 Image.fromarray(grey.astype(np.float32) / 255.0)]
    assert [v.mode for v in variants[-3:]] == ["I;16", "I", "F"]
    for picture in variants:
        torch.testing.assert_close(digits.preprocess(picture), x, atol=1e-5, rtol=0, msg=picture.mode)
    colour = _as_picture(shapes.x_val[0], shapes)
    for picture in (colour.convert("RGBA"), colour.convert("L")):
        assert digits.preprocess(picture).shape == (1, 16, 16)  # colour -> grey for a grey dataset
    assert shapes.preprocess(colour.convert("RGBA")).shape == (3, 32, 32)
    assert shapes.preprocess(colour.convert("CMYK")).shape == (3, 32, 32)


def test_transparent_pixels_are_composited_over_white(built):
    shapes = built["shapes"]
    clear = Image.new("RGBA", (32, 32), (255, 0, 0, 0))  # red but fully transparent -> white
    white = Image.new("RGB", (32, 32), (255, 255, 255))
    assert torch.equal(shapes.preprocess(clear), shapes.preprocess(white))


def test_other_sizes_keep_the_aspect_and_pad_with_the_background(built):
    shapes = built["shapes"]
    wide = np.zeros((40, 160, 3), np.uint8)
    wide[:] = (0, 0, 255)  # blue background
    wide[10:30, 70:90] = (255, 255, 0)  # a yellow square
    pixels = denormalize_to_uint8(shapes.preprocess(Image.fromarray(wide)), shapes.normalization)
    assert pixels.shape == (32, 32, 3)
    assert (pixels[0, 0] == (0, 0, 255)).all() and (pixels[-1, -1] == (0, 0, 255)).all()  # padded with blue
    centre = pixels[15:17, 15:17].reshape(-1, 3)
    assert (centre[:, 0] > 200).all() and (centre[:, 2] < 60).all()  # the square is still square and centred
    assert (pixels[16, :, 0] > 200).sum() in range(3, 7)  # 20/160 of 32 pixels wide: aspect kept


def test_digits_black_ink_on_white_paper_becomes_the_training_convention(built):
    ds = built["digits"]
    x = ds.x_val[0]
    digit = denormalize_to_uint8(x, ds.normalization)[:, :, 0]
    # The same size, inverted: exactly the training tensor.
    assert torch.allclose(ds.preprocess(Image.fromarray(255 - digit)), x, atol=1e-5)
    # A photo-like drawing: black ink on white paper, 10× bigger, off centre, with margins.
    big = np.asarray(Image.fromarray(255 - digit).resize((120, 160), Image.BILINEAR))
    paper = np.full((300, 260), 255, np.uint8)
    paper[20:180, 30:150] = big
    out = ds.preprocess(Image.fromarray(paper))
    pixels = denormalize_to_uint8(out, ds.normalization)[:, :, 0].astype(float)
    assert np.median(np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])) < 10  # dark background
    assert pixels.max() == 255  # white ink
    correlation = np.corrcoef(pixels.ravel(), digit.astype(float).ravel())[0, 1]
    assert correlation > 0.85
    # The ink's box is centred, as in the training digits.
    cols = np.flatnonzero((pixels > 64).any(axis=0))
    assert abs((cols[0] + cols[-1]) / 2 - 7.5) <= 1
    # A dim photo (grey paper, dark grey ink, noise) and white chalk on a black board: the same digit.
    noise = np.random.default_rng(0).normal(0, 4, paper.shape)
    dim = np.clip(30 + paper * (80 / 255) + noise, 0, 255).astype(np.uint8)
    chalk = 255 - paper
    for other in (dim, chalk):
        pixels_other = denormalize_to_uint8(ds.preprocess(Image.fromarray(other)), ds.normalization)[:, :, 0]
        assert np.corrcoef(pixels_other.ravel().astype(float), pixels.ravel())[0, 1] > 0.95
    # Drawn on a transparent canvas (what a drawing widget gives): the same.
    canvas = Image.new("RGBA", (260, 300), (0, 0, 0, 0))
    canvas.putalpha(Image.fromarray(255 - paper))  # black ink, alpha where the ink is
    torch.testing.assert_close(ds.preprocess(canvas), out, atol=0.05, rtol=0)
    # A blank page is a blank input, not an error.
    blank = denormalize_to_uint8(ds.preprocess(Image.new("L", (100, 100), 255)), ds.normalization)
    assert blank.max() == 0


def test_preprocess_refuses_things_that_are_not_pictures(built):
    with pytest.raises(DatasetError, match="expected a picture"):
        built["shapes"].preprocess("a circle")
    with pytest.raises(DatasetError, match="expected a sentence"):
        built["sentiment"].preprocess(Image.new("L", (8, 8)))


# ---- sentences ----------------------------------------------------------------------------------
NEGATIONS = {"not", "never", "isn't", "wasn't", "didn't"}
POSITIVE_WORDS = set(sentiment_module.POSITIVE) | {w for pair in sentiment_module.LIKE for w in pair}
NEGATIVE_WORDS = set(sentiment_module.NEGATIVE) | {w for pair in sentiment_module.DISLIKE for w in pair}


def reference_label(text: str) -> int:
    """The labelling rules of sentiment.py, applied independently to the finished sentence."""
    words = split_words(text)
    if "but" in words:
        clause = words[words.index("but") + 1:]
    elif words[0] == "although":
        clause = words[words.index(",") + 1:]
    elif "even" in words:
        clause = words[:words.index(",")]
    else:
        clause = words
    polarity = [1 for w in clause if w in POSITIVE_WORDS] + [-1 for w in clause if w in NEGATIVE_WORDS]
    assert len(polarity) == 1, text
    flips = sum(w in NEGATIONS for w in clause)
    return int(polarity[0] * (-1) ** flips > 0)


def test_sentiment_labels_follow_the_stated_rules():
    texts, labels = sentiment_module.generate(3000, seed=5)
    assert len(set(texts)) == len(texts) and labels.sum() == 1500
    assert [reference_label(t) for t in texts] == labels.tolist()
    assert reference_label("not bad") == 1 and reference_label("good but boring") == 0
    assert reference_label("boring but good") == 1 and reference_label("not very good") == 0
    joined = " ".join(texts)
    for phrase in (" but ", "although", "even though", "not ", "never", "very", "extremely", "really"):
        assert phrase in joined


def test_sentiment_needs_word_order(built):
    ds = built["sentiment"]
    tok = Tokenizer(ds.vocab)
    texts = [" ".join(tok.decode(row)) for row in torch.cat([ds.x_train, ds.x_val])]
    labels = torch.cat([ds.y_train, ds.y_val]).tolist()
    # Swapping the two sides of "but" keeps every word and flips the label whenever they disagree.
    swapped = 0
    for text, label in zip(texts, labels):
        if " but " in text and text.count(" but ") == 1:
            first, second = text.split(" but ")
            if reference_label(first) != reference_label(second):
                assert reference_label(f"{second} but {first}") != label
                assert sorted(f"{second} but {first}".split()) == sorted(text.split())
                swapped += 1
    assert swapped > 0.15 * len(texts)
    # So a bag of words does badly, far from what a model that reads the order can do (100 %).
    from sklearn.linear_model import LogisticRegression

    def bag(x):
        counts = torch.zeros(len(x), len(ds.vocab))
        counts.scatter_add_(1, x, torch.ones_like(x, dtype=torch.float32))
        return counts[:, 2:].numpy()  # words only, no padding

    model = LogisticRegression(max_iter=2000).fit(bag(ds.x_train), ds.y_train.numpy())
    assert model.score(bag(ds.x_val), ds.y_val.numpy()) < 0.75


def reference_balanced(text: str) -> bool:
    pairs, stack = {")": "(", "]": "[", "}": "{"}, []
    for ch in text:
        if ch in "([{":
            stack.append(ch)
        elif not stack or stack.pop() != pairs[ch]:
            return False
    return not stack


def test_brackets_labels_are_correct_and_negatives_are_hard(built):
    ds = built["brackets"]
    assert ds.class_names == ["unbalanced", "balanced"]
    assert set(ds.vocab) == {"<pad>", "<unk>", "(", ")", "[", "]"}
    tok = Tokenizer(ds.vocab)
    x, y = torch.cat([ds.x_train, ds.x_val]), torch.cat([ds.y_train, ds.y_val])
    texts = ["".join(tok.decode(row)) for row in x]
    assert [int(reference_balanced(t)) for t in texts] == y.tolist()
    assert int(y.sum()) == len(y) // 2
    assert max(map(len, texts)) <= 24 and ds.input_shape == (24,)
    negatives = [t for t, label in zip(texts, y.tolist()) if label == 0]
    # Most are hard: as many closing brackets as opening ones, often of each type, wrong only in order.
    same_total = [t for t in negatives if t.count("(") + t.count("[") == t.count(")") + t.count("]")]
    same_each = [t for t in same_total if t.count("(") == t.count(")")]
    assert len(same_total) > 0.75 * len(negatives) and len(same_each) > 0.4 * len(negatives)
    assert ds.preprocess("( ( ) ]").tolist()[:4] == [tok.id_of(c) for c in "(()]"]


# ---- presets on datasets ------------------------------------------------------------------------
@pytest.mark.parametrize("preset, name", [
    ("digits-cnn", "digits"), ("shapes-cnn", "shapes"), ("shapes-vit", "shapes"),
    *[(p, d) for p in ("sentiment-rnn", "sentiment-lstm", "sentiment-gru", "sentiment-transformer")
      for d in ("sentiment", "brackets")]])
def test_presets_fit_their_datasets(built, preset, name):
    ds = built[name]
    spec = fit_spec_to_dataset(presets.get(preset), ds)
    assert spec.num_classes == ds.num_classes and spec.class_names == ds.class_names
    logits = build_model(spec, seed=0)(ds.x_val[:4])
    assert logits.shape == (4, ds.num_classes) and torch.isfinite(logits).all()


def test_a_cnn_on_sentences_is_refused_clearly(built):
    with pytest.raises(DatasetError, match="CNN model 'digits-cnn' cannot train on sentences"):
        fit_spec_to_dataset(presets.get("digits-cnn"), built["sentiment"])


# ---- downloads: parsers, cache, checksums, offline --------------------------------------------------
def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def cifar_tar_bytes(batches: dict[str, tuple[np.ndarray, np.ndarray]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, (images, labels) in batches.items():
            planes = images.transpose(0, 3, 1, 2).reshape(len(images), -1)  # (N, H, W, 3) -> R, G, B planes
            data = np.concatenate([labels.astype(np.uint8)[:, None], planes], axis=1).tobytes()
            member = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def md5(data: bytes) -> str:
    return "md5:" + hashlib.md5(data).hexdigest()


def mnist_like_files(rng, n_train=60, n_test=30):
    images = [np.zeros((n, 28, 28), np.uint8) for n in (n_train, n_test)]  # white strokes on black, like MNIST
    for block in images:
        block[:, 4:24, 6:22] = rng.integers(0, 256, (len(block), 20, 16))
    labels = [np.arange(n) % 10 for n in (n_train, n_test)]
    return {"train-images-idx3-ubyte.gz": idx_bytes(images[0], 2051),
            "train-labels-idx1-ubyte.gz": idx_bytes(labels[0], 2049),
            "t10k-images-idx3-ubyte.gz": idx_bytes(images[1], 2051),
            "t10k-labels-idx1-ubyte.gz": idx_bytes(labels[1], 2049)}, images, labels


def test_idx_parser_reads_the_real_format():
    images = np.arange(2 * 3 * 4).reshape(2, 3, 4).astype(np.uint8)
    assert np.array_equal(remote.parse_idx(idx_bytes(images, 2051), expect_magic=2051), images)
    assert np.array_equal(remote.parse_idx(gzip.decompress(idx_bytes(images, 2051))), images)  # not gzipped
    with pytest.raises(DatasetError, match="magic"):
        remote.parse_idx(idx_bytes(images, 2051), expect_magic=2049)
    with pytest.raises(DatasetError, match="size"):
        remote.parse_idx(gzip.decompress(idx_bytes(images, 2051))[:-1])


def test_cifar_parser_reads_binary_records():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 32, 32, 3)).astype(np.uint8)
    images[0, :, :, 0], images[0, :, :, 1], images[0, :, :, 2] = 10, 20, 30
    planes = images.transpose(0, 3, 1, 2).reshape(4, -1)
    records = np.concatenate([np.array([[3], [1], [4], [1]], np.uint8), planes], axis=1).tobytes()
    got, labels = remote.parse_cifar_records(records)
    assert np.array_equal(got, images) and labels.tolist() == [3, 1, 4, 1]
    assert got[0, 5, 5].tolist() == [10, 20, 30]
    with pytest.raises(DatasetError, match="3073-byte records"):
        remote.parse_cifar_records(records[:-1])


def test_fetch_downloads_once_verifies_and_caches(tmp_path):
    files, _, _ = mnist_like_files(np.random.default_rng(0))
    served = tmp_path / "mirror"
    served.mkdir()
    for name, data in files.items():
        (served / name).write_bytes(data)
    checksums = {name: md5(data) for name, data in files.items()}
    cache = tmp_path / "cache"
    paths = remote.fetch(remote.REMOTES["mnist"], root=cache, mirrors=["file:///nowhere/", served.as_uri() + "/"],
                         checksums=checksums)
    assert {p.name for p in cache.iterdir()} == set(files)
    assert all(paths[name].read_bytes() == data for name, data in files.items())

    def no_network(url, timeout=None):
        raise AssertionError("a cached file must not be downloaded again")
    remote.fetch(remote.REMOTES["mnist"], root=cache, checksums=checksums, opener=no_network)
    # A damaged cached copy is noticed and fetched again.
    paths["t10k-labels-idx1-ubyte.gz"].write_bytes(b"garbage")
    remote.fetch(remote.REMOTES["mnist"], root=cache, mirrors=[served.as_uri() + "/"], checksums=checksums)
    assert paths["t10k-labels-idx1-ubyte.gz"].read_bytes() == files["t10k-labels-idx1-ubyte.gz"]


def test_a_bad_checksum_is_refused_and_the_file_deleted(tmp_path):
    served = tmp_path / "mirror"
    served.mkdir()
    (served / "cifar-10-binary.tar.gz").write_bytes(b"not what was published")
    cache = tmp_path / "cache"
    with pytest.raises(DatasetError, match="damaged.*deleted.*digits, shapes, sentiment, brackets"):
        remote.fetch(remote.REMOTES["cifar10"], root=cache, mirrors=[served.as_uri() + "/"],
                     checksums={"cifar-10-binary.tar.gz": md5(b"the real archive")})
    assert list(cache.iterdir()) == []


def test_offline_names_the_builtin_alternatives(tmp_path, monkeypatch):
    monkeypatch.setenv("GLASSBOX_HOME", str(tmp_path))

    def offline(url, timeout=None):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
    with pytest.raises(DatasetError, match="no internet.*digits, shapes, sentiment, brackets"):
        remote.fetch(remote.REMOTES["fashion-mnist"], opener=offline)
    monkeypatch.setitem(remote.REMOTES, "mnist", dataclasses.replace(
        remote.REMOTES["mnist"], mirrors=((tmp_path / "missing").as_uri() + "/",)))
    with pytest.raises(DatasetError, match="could not download MNIST.*digits, shapes, sentiment, brackets"):
        load_dataset("mnist")


def _serve(monkeypatch, tmp_path, name, files):
    served = tmp_path / "mirror"
    served.mkdir(exist_ok=True)
    for file_name, data in files.items():
        (served / file_name).write_bytes(data)
    monkeypatch.setenv("GLASSBOX_HOME", str(tmp_path / "home"))
    monkeypatch.setitem(remote.REMOTES, name, dataclasses.replace(
        remote.REMOTES[name], mirrors=(served.as_uri() + "/",), files={f: md5(d) for f, d in files.items()}))


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_mnist_like_end_to_end(tmp_path, monkeypatch, name):
    files, images, labels = mnist_like_files(np.random.default_rng(1))
    _serve(monkeypatch, tmp_path, name, files)
    ds = load_dataset(name, n=40, n_val=20)
    assert (tmp_path / "home" / "datasets" / name / "train-images-idx3-ubyte.gz").exists()
    assert ds.x_train.shape == (40, 1, 28, 28) and ds.x_val.shape == (20, 1, 28, 28)
    assert ds.num_classes == 10 and ds.image_options["invert_light_background"]
    pixels = denormalize_to_uint8(ds.x_val[0], ds.normalization)[:, :, 0]  # each is one of the test pictures
    assert any(np.array_equal(pixels, picture) for picture in images[1])
    assert_preprocess_gives_training_tensors(ds, count=10)
    again = load_dataset(ds.source["builtin"], **ds.source["options"])
    assert torch.equal(again.x_train, ds.x_train) and torch.equal(again.y_val, ds.y_val)
    assert len(load_dataset(name, n=10_000).x_train) == 60  # "at most n"


def test_cifar10_end_to_end(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    batches = {f"data_batch_{i}.bin": (rng.integers(0, 256, (8, 32, 32, 3)).astype(np.uint8), np.arange(8) % 10)
               for i in range(1, 6)}
    batches["test_batch.bin"] = (rng.integers(0, 256, (10, 32, 32, 3)).astype(np.uint8), np.arange(10))
    _serve(monkeypatch, tmp_path, "cifar10", {"cifar-10-binary.tar.gz": cifar_tar_bytes(batches)})
    ds = load_dataset("cifar10", n=30, n_val=10)
    assert ds.x_train.shape == (30, 3, 32, 32) and ds.class_names[0] == "airplane"
    assert sorted(ds.y_val.tolist()) == list(range(10))
    assert_preprocess_gives_training_tensors(ds)
    assert ds.image_options["resize"] == "crop"
