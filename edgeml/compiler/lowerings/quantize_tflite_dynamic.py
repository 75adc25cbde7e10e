"""Float TFLite flatbuffer → dynamic-range INT8 TFLite (int8 weights, float32 activations), via ai-edge-quantizer.

The recipe is ai-edge-quantizer's own `dynamic_wi8_afp32` (symmetric channelwise int8 weights on the ops its
default policy lists: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, BATCH_MATMUL, …; activations stay float32
in the model and LiteRT's hybrid kernels quantize them on the fly). No calibration: weights only. Inputs and
outputs stay float32. This is the default of LiteRT's own quantization flow.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeml.compiler.optional_dependency import import_optional
from edgeml.errors import TargetError

__all__ = ["DYNAMIC_RECIPES", "TfliteDynamic", "quantize_tflite_dynamic"]

DYNAMIC_RECIPES = ("dynamic_wi8_afp32",)  # ai_edge_quantizer.recipe functions this step may apply


@dataclass(frozen=True)
class TfliteDynamic:
    model: bytes
    notes: tuple[str, ...]


def quantize_tflite_dynamic(float_model: bytes, recipe_name: str, needed_for: str) -> TfliteDynamic:
    if recipe_name not in DYNAMIC_RECIPES:
        raise TargetError(
            f"{needed_for}: no dynamic-range recipe {recipe_name!r}", f"one of: {', '.join(DYNAMIC_RECIPES)}"
        )
    import_optional("ai_edge_quantizer", "litert", needed_for)
    from ai_edge_quantizer import quantizer, recipe

    qz = quantizer.Quantizer(float_model)
    qz.load_quantization_recipe(getattr(recipe, recipe_name)())
    model = bytes(qz.quantize(enable_progress_report=False).quantized_model)
    notes = (
        f"ai-edge-quantizer recipe {recipe_name}: int8 channelwise weights, float32 activations (quantized at run "
        "time by LiteRT's hybrid kernels), float32 inputs and outputs",
    )
    return TfliteDynamic(model, notes)
