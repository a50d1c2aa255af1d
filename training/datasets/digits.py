"""``digits``: the 1,797 real handwritten digits that scikit-learn ships (no download).

Each 8×8 image (values 0..16, white ink on black, the digit filling the full height) is scaled
to 8 bits (×255/16), upsampled to ``size`` × ``size`` (16 by default, so feature maps are
legible) with bilinear interpolation, and its ink's bounding box is centred by whole pixels.
A user's drawing is framed the same way by ``preprocess``: dark-on-light is inverted, the ink
is cropped, scaled so its longer side fills the image, and centred.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from .common import image_dataset, int_option, stratified_split
from .preprocess import ImagePreprocessor, centre_ink

CLASS_NAMES = [str(d) for d in range(10)]
DEFAULTS = {
    "size": 16,  # side of the square image the model sees
    "train_size": 0,  # training examples kept (0: all); a small one shows over-fitting
}
DESCRIPTION = "Handwritten digits 0–9: 1,797 real 8×8 scans from scikit-learn, shown at 16×16 (no download)."


def load(seed: int, size: int, train_size: int, source: dict):
    from sklearn.datasets import load_digits  # reads a file inside the package: no download

    size = int_option("size", size, 8, 64)
    bunch = load_digits()
    train_size = int_option("train_size", train_size, 0, len(bunch.target))
    raw = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)  # (N, 8, 8) in 0..255
    images = np.empty((len(raw), size, size, 1), np.uint8)  # (N, H, W, C)
    for i, digit in enumerate(raw):
        up = np.asarray(Image.fromarray(digit, "L").resize((size, size), Image.BILINEAR))
        images[i] = centre_ink(up[:, :, None])
    preprocessor = ImagePreprocessor(1, size, size, None, {
        "resize": "pad", "invert_light_background": True, "fit_content": True, "content_box": size})
    labels = bunch.target.astype(np.int64)
    train_idx, val_idx = stratified_split(labels, seed)
    description = DESCRIPTION.replace("16×16", f"{size}×{size}")
    if 0 < train_size < len(train_idx):
        # The validation split stays the same: only what the model learns from shrinks.
        train_idx = class_by_class(train_idx, labels)[:train_size]
        description += f" Only {train_size:,} of the training examples are used."
    return image_dataset("digits", images, labels, CLASS_NAMES, preprocessor=preprocessor, seed=seed,
                         split=(train_idx, val_idx), source=source, description=description)


def class_by_class(indices: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``indices`` reordered so that the classes take turns (each class's first example, then each
    one's second, ...): any first k of them hold every class about equally often."""
    seen: dict[int, int] = {}
    rank = np.empty(len(indices), np.int64)
    for position, index in enumerate(indices):
        label = int(labels[index])
        rank[position] = seen.get(label, 0)
        seen[label] = rank[position] + 1
    return indices[np.argsort(rank, kind="stable")]
