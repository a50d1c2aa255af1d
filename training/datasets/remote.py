"""``mnist``, ``fashion-mnist`` and ``cifar10``: downloaded once into a cache, checksums verified.

Files go to ``$GLASSBOX_HOME/datasets/<name>/`` (``GLASSBOX_HOME`` defaults to ``~/.glassbox``).
Each file is fetched from the first mirror that answers, written next to its final name and
moved into place only after its published MD5 matches; a file that does not match is deleted.
A cached file is checked again every time it is read. CIFAR-10 is read from its *binary*
version (fixed-size records); the pickled "python version" is never used.

The parsers read the original formats: IDX (big-endian magic 2051 for images, 2049 for labels,
then the sizes, then uint8 data; gzipped) and CIFAR-10 binary records (1 label byte + 3,072
pixel bytes, red then green then blue planes, 32×32 each) inside the tar.gz, read in memory.
Validation comes from the official test split, so the numbers match published results.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import socket
import ssl
import struct
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path

import numpy as np

from ..data import DatasetError
from .common import image_dataset, int_option
from .preprocess import ImagePreprocessor

BUILTIN_ALTERNATIVES = "digits, shapes, sentiment, brackets"
MAX_DOWNLOAD_BYTES = 400 * 2**20  # no dataset file here is larger than 170 MB
_CHUNK = 2**20


@dataclass(frozen=True)
class Remote:
    title: str  # as a person writes it: "Fashion-MNIST"
    folder: str  # under $GLASSBOX_HOME/datasets/
    mirrors: tuple[str, ...]  # base URLs tried in order; a file's URL is base + its name
    files: dict  # file name -> "md5:<hex>" or "sha256:<hex>"


REMOTES = {
    "mnist": Remote("MNIST", "mnist", (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ), {
        "train-images-idx3-ubyte.gz": "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "md5:d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "md5:9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "md5:ec29112dd5afa0611ce80d1b7f02629c",
    }),
    "fashion-mnist": Remote("Fashion-MNIST", "fashion-mnist", (
        "https://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ), {
        "train-images-idx3-ubyte.gz": "md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "md5:25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "md5:bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "md5:bb300cfdad3c16e7a12a480ee83cd310",
    }),
    "cifar10": Remote("CIFAR-10", "cifar10", ("https://www.cs.toronto.edu/~kriz/",), {
        "cifar-10-binary.tar.gz": "md5:c32a1d4ab5d03f1284b67883e8d87530",
    }),
}

CLASS_NAMES = {
    "mnist": [str(d) for d in range(10)],
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                      "Bag", "Ankle boot"],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}
DEFAULTS = {
    "n": 10000,  # at most this many training pictures, drawn at random from the official training split
    "n_val": 2000,  # at most this many validation pictures, drawn from the official test split
}
DESCRIPTIONS = {
    "mnist": "MNIST: 70,000 handwritten digits, 28×28 grey (downloaded once, about 11 MB).",
    "fashion-mnist": "Fashion-MNIST: 70,000 pictures of clothes and shoes in 10 kinds, 28×28 grey "
                     "(downloaded once, about 30 MB).",
    "cifar10": "CIFAR-10: 60,000 small photos of planes, cars, animals, ships and trucks, 32×32 colour "
               "(downloaded once, about 160 MB).",
}
# How a user's picture is framed like the training pictures (see preprocess.py).
IMAGE_OPTIONS = {
    "mnist": {"resize": "pad", "invert_light_background": True, "fit_content": True, "content_box": 20},
    "fashion-mnist": {"resize": "pad", "invert_light_background": True, "fit_content": True, "content_box": 28},
    "cifar10": {"resize": "crop"},
}


# ---- download and cache -------------------------------------------------------------------
def glassbox_home() -> Path:
    return Path(os.environ.get("GLASSBOX_HOME") or Path.home() / ".glassbox").expanduser()


def checksum_matches(path: Path, checksum: str) -> bool:
    algorithm, _, expected = checksum.partition(":")
    digest = hashlib.new(algorithm)
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest() == expected.lower()


def fetch(remote: Remote, *, root: Path | None = None, mirrors=None, checksums: dict | None = None,
          opener=None, timeout: float = 60.0) -> dict[str, Path]:
    """{file name: path} of every file of ``remote``, downloading the missing ones.

    ``mirrors`` (base URLs), ``checksums`` ({name: "md5:<hex>"}) and ``opener`` (like
    ``urllib.request.urlopen``) replace the built-in ones; tests serve files with them."""
    folder = Path(root) if root is not None else glassbox_home() / "datasets" / remote.folder
    mirrors = tuple(mirrors or remote.mirrors)
    checksums = dict(checksums or remote.files)
    opener = opener or urllib.request.urlopen
    try:
        folder.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name, checksum in checksums.items():
            path = folder / name
            if path.exists() and not checksum_matches(path, checksum):
                path.unlink()  # a damaged or partial copy: fetch it again
            if not path.exists():
                _download(remote.title, name, checksum, path, mirrors, opener, timeout)
            paths[name] = path
    except OSError as err:  # the cache folder, not the network: full disk, no permission
        raise DatasetError(f"cannot keep {remote.title} in {folder} ({err.strerror or err}); set GLASSBOX_HOME "
                           "to a folder you can write to") from None
    return paths


def _download(title: str, name: str, checksum: str, path: Path, mirrors, opener, timeout) -> None:
    failures, damaged = [], False
    for base in mirrors:
        url = base if base.endswith(name) else base.rstrip("/") + "/" + name
        # A private temporary name: two processes downloading at once never mix their bytes.
        handle, part = tempfile.mkstemp(prefix=name + ".", suffix=".part", dir=path.parent)
        part = Path(part)
        try:
            with os.fdopen(handle, "wb") as out:
                try:
                    with opener(url, timeout=timeout) as response:
                        size = 0
                        for block in iter(lambda: response.read(_CHUNK), b""):
                            size += len(block)
                            if size > MAX_DOWNLOAD_BYTES:
                                raise ValueError(f"{name} is larger than any file of {title}")
                            out.write(block)
                except (urllib.error.URLError, socket.timeout, TimeoutError, HTTPException, ConnectionError,
                        ssl.SSLError, ValueError) as err:  # the network; a local OSError goes up to fetch()
                    failures.append(f"{url}: {getattr(err, 'reason', err)}")
                    continue
            if checksum_matches(part, checksum):
                os.replace(part, path)
                return
            damaged = True  # never keep a file whose checksum is wrong (deleted below)
            failures.append(f"{url}: checksum does not match")
        finally:
            part.unlink(missing_ok=True)
    if damaged:
        raise DatasetError(f"the downloaded file {name} for {title} is damaged (its checksum does not match), "
                           f"so it was deleted. Try again later, or use a built-in dataset that needs no "
                           f"download: {BUILTIN_ALTERNATIVES}.")
    raise DatasetError(f"could not download {title}: there seems to be no internet connection "
                       f"({failures[-1] if failures else 'no mirror'}). Use a built-in dataset that needs no "
                       f"download: {BUILTIN_ALTERNATIVES}.")


# ---- parsers ------------------------------------------------------------------------------
def parse_idx(data: bytes, expect_magic: int | None = None) -> np.ndarray:
    """An IDX file (gzipped or not) -> uint8 array of its dimensions."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as err:
            raise DatasetError(f"an IDX file is not valid gzip ({err})") from None
    if len(data) < 4:
        raise DatasetError("an IDX file is too short")
    magic = struct.unpack(">I", data[:4])[0]
    zero, dtype, ndim = magic >> 16, (magic >> 8) & 0xFF, magic & 0xFF
    if zero != 0 or dtype != 0x08 or not 1 <= ndim <= 4:
        raise DatasetError(f"not an IDX file of bytes (magic number {magic})")
    if expect_magic is not None and magic != expect_magic:
        raise DatasetError(f"expected IDX magic number {expect_magic}, found {magic}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError("an IDX file is too short")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    if len(data) - header != int(np.prod(dims)):
        raise DatasetError(f"an IDX file's size does not match its dimensions {dims}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def read_idx_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images = parse_idx(Path(images_path).read_bytes(), expect_magic=2051)
    labels = parse_idx(Path(labels_path).read_bytes(), expect_magic=2049)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DatasetError("the IDX image and label files do not belong together")
    return images, labels.astype(np.int64)


CIFAR_RECORD = 1 + 3 * 32 * 32


def parse_cifar_records(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 binary records -> (N, 32, 32, 3) uint8 pictures and (N,) labels."""
    if len(data) == 0 or len(data) % CIFAR_RECORD:
        raise DatasetError(f"a CIFAR-10 batch must be a whole number of {CIFAR_RECORD}-byte records")
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, CIFAR_RECORD)
    labels = records[:, 0].astype(np.int64)
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # (N, 3, H, W) -> (N, H, W, 3)
    return np.ascontiguousarray(images), labels


def read_cifar_archive(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train and test pictures and labels from ``cifar-10-binary.tar.gz``; nothing is extracted to disk."""
    wanted = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    found = {}
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in wanted and base not in found:
                    found[base] = parse_cifar_records(archive.extractfile(member).read())
    except (tarfile.TarError, OSError, EOFError) as err:
        raise DatasetError(f"the CIFAR-10 archive cannot be read ({err})") from None
    missing = [name for name in wanted if name not in found]
    if missing:
        raise DatasetError(f"the CIFAR-10 archive lacks {', '.join(missing)}")
    train_x = np.concatenate([found[name][0] for name in wanted[:5]])
    train_y = np.concatenate([found[name][1] for name in wanted[:5]])
    return train_x, train_y, *found["test_batch.bin"]


# ---- datasets -----------------------------------------------------------------------------
def load(name: str, seed: int, n: int, n_val: int, source: dict):
    remote = REMOTES[name]
    n, n_val = int_option("n", n, 10, 60000), int_option("n_val", n_val, 10, 10000)  # before a long download
    paths = fetch(remote)
    if name == "cifar10":
        train_x, train_y, test_x, test_y = read_cifar_archive(paths["cifar-10-binary.tar.gz"])
    else:
        train_x, train_y = read_idx_pair(paths["train-images-idx3-ubyte.gz"], paths["train-labels-idx1-ubyte.gz"])
        test_x, test_y = read_idx_pair(paths["t10k-images-idx3-ubyte.gz"], paths["t10k-labels-idx1-ubyte.gz"])
        train_x, test_x = train_x[..., None], test_x[..., None]  # (N, H, W) -> (N, H, W, 1)
    n, n_val = min(n, len(train_x)), min(n_val, len(test_x))  # "at most": CIFAR-10 has 50,000, not 60,000
    rng = np.random.default_rng([int(seed), 3])
    pick_train, pick_val = rng.permutation(len(train_x))[:n], rng.permutation(len(test_x))[:n_val]
    images = np.concatenate([train_x[pick_train], test_x[pick_val]])
    labels = np.concatenate([train_y[pick_train], test_y[pick_val]])
    if labels.min() < 0 or labels.max() >= len(CLASS_NAMES[name]):
        raise DatasetError(f"the {remote.title} labels are not 0..{len(CLASS_NAMES[name]) - 1}")
    height, width, channels = images.shape[1:]
    preprocessor = ImagePreprocessor(channels, height, width, None, IMAGE_OPTIONS[name])
    return image_dataset(name, images, labels, CLASS_NAMES[name], preprocessor=preprocessor, seed=seed,
                         split=(np.arange(n), np.arange(n, n + n_val)), source=source,
                         description=DESCRIPTIONS[name])
