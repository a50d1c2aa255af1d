"""Makes ``tests/data/photo.png``: a photo-like colour picture of a person in front of a scene.

No photo can be downloaded here, so this one is painted with NumPy: a sky-to-ground gradient
behind, a blurred green tree line, a skin-toned face (an ellipse with soft shading, darker eyes
and mouth) on shoulders in a blue shirt, brown hair, fine texture and camera-like noise. It is
everything a handwritten digit is not (colour everywhere, smooth shading, no single stroke),
which is what the out-of-distribution tests need. Run ``python -m tests.make_photo`` to make the
file again (the seed is fixed, so the same bytes come out).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

PHOTO = Path(__file__).resolve().parent / "data" / "photo.png"
SIZE = (160, 200)  # width, height: a small portrait


def make_photo(seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    width, height = SIZE
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    t = y / height
    # Sky (light blue at the top) fading to a warm ground.
    sky = np.array([150, 190, 235]) * (1 - t[..., None]) + np.array([170, 140, 100]) * t[..., None]
    picture = sky
    # A tree line: a wavy green band, softened below.
    ridge = 0.45 * height + 8 * np.sin(x / 9.0) + 5 * np.sin(x / 3.7 + 1.0)
    trees = np.clip((y - ridge) / 6.0, 0, 1) * np.clip((0.7 * height - y) / 10.0, 0, 1)
    picture = picture * (1 - trees[..., None]) + np.array([60, 110, 55]) * trees[..., None]
    # Shoulders in a blue shirt.
    cx = width / 2
    shoulders = ((x - cx) / 70) ** 2 + ((y - height * 1.05) / 60) ** 2 < 1
    picture[shoulders] = np.array([40, 70, 150]) * (0.8 + 0.2 * (1 - t[shoulders, None]))
    # Neck and face: ellipses of skin, lit from the upper left.
    neck = (np.abs(x - cx) < 14) & (y > height * 0.55) & (y < height * 0.8)
    face = ((x - cx) / 34) ** 2 + ((y - height * 0.42) / 45) ** 2 < 1
    skin = np.array([225, 180, 150])
    light = 1.05 - 0.35 * np.clip(((x - cx + 15) ** 2 + (y - height * 0.35) ** 2) / 55 ** 2, 0, 1)
    for part in (neck, face):
        picture[part] = skin * light[part, None]
    # Hair: a dark cap on the top of the face.
    hair = face & (y < height * 0.42 - 45 * 0.45 + 4 * np.sin(x / 5.0))
    picture[hair] = np.array([70, 45, 30])
    # Eyes, brows and mouth.
    for ex in (cx - 13, cx + 13):
        eye = ((x - ex) / 6) ** 2 + ((y - height * 0.4) / 3) ** 2 < 1
        picture[eye] = np.array([40, 30, 30])
        brow = (np.abs(x - ex) < 8) & (np.abs(y - height * 0.36) < 1.2)
        picture[brow] = np.array([80, 55, 40])
    mouth = ((x - cx) / 12) ** 2 + ((y - height * 0.55) / 3) ** 2 < 1
    picture[mouth] = np.array([170, 80, 80])
    # Fine texture (fabric, leaves, skin) and sensor noise.
    picture = picture + 10 * np.sin(x * 1.7 + y * 0.9)[..., None] * trees[..., None]
    picture = picture + rng.normal(0, 6, picture.shape)
    image = Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8), "RGB")
    return image.filter(ImageFilter.GaussianBlur(0.8))  # a lens is never perfectly sharp


if __name__ == "__main__":
    PHOTO.parent.mkdir(parents=True, exist_ok=True)
    make_photo().save(PHOTO, "PNG", optimize=True)
    print(f"wrote {PHOTO}")
