"""Candidates built from one prepared float model → each quantized candidate's per-layer numerics, cached by
content: QDQ ONNX models (layer_numerics.py) and NNCF-quantized OpenVINO IRs (ir_layer_numerics.py); the
full-INT8 TFLite lowerings measure their own (lowerings/pt2e_layer_numerics.py) and carry them on the build.

The float model runs once (lazily: not at all when every table comes from the cache); each quantized
candidate runs once more. Other candidates (float, dynamic INT8) have no table.
"""

from __future__ import annotations

import time

from edgeml.calibration.dataset import Dataset
from edgeml.compiler.build_candidate import Built
from edgeml.compiler.content_cache import Blob, ContentCache, cache_key
from edgeml.compiler.ir_layer_numerics import ir_layer_numerics
from edgeml.compiler.layer_numerics import SAMPLES, LayerNumerics, LayerProbe
from edgeml.compiler.lowerings.openvino_ir import IR_BIN, IR_XML
from edgeml.compiler.tool_versions import tool_versions
from edgeml.signature import ModelSignature

__all__ = ["LayerTables", "is_qdq"]

TABLES_VERSION = 2


def is_qdq(built: Built) -> bool:
    import onnx

    return any(n.op_type == "QuantizeLinear" for n in onnx.load_model_from_string(built.onnx.data).graph.node)


def _quantized_ir(built: Built) -> tuple[bytes, bytes] | None:
    """The IR's xml and weights where `built` is an OpenVINO IR with FakeQuantize ops (NNCF INT8)."""
    xml, weights = built.files.get(IR_XML), built.files.get(IR_BIN)
    if xml is None or weights is None or b'type="FakeQuantize"' not in xml:
        return None
    return xml, weights


class LayerTables:
    def __init__(self, prepared: Blob, calib: Dataset, signature: ModelSignature, cache: ContentCache) -> None:
        self.prepared, self.calib, self.signature, self.cache = prepared, calib, signature, cache
        self.seconds = 0.0  # spent computing (not reading the cache)
        self._probe: LayerProbe | None = None

    @property
    def samples(self) -> int:
        return min(SAMPLES, len(self.calib))

    def of(self, built: Built, kept_float: tuple[str, ...] = ()) -> list[LayerNumerics] | None:
        if built.layers:  # NOTE: measured by the lowering itself (full-INT8 TFLite), cached with its files
            rows = [LayerNumerics(**row) for row in built.layers]
            return [r for r in rows if r.precision == "int8" or r.layer in kept_float]
        ir = _quantized_ir(built)
        if ir is None and not is_qdq(built):
            return None
        key = cache_key(
            version=TABLES_VERSION,
            prepared=self.prepared.sha256,
            candidate=built.digest,
            kept_float=list(kept_float),
            calibration=self.calib.digest(),
            samples=SAMPLES,
            tools=tool_versions(("onnx", "onnxruntime", "numpy") + (("openvino",) if ir else ())),
        )
        hit = self.cache.get_json("layer-tables", key)
        if hit is not None:
            return [LayerNumerics(**row) for row in hit["rows"]]
        started = time.perf_counter()
        if self._probe is None:
            self._probe = LayerProbe(self.prepared.data, self.calib, self.signature)
        probe = self._probe
        rows = ir_layer_numerics(*ir, probe, kept_float) if ir else probe.compare(built.onnx.data, kept_float)
        self.seconds += time.perf_counter() - started
        self.cache.put_json("layer-tables", key, {"rows": [r.to_dict() for r in rows]})
        return rows
