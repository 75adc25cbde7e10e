"""The cpu-ort pipeline: shared preparation passes, then one pass list per candidate precision.

Which candidates are tried depends on the graph (targets/graph_kind.py: control-flow bodies included): static
QDQ INT8 for conv/dense graphs whose weighted layers are in the top-level graph (the quantizer does not reach
into `If`/`Loop` bodies), dynamic INT8 for
MatMul-heavy graphs, never static INT8 on transformers (quantizing the Add/Mul that carry the attention
mask collapsed MiniLM to cosine 0.23 here). Float is always a candidate: it is what ships when INT8
does not pay off on the measured host or misses the accuracy budget.

`mixed_plan` is the accuracy-aware candidate `int8-mixed`: an all-INT8 plan with named layers kept in float,
chosen among `mixed_layers`. It starts from the INT8 candidate the graph gets (`mixed_base`): int8-static
(QDQ `exclude_nodes`, edgeml/targets/ort/qdq_mixed_plan.py), or on a transformer, where static INT8 is never
built, int8-dynamic (`quantize_dynamic`'s `nodes_to_exclude`, edgeml/targets/ort/dynamic_mixed_plan.py). The
compiler asks for it (edgeml/compiler/accuracy_aware.py) when that base misses the budget.
"""

from __future__ import annotations

from typing import Any

from edgeml.compiler.build_candidate import Built
from edgeml.compiler.layer_tables import is_qdq
from edgeml.compiler.passes.infer_shapes import InferShapes
from edgeml.compiler.passes.optimize_graph import OptimizeGraph, OptimizeGraphConfig
from edgeml.compiler.passes.quantize_dynamic import QuantizeDynamic, QuantizeDynamicConfig
from edgeml.compiler.passes.quantize_static import QuantizeStatic, QuantizeStaticConfig
from edgeml.compiler.passes.upgrade_opset import UpgradeOpset, UpgradeOpsetConfig
from edgeml.compiler.plan import CandidatePlan, Plan
from edgeml.compiler.quantized_layers import QuantizedLayer
from edgeml.errors import TargetError
from edgeml.host import host_info
from edgeml.targets.cpu_ort.recipe import Recipe
from edgeml.targets.graph_kind import graph_kind, layers_in_bodies
from edgeml.targets.ort import dynamic_mixed_plan, qdq_mixed_plan

__all__ = ["MIXED_BASE", "mixed_base", "mixed_layers", "mixed_max_ranked", "mixed_plan", "plan"]

MIXED_BASE = "int8-static"  # the candidate a mix starts from, unless `mixed_base` says otherwise
_DYNAMIC = "int8-dynamic"


def plan(model: Any, recipe: Recipe) -> Plan:
    kind = graph_kind(model)
    prepare = [
        UpgradeOpset(UpgradeOpsetConfig(min_opset=13)),  # NOTE: per-channel QDQ needs opset ≥ 13
        OptimizeGraph(OptimizeGraphConfig(level=recipe.optimization)),
        InferShapes(),  # NOTE: after optimization, so the quantizers see the final graph's shapes
    ]
    candidates: dict[str, CandidatePlan] = {"fp32": CandidatePlan()}
    notes = [f"graph kind: {kind}"]
    mixed = recipe.precision == "int8-mixed"  # NOTE: pinned, the plan holds only the INT8 base the mix starts from
    if mixed and kind == "transformer":
        notes.append("int8-mixed starts from int8-dynamic: static INT8 quantizes the attention mask's Add/Mul")
    static = _wants(recipe, "int8-static", kind in ("conv", "dense"), notes, kind) or (mixed and kind != "transformer")
    hidden = layers_in_bodies(model) if static else ()
    if hidden:
        why = (
            f"every Conv/MatMul/Gemm sits inside {', '.join(hidden)} (control flow), which ONNX Runtime's QDQ "
            "quantizer leaves untouched"
        )
        fix = (
            "give the input that picks the branch as a constant (the optimiser then inlines it) or export the model "
            "without If/Loop"
        )
        if recipe.precision != "auto":
            raise TargetError(f"{recipe.precision} cannot quantize this model on cpu-ort: {why}", fix)
        notes.append(f"int8-static not tried: {why}; {fix}")
    if static and not hidden:
        candidates["int8-static"] = CandidatePlan([QuantizeStatic(static_config(recipe))])
    if _wants(recipe, _DYNAMIC, kind in ("transformer", "dense"), notes, kind) or (mixed and kind == "transformer"):
        candidates[_DYNAMIC] = CandidatePlan([QuantizeDynamic(QuantizeDynamicConfig(weight_type=recipe.weight_type))])
    if recipe.precision not in ("auto", "fp32"):
        candidates.pop("fp32")
    return Plan(prepare, candidates, tuple(notes))


def mixed_base(candidates: dict[str, CandidatePlan]) -> str:
    """The candidate a mix starts from: int8-static where the plan has it, else int8-dynamic where it has that."""
    return _DYNAMIC if MIXED_BASE not in candidates and _DYNAMIC in candidates else MIXED_BASE


def mixed_plan(base: CandidatePlan, keep_float: tuple[str, ...]) -> CandidatePlan:
    quantizer = dynamic_mixed_plan if dynamic_mixed_plan.quantizes_dynamically(base) else qdq_mixed_plan
    return quantizer.mixed_plan(base, keep_float)


def mixed_layers(base: Built, prepared: bytes) -> list[QuantizedLayer]:
    quantizer = qdq_mixed_plan if is_qdq(base) else dynamic_mixed_plan
    return quantizer.mixed_layers(base, prepared)


def mixed_max_ranked(base: str) -> int | None:
    """How many layers the search may measure one by one (None: its default): a dynamic try needs no
    calibration, so it ranks more."""
    return dynamic_mixed_plan.MAX_RANKED if base == _DYNAMIC else None


def _wants(recipe: Recipe, precision: str, fits: bool, notes: list[str], kind: str) -> bool:
    if recipe.precision == precision:
        return True
    if recipe.precision == "auto" and not fits:
        notes.append(f"{precision} not tried: it does not pay off on a {kind} graph with ONNX Runtime CPU")
    return recipe.precision == "auto" and fits


def static_config(recipe: Recipe) -> QuantizeStaticConfig:
    host = host_info()
    arch = host.arch if recipe.arch == "auto" else recipe.arch
    activation = recipe.activation_type
    if activation == "auto":
        activation = "uint8" if arch == "x86_64" else "int8"  # NOTE: S8S8 ran 2–6× slower than FP32 on x86
    reduce_range = recipe.reduce_range == "true" or (
        recipe.reduce_range == "auto" and arch == "x86_64" and recipe.arch == "auto" and not (host.vnni or host.amx)
    )
    return QuantizeStaticConfig(
        activation_type=activation,
        weight_type=recipe.weight_type,
        per_channel=recipe.per_channel,
        reduce_range=reduce_range,
        calibrate_method=recipe.calibrate_method,
    )
