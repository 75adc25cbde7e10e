"""A PyTorch model source + `--prune` → the pruned model exported to ONNX, and a record of what changed.

    load the source module → cost before → prune (channels | magnitude) → recover (hook | distillation |
    none) → cost after → export to ONNX with the unpruned export's input and output names

Runs before the target pipeline: the pruned ONNX then goes through the same passes, candidates and
selection as any model, while the unpruned model stays the reference every candidate is measured against
(so the budget covers pruning and quantization together). A fine-tune hook that fails is reported and the
un-pruned model is kept. Cached by content for file sources without a hook; a factory or a hook is code
edgeml cannot hash, so those run again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeml.calibration.dataset import Dataset
from edgeml.calibration.read_dataset import read_dataset
from edgeml.compiler.content_cache import Blob, ContentCache, cache_key
from edgeml.compiler.lowerings.torch_module_for import torch_module_for
from edgeml.compiler.progress import Progress
from edgeml.compiler.pruning.distill import Distill, DistillConfig
from edgeml.compiler.pruning.model_cost import model_cost
from edgeml.compiler.pruning.prune_channels import PruneChannels, PruneChannelsConfig
from edgeml.compiler.pruning.prune_magnitude import PruneMagnitude, PruneMagnitudeConfig
from edgeml.compiler.pruning.prune_spec import PruneSpec
from edgeml.compiler.pruning.run_finetune_hook import FinetuneHookError, run_finetune_hook
from edgeml.compiler.tool_versions import tool_versions
from edgeml.errors import EdgemlError

__all__ = ["PruneRequest", "PrunedModel", "prune_model"]

PRUNE_VERSION = 4  # 2: attention by whole heads; 3: transformers distilled at transformer_lr; 4: ranked on calib
_RANKING_SAMPLES, _RANKING_BATCH = 64, 16
_MAC_BISECTIONS = 7  # the ratio to 0.9/128 ≈ 0.007
_EXAMPLES = 2


@dataclass(frozen=True)
class PruneRequest:
    spec: PruneSpec
    finetune: str | None = None  # data for distillation (or handed to the hook)
    hook: str | None = None  # package.module:function
    epochs: int = 5

    @classmethod
    def of(cls, prune: str | None, finetune, hook: str | None, epochs: int | None) -> PruneRequest | None:
        if prune is None:
            if finetune is not None or hook is not None:
                raise EdgemlError("--finetune and --finetune-hook recover accuracy after --prune, which is not set")
            return None
        if epochs is not None and epochs < 0:
            raise EdgemlError(f"--finetune-epochs {epochs} is negative")
        return cls(
            PruneSpec.parse(prune), None if finetune is None else str(finetune), hook, 5 if epochs is None else epochs
        )

    def to_dict(self) -> dict[str, Any]:
        return {"spec": str(self.spec), "finetune": self.finetune, "hook": self.hook, "epochs": self.epochs}


@dataclass(frozen=True)
class PrunedModel:
    onnx: Blob | None  # None: the un-pruned model is kept (the report says why)
    report: dict[str, Any]


def prune_model(
    request: PruneRequest, source: Any, signature: Any, calib: Dataset, cache: ContentCache, progress: Progress
) -> PrunedModel:
    data = read_dataset(request.finetune, signature, "fine-tuning") if request.finetune else None
    label = f"prune {request.spec}"
    progress.step(label)
    key = None
    if source.kind != "factory" and request.hook is None:
        key = cache_key(
            version=PRUNE_VERSION,
            source=source.digest,
            request=request.to_dict() | {"finetune": data.digest() if data is not None else None},
            calib=calib.digest(),  # NOTE: a transformer's heads and channels are ranked on it
            distill=DistillConfig(epochs=request.epochs).to_dict(),
            tools=tool_versions(("torch", "torch-pruning", "onnx", "onnxscript")),
        )
        hit = cache.get_bytes("prune", key)
        if hit is not None:
            progress.finished(label, "cached")
            return PrunedModel(hit, (cache.get_json("prune", key) or {}) | {"cached": True})
    result = _prune(request, source, signature, calib, data)
    if key is not None and result.onnx is not None:
        cache.put_bytes("prune", key, result.onnx, result.report)
    progress.finished(label, _detail(result.report))
    return result


def _prune(request: PruneRequest, source, signature, calib: Dataset, data: Dataset | None) -> PrunedModel:
    import torch

    from edgeml.compiler.passes.export_onnx import export_to_onnx

    started = time.perf_counter()
    teacher = torch_module_for(source, calib, "pruning")
    names = [t.name for t in signature.inputs]
    first = next(calib.batches(_EXAMPLES))  # NOTE: in the model's layout: a state on axis 1, a constant
    examples = tuple(torch.from_numpy(np.array(first[n])) for n in names)
    report: dict[str, Any] = {"method": str(request.spec), "request": request.to_dict()}
    report["before"] = model_cost(teacher, examples)
    student, detail = _apply(request.spec, teacher, examples, calib, names)
    report |= detail
    broken = _fails_to_run(student, examples)
    if broken:  # NOTE: like a failing hook: say why, and compile the un-pruned model
        report |= {"kept_unpruned": True, "recovery": {"kind": "none", "error": broken}}
        return PrunedModel(None, report)
    try:
        student, report["recovery"] = _recover(request, student, teacher, data, names)
    except FinetuneHookError as exc:
        report |= {"kept_unpruned": True, "recovery": {"kind": "hook", "hook": request.hook, "error": exc.message}}
        return PrunedModel(None, report)
    report["after"] = model_cost(student, examples)
    if request.spec.kind == "magnitude":
        report["sparsity"] = _sparsity(student)
    onnx_bytes, exporter = export_to_onnx(student, examples, names, [t.name for t in signature.outputs])
    report |= {"exporter": exporter, "seconds": round(time.perf_counter() - started, 2)}
    return PrunedModel(Blob.of(onnx_bytes), report)


def _apply(spec: PruneSpec, module: Any, examples: tuple[Any, ...], calib: Dataset, names: list[str]):
    if spec.kind == "channels":
        mask = names.index("attention_mask") if "attention_mask" in names else None  # NOTE: the HF convention
        batches = _batches(calib, names)
        if spec.macs is not None:
            return _prune_to_macs(spec, module, examples, batches, mask)
        return PruneChannels(PruneChannelsConfig(ratio=spec.ratio))(module, examples, batches, mask)
    student, _ = PruneMagnitude(PruneMagnitudeConfig(sparsity=spec.ratio, scope=spec.scope))(module)
    return student, {}


def _prune_to_macs(spec: PruneSpec, module: Any, examples: tuple[Any, ...], batches, mask: int | None):
    """The smallest channel ratio (to 1/128 of its range) whose pruned model keeps at most `spec.macs` of the
    original MACs: MACs fall with the ratio, so bisect on it, each step a fresh prune of the original."""
    total = model_cost(module, examples)["macs"]
    if total is None:
        raise EdgemlError(
            "a MAC budget needs the model's multiply-accumulates counted, and torch-pruning's counter cannot "
            "trace this model",
            "prune by ratio instead (channels:0.3)",
        )

    def prune(ratio: float) -> tuple[Any, dict[str, Any], float]:
        student, detail = PruneChannels(PruneChannelsConfig(ratio=ratio))(module, examples, batches, mask)
        return student, detail, (model_cost(student, examples)["macs"] or total) / total

    low, high = 0.0, spec.ratio
    best = prune(high)
    if best[2] > spec.macs:
        raise EdgemlError(
            f"--prune {spec}: even pruning {high:.0%} of the channels keeps {best[2]:.0%} of the MACs (budget "
            f"{spec.macs:.0%}): layers that keep their width (model outputs, the residual stream) hold the rest",
            f"ask for macs={best[2]:.2f} or more, or prune by ratio (channels:0.3)",
        )
    for _ in range(_MAC_BISECTIONS):
        mid = (low + high) / 2
        found = prune(mid)
        if found[2] <= spec.macs:
            high, best = mid, found
        else:
            low = mid
    student, detail, share = best
    return student, detail | {"mac_budget": {"share": spec.macs, "ratio": round(high, 4), "macs_kept": round(share, 4)}}


def _batches(calib: Dataset, names: list[str]) -> list[tuple[Any, ...]]:
    """The first calibration samples, in batches: what a transformer's heads and channels are ranked on."""
    import torch

    n = min(len(calib), _RANKING_SAMPLES)
    feeds = calib.take(slice(0, n)).batches(_RANKING_BATCH)
    return [tuple(torch.from_numpy(np.array(feed[name])) for name in names) for feed in feeds]


