"""MTCNN's P-, R- and O-Net (facenet-pytorch 2.6.0) with the weights its wheel ships, as plain PyTorch modules.

The networks are facenet-pytorch's (``facenet_pytorch/models/mtcnn.py``), restated here because importing
that package pulls in torchvision (``utils/detect_face.py``); the weights are read from the installed wheel's
``facenet_pytorch/data/{pnet,rnet,onet}.pt``, located without importing it. Install it without its pins
(it asks for torch < 2.3): ``pip install --no-deps facenet-pytorch==2.6.0``.

Factories for edgeml (``examples.corpus.mtcnn:pnet`` …) return the module and one normalised example input:
P-Net ``[1, 3, 36, 36]`` (fully convolutional; any H, W ≥ 12), R-Net ``[1, 3, 24, 24]``, O-Net ``[1, 3, 48, 48]``.
Outputs (facenet-pytorch's order): boxes (regression) then face probabilities (softmax over [not face, face]);
O-Net adds 10 landmark coordinates between them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

__all__ = ["INPUT_SIZE", "NETS", "OUTPUTS", "load", "normalise", "onet", "pnet", "rnet", "weights_dir"]

NETS = ("pnet", "rnet", "onet")
INPUT_SIZE = {"pnet": 36, "rnet": 24, "onet": 48}
OUTPUTS = {"pnet": ["boxes", "prob"], "rnet": ["boxes", "prob"], "onet": ["boxes", "landmarks", "prob"]}


def weights_dir() -> Path:
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            "MTCNN's weights ship in facenet-pytorch: pip install --no-deps facenet-pytorch==2.6.0 "
            "(--no-deps: it pins torch < 2.3)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def normalise(images_uint8: torch.Tensor) -> torch.Tensor:
    """facenet-pytorch's preprocessing: (x - 127.5) / 128."""
    return (images_uint8.float() - 127.5) * 0.0078125


class PNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.softmax4_1 = nn.Conv2d(32, 2, 1), nn.Softmax(dim=1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), self.softmax4_1(self.conv4_1(x))


class RNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.softmax5_1 = nn.Linear(128, 2), nn.Softmax(dim=1)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x)).permute(0, 3, 2, 1).contiguous()
        x = self.prelu4(self.dense4(x.view(x.shape[0], -1)))
        return self.dense5_2(x), self.softmax5_1(self.dense5_1(x))


class ONet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.softmax6_1 = nn.Linear(256, 2), nn.Softmax(dim=1)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x)).permute(0, 3, 2, 1).contiguous()
        x = self.prelu5(self.dense5(x.view(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_3(x), self.softmax6_1(self.dense6_1(x))


_CLASSES = {"pnet": PNet, "rnet": RNet, "onet": ONet}


def load(name: str) -> nn.Module:
    """The net with facenet-pytorch's trained weights, in eval mode."""
    net = _CLASSES[name]()
    net.load_state_dict(torch.load(weights_dir() / f"{name}.pt", map_location="cpu", weights_only=True))
    return net.eval()


def _factory(name: str) -> tuple[nn.Module, tuple[torch.Tensor]]:
    size = INPUT_SIZE[name]
    return load(name), (torch.zeros(1, 3, size, size),)


def pnet() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """edgeml factory: P-Net and a [1, 3, 36, 36] example."""
    return _factory("pnet")


def rnet() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """edgeml factory: R-Net and a [1, 3, 24, 24] example."""
    return _factory("rnet")


def onet() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """edgeml factory: O-Net and a [1, 3, 48, 48] example."""
    return _factory("onet")


def write_onnx(name: str, path: Path) -> Path:
    """Export the net to ONNX (opset 17, dynamic batch; P-Net also dynamic H and W)."""
    module, example = _factory(name)
    axes = {"x": {0: "N", 2: "H", 3: "W"} if name == "pnet" else {0: "N"}}
    axes |= {o: {0: "N"} for o in OUTPUTS[name]}
    torch.onnx.export(
        module, example, str(path), dynamo=False, opset_version=17,
        input_names=["x"], output_names=OUTPUTS[name], dynamic_axes=axes,
    )  # fmt: skip
    return path
