"""Image folder → Dataset for a model with one NCHW image input.

Layout: `root/<class name>/<image>` (labels = class folders in sorted order) or images directly in
`root` (no labels). Stated preprocessing, recorded in the manifest: convert to grayscale (C=1) or RGB (C=3),
resize to the model's H×W (bilinear), scale to [0, 1], then (x − mean) / std per channel, NCHW float32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeml.calibration.dataset import Dataset
from edgeml.errors import CalibrationError
from edgeml.signature import ModelSignature

__all__ = ["IMAGE_SUFFIXES", "read_image_folder"]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}


def read_image_folder(root: Path, signature: ModelSignature, mean: float = 0.0, std: float = 1.0) -> Dataset:
    try:
        from PIL import Image
    except ImportError as exc:
        raise CalibrationError("reading an image folder needs Pillow", "pip install 'edgeml[compile]'") from exc
    spec = _image_input(signature)
    channels, height, width = (int(d) for d in spec.shape[1:])
    files, labels = _list_images(root)
    mode = "L" if channels == 1 else "RGB"
    arrays = []
    for f in files:
        with Image.open(f) as im:
            im = im.convert(mode).resize((width, height), Image.BILINEAR)
            a = np.asarray(im, dtype=np.float32) / 255.0
        arrays.append(a[None] if channels == 1 else a.transpose(2, 0, 1))
    x = (np.stack(arrays) - mean) / std
    prep = {"kind": "image", "color": mode, "size": [height, width], "scale": 1 / 255, "mean": mean, "std": std}
    return Dataset({spec.name: x.astype(np.float32)}, labels, str(root), preprocessing=prep)


def _image_input(signature: ModelSignature):
    spec = signature.inputs[0]
    if len(signature.inputs) != 1 or len(spec.shape) != 4 or any(isinstance(d, str) for d in spec.shape[1:]):
        raise CalibrationError(
            f"an image folder feeds one NCHW input with fixed C, H, W; the model has {spec.describe()}",
            "use an .npz with the preprocessed arrays instead",
        )
    if spec.shape[1] not in (1, 3):
        raise CalibrationError(f"input {spec.name} has {spec.shape[1]} channels; image folders give 1 or 3")
    return spec


def _list_images(root: Path) -> tuple[list[Path], np.ndarray | None]:
    classes = sorted(d for d in root.iterdir() if d.is_dir())
    if classes:
        pairs = [(f, i) for i, d in enumerate(classes) for f in sorted(d.iterdir()) if _is_image(f)]
        files, labels = [p[0] for p in pairs], np.array([p[1] for p in pairs], dtype=np.int64)
    else:
        files, labels = sorted(f for f in root.iterdir() if _is_image(f)), None
    if not files:
        raise CalibrationError(f"{root} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files, labels


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
