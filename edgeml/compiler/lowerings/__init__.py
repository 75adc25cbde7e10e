"""Lowerings: ONNX → a target runtime's own files (see ../lowering.py), one per file."""

from __future__ import annotations

from edgeml.compiler.lowerings.compile_with_vela import CompileWithVela, CompileWithVelaConfig
from edgeml.compiler.lowerings.convert_to_openvino import ConvertToOpenVINO, ConvertToOpenVINOConfig
from edgeml.compiler.lowerings.convert_to_tflite import ConvertToTflite
from edgeml.compiler.lowerings.convert_to_tflite_dynamic import ConvertToTfliteDynamic, ConvertToTfliteDynamicConfig
from edgeml.compiler.lowerings.convert_to_tflite_int8 import ConvertToTfliteInt8, ConvertToTfliteInt8Config
from edgeml.compiler.lowerings.quantize_with_nncf import QuantizeWithNNCF, QuantizeWithNNCFConfig

__all__ = [
    "CompileWithVela",
    "CompileWithVelaConfig",
    "ConvertToOpenVINO",
    "ConvertToOpenVINOConfig",
    "ConvertToTflite",
    "ConvertToTfliteDynamic",
    "ConvertToTfliteDynamicConfig",
    "ConvertToTfliteInt8",
    "ConvertToTfliteInt8Config",
    "QuantizeWithNNCF",
    "QuantizeWithNNCFConfig",
]
