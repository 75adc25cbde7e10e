"""facenet-pytorch's MTCNN P-/R-/O-Net with the weights that ship in its wheel, and face-crop-like data.

`pip install --no-deps facenet-pytorch==2.6.0` (its `__init__` imports torchvision for the detection
pipeline, which this environment does not have: the three nets need only torch, so their module is loaded
with the detection helpers stubbed). Factories for `edgeml compile benchmarks.mtcnn_nets:rnet` etc. return
`(model.eval(), (example,))`; `data(size, n)` gives crops of scikit-learn's sample images, normalised as
MTCNN does ((pixel − 127.5) / 128), NCHW float32.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import numpy as np

SIZES = {"pnet": 12, "rnet": 24, "onet": 48}  # P-Net is fully convolutional; 12×12 is its training size


def _mtcnn_module() -> types.ModuleType:
    name = "facenet_pytorch.models.mtcnn"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("pip install --no-deps facenet-pytorch==2.6.0")
    root = Path(next(iter(spec.submodule_search_locations)))
    stub = types.ModuleType("facenet_pytorch.models.utils.detect_face")
    stub.detect_face = stub.extract_face = None
    for package in ("facenet_pytorch", "facenet_pytorch.models", "facenet_pytorch.models.utils"):
        sys.modules.setdefault(package, types.ModuleType(package))
    sys.modules[stub.__name__] = stub
    loader = importlib.util.spec_from_file_location(name, root / "models" / "mtcnn.py")
    module = importlib.util.module_from_spec(loader)
    sys.modules[name] = module
    loader.loader.exec_module(module)
    return module


def data(size: int, n: int, seed: int = 0) -> np.ndarray:
    """`n` random square crops of scikit-learn's sample images, resized to size×size, MTCNN-normalised."""
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(seed)
    images = load_sample_images().images
    out = np.empty((n, 3, size, size), np.float32)
    for i in range(n):
        image = images[i % len(images)]
        side = int(rng.integers(size, min(image.shape[:2]) // 2))
        y, x = (int(rng.integers(0, d - side)) for d in image.shape[:2])
        idx = (np.arange(size) * side / size).astype(int)
        crop = image[y + idx][:, x + idx].astype(np.float32)
        out[i] = ((crop - 127.5) / 128.0).transpose(2, 0, 1)
    return out


def _build(cls_name: str, key: str):
    import torch

    net = getattr(_mtcnn_module(), cls_name)(pretrained=True).eval()
    return net, (torch.from_numpy(data(SIZES[key], 2)),)


def pnet():
    return _build("PNet", "pnet")


def rnet():
    return _build("RNet", "rnet")


def onet():
    return _build("ONet", "onet")
