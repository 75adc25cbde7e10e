"""Candidates built from one prepared float model → each QDQ candidate's per-layer numerics, cached by content.

The float model runs once (lazily: not at all when every table comes from the cache); each QDQ candidate
runs once more. Candidates that are not QDQ ONNX (float, dynamic INT8, lowered formats) have no table.
"""

from __future__ import annotations

import time

from edgeml.calibration.dataset import Dataset
from edgeml.compiler.build_candidate import Built
from edgeml.compiler.content_cache import Blob, ContentCache, cache_key
from edgeml.compiler.layer_numerics import SAMPLES, LayerNumerics, LayerProbe
from edgeml.compiler.tool_versions import tool_versions
from edgeml.signature import ModelSignature

__all__ = ["LayerTables", "is_qdq"]

TABLES_VERSION = 1


def is_qdq(built: Built) -> bool:
    import onnx

    return any(n.op_type == "QuantizeLinear" for n in onnx.load_model_from_string(built.onnx.data).graph.node)


class LayerTables:
    def __init__(self, prepared: Blob, calib: Dataset, signature: ModelSignature, cache: ContentCache) -> None:
        self.prepared, self.calib, self.signature, self.cache = prepared, calib, signature, cache
        self.seconds = 0.0  # spent computing (not reading the cache)
        self._probe: LayerProbe | None = None

    @property
    def samples(self) -> int:
        return min(SAMPLES, len(self.calib))

    def of(self, built: Built, kept_float: tuple[str, ...] = ()) -> list[LayerNumerics] | None:
        if not is_qdq(built):
            return None
        key = cache_key(
            version=TABLES_VERSION,
            prepared=self.prepared.sha256,
            candidate=built.onnx.sha256,
            kept_float=list(kept_float),
            calibration=self.calib.digest(),
            samples=SAMPLES,
            tools=tool_versions(("onnx", "onnxruntime", "numpy")),
        )
        hit = self.cache.get_json("layer-tables", key)
        if hit is not None:
            return [LayerNumerics(**row) for row in hit["rows"]]
        started = time.perf_counter()
        if self._probe is None:
            self._probe = LayerProbe(self.prepared.data, self.calib, self.signature)
        rows = self._probe.compare(built.onnx.data, kept_float)
        self.seconds += time.perf_counter() - started
        self.cache.put_json("layer-tables", key, {"rows": [r.to_dict() for r in rows]})
        return rows
