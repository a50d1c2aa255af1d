"""Pictures made ready for ``go.Image``, which draws (H, W, 3) uint8 pixels.

Two layouts arrive here: model inputs and feature maps are channels first, (C, H, W), with values
of any range (normalised, or activations); pictures as a page holds them are channels last,
(H, W, 3), often already uint8. Both may also be (H, W) grey.
"""
from __future__ import annotations

import numpy as np


def rgb_of_chw(image: np.ndarray) -> np.ndarray:
    """(C, H, W) or (H, W) values of any range -> (H, W, 3) uint8, stretched from min to max."""
    image = np.asarray(image, dtype=float)
    if image.ndim == 3:
        image = image[0] if image.shape[0] == 1 else np.transpose(image[:3], (1, 2, 0))  # (H, W, C)
    low, high = float(image.min()), float(image.max())
    scaled = (image - low) / (high - low) if high > low else np.zeros_like(image)
    if scaled.ndim == 2:
        scaled = np.repeat(scaled[..., None], 3, axis=2)
    return (scaled * 255).round().astype(np.uint8)


def rgb_of_hwc(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) colour or (H, W) grey -> (H, W, 3) uint8: uint8 colour pictures unchanged,
    anything else stretched from min to max."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 3:
        if image.dtype == np.uint8:
            return image
        return rgb_of_chw(np.transpose(image, (2, 0, 1)))  # (H, W, 3) -> (3, H, W), what it expects
    if image.ndim == 2:
        return rgb_of_chw(image)
    raise ValueError(f"the picture must be (H, W, 3) colour or (H, W) grey, not an array of shape {image.shape}")
