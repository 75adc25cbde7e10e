"""torch module + the source's signature + one calibration sample → the FX graph every LiteRT conversion starts from.

Steps: wrap the module so the TFLite signature carries the source model's input and output names; export at
batch 1 (static shapes: what MCUs and NPUs run); keep global means channels-last (see
keep_mean_channels_last.py), re-exporting so the new nodes carry shape metadata. The float, dynamic-range and
full-INT8 TFLite models all come from this one graph, so they differ only in precision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgeml.calibration.dataset import Dataset
from edgeml.compiler.lowerings.keep_mean_channels_last import keep_mean_channels_last
from edgeml.signature import ModelSignature

__all__ = ["LitertGraph", "export_for_litert", "sample_feed"]


@dataclass(frozen=True)
class LitertGraph:
    graph: Any  # torch.fx.GraphModule from torch.export, named I/O, batch 1
    sample: dict[str, Any]  # the batch-1 feed it was exported with (name → torch tensor)
    means_kept_channels_last: int

    def notes(self) -> tuple[str, ...]:
        if not self.means_kept_channels_last:
            return ()
        return (
            f"{self.means_kept_channels_last} global mean(s) kept channels-last (keepdim + flatten) so no "
            "TRANSPOSE precedes them",
        )


def export_for_litert(module: Any, signature: ModelSignature, calibration: Dataset) -> LitertGraph:
    import torch

    named = _named_io(module, signature.input_names, signature.output_names)
    sample = sample_feed(calibration, 0)
    graph = torch.export.export(named, (), sample).module()
    means = keep_mean_channels_last(graph)
    if means:  # NOTE: re-export, so the new nodes carry the shape metadata the quantizer annotates by
        graph = torch.export.export(graph, (), sample).module()
    return LitertGraph(graph, sample, means)


def sample_feed(calibration: Dataset, index: int) -> dict[str, Any]:
    """Calibration sample `index` as a batch-1 feed of torch tensors, by input name."""
    import torch

    return {name: torch.from_numpy(values[index : index + 1].copy()) for name, values in calibration.inputs.items()}


def _named_io(module: Any, inputs: tuple[str, ...], outputs: tuple[str, ...]) -> Any:
    """`module` called with named inputs, returning named outputs: the names litert-torch writes into the
    TFLite signature. (Not put in eval mode: the loaders already did, and an exported module refuses it.)"""
    import torch

    class NamedIO(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.wrapped = module

        def forward(self, **feeds: Any) -> dict[str, Any]:
            result = self.wrapped(*(feeds[name] for name in inputs))
            values = result if isinstance(result, (tuple, list)) else (result,)
            return dict(zip(outputs, values, strict=True))

    return NamedIO()
