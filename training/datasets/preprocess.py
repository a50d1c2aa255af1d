"""The one ``preprocess`` per dataset: a raw picture or sentence -> one model input.

Every image dataset is stored as 8-bit pictures first and normalised by the same function that
prepares an upload, so a training image saved as a PNG and put back through ``preprocess``
gives back its training tensor (what is inspected is what was trained on).

Image pipeline (``ImagePreprocessor.prepare``), in order:

1. Mode: EXIF rotation applied; anything with transparency (RGBA, LA, P with a transparent
   colour) is composited over white; 16-bit and float greys are scaled to 8 bits; CMYK, YCbCr,
   palettes... become RGB; then L or RGB as the dataset needs. A big JPEG not yet decoded is
   decoded at a reduced scale (still at least twice the dataset's size), for speed.
2. ``invert_light_background``: if the picture's border is light (its median is above mid-grey,
   or above the picture's mean, as in a dim photo of paper), the picture is inverted, so dark
   ink on white paper becomes the white-on-black convention of digit datasets.
3. Size, only when the picture is not already the dataset's size (a picture at the dataset's
   size is the model's own input and is left as it is, so it is never resampled twice):
   - ``fit_content`` (digits, MNIST, Fashion-MNIST): the contrast is stretched (border median ->
     0, brightest -> 255), the picture is cropped to its ink, scaled (aspect kept) so the ink's
     longer side is ``content_box`` pixels, and pasted centred on black — as the training
     digits are framed.
   - otherwise ``resize="pad"`` (default): fit inside, aspect kept, padded with the picture's
     own background (the median colour of its border), so nothing drawn is cut off; or
     ``resize="crop"`` (CIFAR-10, photos that fill the frame): centre-crop to the aspect, then
     resize. Resampling is bilinear with antialiasing.
4. Scale to [0, 1] (divide by 255) and normalise with the training split's per-channel
   mean and std -> float32 (C, H, W).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from ..data import DatasetError
from ..tokenizer import Tokenizer

_SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N"}
_WIDE_GREY = _SIXTEEN_BIT | {"I", "F"}
_ALPHA = {"RGBA", "LA", "La", "RGBa", "PA"}
INK_THRESHOLD = 0.25  # fraction of full brightness above which a pixel counts as ink
MAX_PIXELS = 90_000_000  # a bigger picture would take gigabytes to decode


def to_mode(image: Image.Image, channels: int) -> Image.Image:
    """An 8-bit "L" (channels=1) or "RGB" (channels=3) copy; transparency over white."""
    try:
        image = ImageOps.exif_transpose(image) or image
    except Exception:  # a damaged EXIF block must not stop an otherwise readable picture
        pass
    mode = image.mode
    if mode in _WIDE_GREY:
        grey = np.asarray(image, dtype=np.float64)
        if mode in _SIXTEEN_BIT or (mode == "I" and grey.max(initial=0) > 255):
            grey = grey / 257.0  # 0..65535 -> 0..255
        elif mode == "F" and grey.max(initial=0) <= 1.0:
            grey = grey * 255.0  # a float picture in 0..1
        image = Image.fromarray(np.clip(np.rint(grey), 0, 255).astype(np.uint8), "L")
    elif mode == "1":
        image = image.convert("L")
    elif mode in _ALPHA or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba).convert("RGB")
    elif mode not in ("L", "RGB"):
        try:
            image = image.convert("RGB")
        except (ValueError, OSError):
            raise DatasetError(f"cannot read a picture of this kind (mode {mode}); use PNG or JPEG") from None
    target = "L" if channels == 1 else "RGB"
    return image if image.mode == target else image.convert(target)


def _as_hwc(image: Image.Image) -> np.ndarray:
    arr = np.asarray(image, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def _border(arr: np.ndarray) -> np.ndarray:
    """(K, C) pixels on the picture's edge."""
    return np.concatenate([arr[0], arr[-1], arr[1:-1, 0], arr[1:-1, -1]])


def _grey(arr: np.ndarray) -> np.ndarray:
    return arr.mean(axis=2) if arr.shape[2] > 1 else arr[:, :, 0].astype(np.float64)


def _resize(arr: np.ndarray, width: int, height: int, box=None) -> np.ndarray:
    image = Image.fromarray(arr if arr.shape[2] > 1 else arr[:, :, 0])
    return _as_hwc(image.resize((width, height), Image.BILINEAR, box=box))


