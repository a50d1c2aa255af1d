"""``shapes``: procedural colour pictures of circles, squares, triangles and crosses.

Each picture has a random background colour and a shape of a clearly different random colour,
with a random size (its outer radius 22–42 % of the side), position (always wholly inside),
rotation, and Gaussian pixel noise. Shapes are drawn at twice the size and halved, for smooth
edges. The same seed always gives the same pictures; classes are exactly balanced.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from .common import float_option, image_dataset, int_option
from .preprocess import ImagePreprocessor

CLASS_NAMES = ["circle", "square", "triangle", "cross"]
DEFAULTS = {
    "n": 6000,  # pictures in all (train + validation); 3,000 left shapes-cnn short of 90 %
    "size": 32,  # side of the square picture in pixels
    "noise": 0.05,  # std of the Gaussian noise added to every pixel, as a fraction of full brightness
}
DESCRIPTION = ("Circles, squares, triangles and crosses in random colours, sizes, places and angles "
               "({size}×{size} colour).")
_SUPERSAMPLE = 2
_ARM = 0.32  # half-width of a cross's arm, relative to its radius


def _polygon(kind: int, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    if kind == 1:  # square: corners on the circle of radius r
        corners = [(r * math.cos(a), r * math.sin(a)) for a in (math.pi / 4 + k * math.pi / 2 for k in range(4))]
    elif kind == 2:  # equilateral triangle
        corners = [(r * math.cos(a), r * math.sin(a)) for a in (-math.pi / 2 + k * 2 * math.pi / 3 for k in range(3))]
    else:  # cross (a plus sign): 12 corners
        w = r * _ARM
        corners = [(w, -r), (w, -w), (r, -w), (r, w), (w, w), (w, r),
                   (-w, r), (-w, w), (-r, w), (-r, -w), (-w, -w), (-w, -r)]
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in corners]


def _colours(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Background and shape colours at least 120 apart (of 441), so every shape is visible."""
    background = rng.integers(0, 256, (n, 3))
    shape = rng.integers(0, 256, (n, 3))
    for _ in range(100):
        close = np.linalg.norm(background - shape, axis=1) < 120
        if not close.any():
            break
        shape[close] = rng.integers(0, 256, (int(close.sum()), 3))
    return background, shape


def draw_shapes(n: int, size: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, size, size, 3) uint8 pictures and (n,) int64 labels."""
    rng = np.random.default_rng([int(seed), 1])
    labels = rng.permutation(np.arange(n) % len(CLASS_NAMES))
    background, colour = _colours(rng, n)
    radius = rng.uniform(0.22, 0.42, n) * size
    cx = rng.uniform(0, 1, n) * (size - 2 * radius) + radius
    cy = rng.uniform(0, 1, n) * (size - 2 * radius) + radius
    angle = rng.uniform(0, 2 * math.pi, n)
    big = size * _SUPERSAMPLE
    images = np.empty((n, size, size, 3), np.uint8)  # (N, H, W, C)
    for i in range(n):
        canvas = Image.new("RGB", (big, big), tuple(int(v) for v in background[i]))
        draw = ImageDraw.Draw(canvas)
        x, y, r = cx[i] * _SUPERSAMPLE, cy[i] * _SUPERSAMPLE, radius[i] * _SUPERSAMPLE
        fill = tuple(int(v) for v in colour[i])
        if labels[i] == 0:
            r *= 0.85  # a circle of the same radius would look bigger than the other shapes
            draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
        else:
            draw.polygon(_polygon(int(labels[i]), x, y, r, angle[i]), fill=fill)
        images[i] = np.asarray(canvas.reduce(_SUPERSAMPLE))
    if noise > 0:
        noisy = images.astype(np.float32) + rng.normal(0.0, noise * 255.0, images.shape).astype(np.float32)
        images = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    return images, labels.astype(np.int64)


def load(seed: int, n: int, size: int, noise: float, source: dict):
    n = int_option("n", n, 8, 200_000)
    size = int_option("size", size, 8, 128)
    noise = float_option("noise", noise, 0.0, 0.5)
    images, labels = draw_shapes(n, size, noise, seed)
    preprocessor = ImagePreprocessor(3, size, size, None, {"resize": "pad"})
    return image_dataset("shapes", images, labels, CLASS_NAMES, preprocessor=preprocessor, seed=seed,
                         source=source, description=DESCRIPTION.format(size=size))
