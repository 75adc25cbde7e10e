"""Small CNNs for scikit-learn's bundled digits data (8x8 grayscale, 10 classes).

Input: float32 [N, 1, 8, 8], pixel values scaled to [0, 1] (pixel / 16).
Output: logits float32 [N, 10].

Factories for ``edgeml compile examples.digits.digits_cnn:build`` (and ``:build_wide``) return
``(model.eval(), (example_input,))`` with the trained weights loaded from this folder.
Regenerate the weights and the exported files with ``python examples/digits/train.py``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
WEIGHTS = HERE / "weights.pt"
WEIGHTS_WIDE = HERE / "weights_wide.pt"
EVAL_NPZ = HERE / "eval.npz"

INPUT_SHAPE = (1, 8, 8)
NUM_CLASSES = 10
EXAMPLE_BATCH = 2  # > 1 so that a dynamic batch dimension is not specialised to 1 by torch.export


class DigitsCNN(nn.Module):
    """conv16-conv32-pool-conv64-GAP-fc10; ~24k parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.conv3 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc = nn.Linear(64, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        x = self.pool(x)
        x = torch.relu(self.conv3(x))
        x = x.mean(dim=(2, 3))
        return self.fc(x)


class DigitsCNNWide(nn.Module):
    """Wider and one conv deeper (48-96-pool-96-96-GAP-fc10, ~209k parameters): room for channel pruning."""

    def __init__(self, c1: int = 48, c2: int = 96, c3: int = 96) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.conv3 = nn.Conv2d(c2, c3, 3, padding=1)
        self.conv4 = nn.Conv2d(c3, c3, 3, padding=1)
        self.fc = nn.Linear(c3, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        x = self.pool(x)
        x = torch.relu(self.conv3(x))
        x = torch.relu(self.conv4(x))
        x = x.mean(dim=(2, 3))
        return self.fc(x)


def example_input(batch: int = EXAMPLE_BATCH) -> torch.Tensor:
    """The first ``batch`` samples of the held-out eval split (zeros if eval.npz is missing)."""
    if EVAL_NPZ.exists():
        import numpy as np

        with np.load(EVAL_NPZ) as data:
            x = np.ascontiguousarray(data["input"][:batch], dtype=np.float32)
        return torch.from_numpy(x)
    return torch.zeros((batch, *INPUT_SHAPE), dtype=torch.float32)


def _load(model: nn.Module, path: Path) -> nn.Module:
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; run `python examples/digits/train.py` to create it")
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.eval()


def build() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """Trained DigitsCNN in eval mode and an example input [2, 1, 8, 8]."""
    return _load(DigitsCNN(), WEIGHTS), (example_input(),)


def build_wide() -> tuple[nn.Module, tuple[torch.Tensor]]:
    """Trained DigitsCNNWide in eval mode and an example input [2, 1, 8, 8]."""
    return _load(DigitsCNNWide(), WEIGHTS_WIDE), (example_input(),)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