def _fails_to_run(model: Any, examples: tuple[Any, ...]) -> str | None:
    """Why the pruned model no longer runs on the examples, or None. Structured pruning keeps the graph
    consistent but cannot see a width the code hard-wires (e.g. a reshape into a fixed number of attention
    heads in a module attention_heads.py does not recognise)."""
    import torch

    try:
        with torch.no_grad():
            model(*examples)
    except Exception as exc:  # the user's model code: any error means the pruned model is unusable
        return (
            f"the channel-pruned model no longer runs ({type(exc).__name__}: {str(exc)[:200]}); pruning changed a "
            "width the model's code relies on (e.g. a reshape into a fixed number of attention heads): try "
            "magnitude pruning, a smaller ratio, or a --finetune-hook that prunes whole heads (edgeml handles the "
            "heads of nn.MultiheadAttention and of modules with query/key/value Linears and a num_attention_heads)"
        )
    return None


def _recover(request: PruneRequest, student, teacher, data: Dataset | None, names: list[str]):
    if request.hook is not None:
        return run_finetune_hook(request.hook, student, data, teacher)
    if data is None or request.epochs == 0:
        return student, {"kind": "none", "note": "no recovery: pass --finetune DATA (labels optional)"}
    masks = _freeze_zeros(student) if request.spec.kind == "magnitude" else []
    try:
        report = Distill(DistillConfig(epochs=request.epochs))(student, teacher, data, names)
    finally:
        for handle in masks:
            handle.remove()
    return student, report | {"data": request.finetune}


def _freeze_zeros(model: Any) -> list[Any]:
    """Gradient hooks that keep pruned (zero) weights at zero while the rest trains."""
    handles = []
    for p in model.parameters():
        if p.dim() >= 2:
            mask = (p != 0).to(p.dtype)
            handles.append(p.register_hook(lambda grad, mask=mask: grad * mask))
    return handles


def _sparsity(model: Any) -> dict[str, Any]:
    per_layer = {name: round(float((p == 0).float().mean()), 4) for name, p in model.named_parameters() if p.dim() >= 2}
    zeros = sum(int((p == 0).sum()) for _, p in model.named_parameters() if p.dim() >= 2)
    total = sum(p.numel() for _, p in model.named_parameters() if p.dim() >= 2)
    return {"weights": round(zeros / max(total, 1), 4), "per_layer": per_layer}


def _detail(report: dict[str, Any]) -> str:
    if report.get("kept_unpruned"):
        return "hook failed: un-pruned model kept"
    before, after = report["before"], report["after"]
    if before["macs"] and after["macs"]:
        return f"MACs {before['macs'] / 1e6:.2f}M → {after['macs'] / 1e6:.2f}M, {report.get('seconds', 0):.1f} s"
    return f"non-zero params {before['nonzero_params']} → {after['nonzero_params']}"