def _fit_pad(arr: np.ndarray, height: int, width: int) -> np.ndarray:
    h, w = arr.shape[:2]
    scale = min(width / w, height / h)
    new_w, new_h = max(1, min(width, round(w * scale))), max(1, min(height, round(h * scale)))
    background = np.median(_border(arr), axis=0).round().astype(np.uint8)
    canvas = np.empty((height, width, arr.shape[2]), np.uint8)
    canvas[:] = background
    top, left = (height - new_h) // 2, (width - new_w) // 2
    canvas[top:top + new_h, left:left + new_w] = _resize(arr, new_w, new_h)
    return canvas


def _fit_crop(arr: np.ndarray, height: int, width: int) -> np.ndarray:
    h, w = arr.shape[:2]
    scale = max(width / w, height / h)
    crop_w, crop_h = width / scale, height / scale
    left, top = (w - crop_w) / 2, (h - crop_h) / 2
    return _resize(arr, width, height, box=(left, top, left + crop_w, top + crop_h))


def _stretch(arr: np.ndarray) -> np.ndarray | None:
    """Background (border median) -> 0, brightest -> 255; None for a blank picture."""
    grey = _grey(arr)
    low, high = float(np.median(_border(grey[:, :, None]))), float(grey.max())
    if high - low < 8:
        return None
    out = (arr.astype(np.float64) - low) * (255.0 / (high - low))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _fit_content(arr: np.ndarray, height: int, width: int, box: int) -> np.ndarray:
    canvas = np.zeros((height, width, arr.shape[2]), np.uint8)
    arr = _stretch(arr)
    if arr is None:
        return canvas  # nothing drawn: a blank input
    ink = _grey(arr) > 255 * INK_THRESHOLD
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    arr = arr[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = arr.shape[:2]
    scale = min(box, height, width) / max(h, w)
    new_w, new_h = max(1, min(width, round(w * scale))), max(1, min(height, round(h * scale)))
    top, left = (height - new_h) // 2, (width - new_w) // 2
    canvas[top:top + new_h, left:left + new_w] = _resize(arr, new_w, new_h)
    stretched = _stretch(canvas)  # thin strokes fade when shrunk: bring the ink back to full strength
    return canvas if stretched is None else stretched


def centre_ink(arr: np.ndarray) -> np.ndarray:
    """The picture shifted by whole pixels so its ink's bounding box is centred (dark background)."""
    ink = _grey(arr) > 255 * INK_THRESHOLD
    if not ink.any():
        return arr
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    h, w = arr.shape[:2]
    dy = (h - (rows[-1] - rows[0] + 1)) // 2 - rows[0]
    dx = (w - (cols[-1] - cols[0] + 1)) // 2 - cols[0]
    out = np.zeros_like(arr)
    src = arr[max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
    out[max(0, dy):max(0, dy) + src.shape[0], max(0, dx):max(0, dx) + src.shape[1]] = src
    return out


def normalize_uint8(images: np.ndarray, mean, std) -> torch.Tensor:
    """(N, H, W, C) uint8 -> (N, C, H, W) float32 in [0, 1], then (x - mean) / std per channel.

    The one formula used for the training tensors and for every uploaded picture."""
    images = np.ascontiguousarray(images)
    if not images.flags.writeable:  # a view of a PIL image: torch wants memory it may write
        images = images.copy()
    x = torch.from_numpy(images).permute(0, 3, 1, 2).to(torch.float32) / 255.0  # (N, C, H, W)
    mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return ((x - mean) / std).contiguous()


def channel_stats(images: np.ndarray) -> dict:
    """Per-channel mean and std of (N, H, W, C) uint8 pictures, in [0, 1] units."""
    flat = images.reshape(-1, images.shape[-1])
    levels = np.arange(256, dtype=np.float64) / 255.0
    means, stds = [], []
    for c in range(flat.shape[1]):  # exact, from the 256-level histogram: fast and no float copy
        counts = np.bincount(flat[:, c], minlength=256).astype(np.float64)
        mean = float(counts @ levels / counts.sum())
        std = float(np.sqrt(counts @ (levels - mean) ** 2 / counts.sum()))
        means.append(round(mean, 6)), stds.append(round(std, 6) if std > 1e-6 else 1.0)
    return {"mean": means, "std": stds}


def denormalize_to_uint8(x: torch.Tensor, normalization: dict) -> np.ndarray:
    """(C, H, W) model input -> (H, W, C) uint8 picture: the inverse of ``normalize_uint8``."""
    mean = np.asarray(normalization["mean"], dtype=np.float32)
    std = np.asarray(normalization["std"], dtype=np.float32)
    values = x.detach().cpu().float().numpy().transpose(1, 2, 0)  # (C, H, W) -> (H, W, C)
    return np.clip(np.rint((values * std + mean) * 255.0), 0, 255).astype(np.uint8)


class ImagePreprocessor:
    """A picture (PIL image of any mode and size, or an (H, W[, C]) uint8 array) -> (C, H, W)."""

    def __init__(self, channels: int, height: int, width: int, normalization: dict | None, options: dict | None = None):
        options = dict(options or {})
        self.channels, self.height, self.width = int(channels), int(height), int(width)
        if self.channels not in (1, 3):
            raise DatasetError(f"an image dataset has 1 (grey) or 3 (colour) channels, not {channels}")
        self.normalization = normalization
        self.resize = options.get("resize", "pad")
        if self.resize not in ("pad", "crop"):
            raise DatasetError(f"unknown resize policy '{self.resize}': choose 'pad' or 'crop'")
        self.invert_light_background = bool(options.get("invert_light_background", False))
        self.fit_content = bool(options.get("fit_content", False))
        self.content_box = int(options.get("content_box", min(self.height, self.width)))

    def options(self) -> dict:
        """What ``Dataset.image_options`` stores (plain data) to rebuild this preprocessor."""
        return {"resize": self.resize, "invert_light_background": self.invert_light_background,
                "fit_content": self.fit_content, "content_box": self.content_box}

    def prepare(self, raw: Any) -> np.ndarray:
        """Steps 1-3: the picture as the dataset stores it, (H, W, C) uint8."""
        image = _to_image(raw)
        if image.size[0] * image.size[1] > MAX_PIXELS:
            raise DatasetError(f"this picture is too large ({image.size[0]}×{image.size[1]} pixels); "
                               f"use one under {MAX_PIXELS // 1_000_000} million pixels")
        if image.format == "JPEG":  # decode a big photo at a reduced scale (still ≥ 2× the target): much faster
            factor = 4 if self.fit_content else 2
            image.draft(image.mode, (factor * self.width, factor * self.height))
        arr = _as_hwc(to_mode(image, self.channels))
        if self.invert_light_background:
            grey = _grey(arr)
            border = float(np.median(_border(grey[:, :, None])))
            if border > min(float(grey.mean()), 127.0):  # paper lighter than the ink (even in a dim photo)
                arr = 255 - arr
        if arr.shape[:2] != (self.height, self.width):
            if self.fit_content:
                arr = _fit_content(arr, self.height, self.width, self.content_box)
            elif self.resize == "crop":
                arr = _fit_crop(arr, self.height, self.width)
            else:
                arr = _fit_pad(arr, self.height, self.width)
        return arr

    def __call__(self, raw: Any) -> torch.Tensor:
        if self.normalization is None:
            raise DatasetError("this preprocessor has no normalisation yet (it is set from the training split)")
        return normalize_uint8(self.prepare(raw)[None], self.normalization["mean"], self.normalization["std"])[0]

    def __repr__(self) -> str:
        return f"ImagePreprocessor({self.channels}×{self.height}×{self.width}, {self.options()})"


def _to_image(raw: Any) -> Image.Image:
    if isinstance(raw, Image.Image):
        return raw
    if isinstance(raw, np.ndarray) and raw.dtype == np.uint8 and raw.ndim in (2, 3):
        if raw.ndim == 3 and raw.shape[2] == 1:
            raw = raw[:, :, 0]
        return Image.fromarray(raw)
    raise DatasetError(f"expected a picture (a PIL image), got {type(raw).__name__}")


class TextPreprocessor:
    """A sentence -> (max_len,) int64 token ids, with the training vocabulary."""

    def __init__(self, vocab: list[str], max_len: int):
        self.tokenizer = Tokenizer(vocab)
        self.max_len = int(max_len)

    def __call__(self, raw: Any) -> torch.Tensor:
        if not isinstance(raw, str):
            raise DatasetError(f"expected a sentence (text), got {type(raw).__name__}")
        return torch.tensor(self.tokenizer.encode(raw, self.max_len), dtype=torch.int64)

    def __repr__(self) -> str:
        return f"TextPreprocessor({len(self.tokenizer)} words, max_len={self.max_len})"
