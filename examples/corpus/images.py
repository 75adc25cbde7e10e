"""Offline images for the vision models: scikit-learn's two sample photos (china.jpg, flower.jpg) cut into crops.

``crops()`` gives seeded random crops at random scales resized to a net's input size, CHW float32; calibration
crops come from the top 60 % of each photo and evaluation crops from the bottom 40 %, so no pixel is in both.
``text_lines()`` renders short words (PIL's scalable default font) onto crops for the OCR models.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["crops", "photos", "text_lines"]

WORDS = (
    "edge", "model", "EXIT", "42 km", "Sensor 7", "firmware", "OPEN", "v2.1", "STOP", "update", "Berlin",
    "kitchen", "No. 318", "battery", "camera", "07:45",
)  # fmt: skip


@functools.cache
def photos() -> tuple[np.ndarray, ...]:
    """The sample photos as HWC uint8 (427 × 640 × 3)."""
    from sklearn.datasets import load_sample_images

    return tuple(load_sample_images().images)


def _region(photo: np.ndarray, split: str) -> np.ndarray:
    cut = int(photo.shape[0] * 0.6)
    return photo[:cut] if split == "calib" else photo[cut:]


def _crop(rng: np.random.Generator, region: np.ndarray, h: int, w: int) -> np.ndarray:
    from PIL import Image

    rh, rw = region.shape[:2]
    scale = rng.uniform(0.25, 1.0)
    ch = max(8, min(rh, int(rh * scale)))
    cw = max(8, min(rw, int(ch * w / h)))
    y, x = rng.integers(0, rh - ch + 1), rng.integers(0, rw - cw + 1)
    return np.asarray(Image.fromarray(region[y : y + ch, x : x + cw]).resize((w, h), Image.BILINEAR))


def crops(n: int, h: int, w: int, split: str, seed: int = 0) -> np.ndarray:
    """n crops as [n, 3, h, w] uint8 (RGB), from the calib or eval region of the photos."""
    rng = np.random.default_rng(seed + (0 if split == "calib" else 10_000))
    regions = [_region(p, split) for p in photos()]
    out = [_crop(rng, regions[i % len(regions)], h, w) for i in range(n)]
    return np.stack(out).transpose(0, 3, 1, 2).copy()


def text_lines(n: int, h: int, w: int, split: str, seed: int = 0) -> np.ndarray:
    """n crops with a dark or light word drawn across them, [n, 3, h, w] uint8; some upside down (OCR cls)."""
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed + 7)
    backgrounds = crops(n, h, w, split, seed)
    out = []
    for i, bg in enumerate(backgrounds):
        img = Image.fromarray((bg.transpose(1, 2, 0) * 0.4 + 140).astype(np.uint8))
        draw = ImageDraw.Draw(img)
        font = ImageFont.load_default(size=int(h * rng.uniform(0.5, 0.75)))
        ink = (10, 10, 10) if rng.random() < 0.7 else (250, 250, 250)
        draw.text((int(w * rng.uniform(0.02, 0.2)), int(h * 0.1)), WORDS[i % len(WORDS)], fill=ink, font=font)
        if i % 4 == 3:
            img = img.rotate(180)
        out.append(np.asarray(img))
    return np.stack(out).transpose(0, 3, 1, 2).copy()


def faces(n: int, size: int, split: str, seed: int = 0) -> np.ndarray:
    """n crops, every other one with a drawn face (skin-toned oval, eyes, brows, nose, mouth), [n, 3, s, s] uint8.

    MTCNN scores these as faces (O-Net ~0.9+), so a face/not-face decision check sees both classes.
    """
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed + 3 + (0 if split == "calib" else 10_000))
    backgrounds = crops(n, size, size, split, seed)
    out = []
    for i, bg in enumerate(backgrounds):
        img = Image.fromarray(bg.transpose(1, 2, 0).copy())
        if i % 2 == 0:
            _draw_face(ImageDraw.Draw(img), size, rng)
        out.append(np.asarray(img))
    return np.stack(out).transpose(0, 3, 1, 2).copy()


def _draw_face(draw, s: int, rng: np.random.Generator) -> None:
    skin = tuple(int(v) for v in rng.uniform([170, 120, 90], [240, 200, 170]))
    m = s * rng.uniform(0.0, 0.1)
    cx = s / 2 + rng.uniform(-0.05, 0.05) * s
    draw.ellipse([cx - s * 0.38 + m, m, cx + s * 0.38 - m, s - m], fill=skin)
    eye_y, dark = s * 0.42, (40, 30, 30)
    for dx in (-0.16, 0.16):
        ex = cx + dx * s
        draw.ellipse([ex - s * 0.07, eye_y - s * 0.04, ex + s * 0.07, eye_y + s * 0.04], fill=(245, 245, 245))
        draw.ellipse([ex - s * 0.03, eye_y - s * 0.03, ex + s * 0.03, eye_y + s * 0.03], fill=dark)
        draw.line([ex - s * 0.09, eye_y - s * 0.1, ex + s * 0.09, eye_y - s * 0.1], fill=dark, width=max(1, s // 24))
    draw.line([cx, s * 0.45, cx - s * 0.04, s * 0.6], fill=(150, 90, 80), width=max(1, s // 32))
    draw.arc([cx - s * 0.15, s * 0.6, cx + s * 0.15, s * 0.78], 10, 170, fill=(150, 40, 50), width=max(1, s // 20))
