"""Float ONNX → INT8 QDQ ONNX, calibrated with ONNX Runtime's static quantizer.

Weights per channel (symmetric), activations per tensor with ranges from the calibration set. The
integer types are target decisions passed in the config: on x86 ONNX Runtime runs U8S8 (unsigned
activations) fast and S8S8 slowly; on Arm S8S8 is the fast path.

Activation ranges do not depend on which nodes are excluded, so they are kept in the compile's scratch
folder and reused: the accuracy-aware search re-quantizes with other `exclude_nodes` without recalibrating
(ONNX Runtime's own calibration cache; the output is byte-identical either way).

Calibration feeds hold as many samples as the compile's memory budget allows for the model's activations
(memory_budget.py); minmax ranges do not depend on how the samples are batched. Entropy and percentile keep
every activation of every sample until the end (ONNX Runtime's histogram calibrators): where that cannot fit,
the pass stops before it starts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeml.calibration.dataset import Dataset
from edgeml.compiler.passes.base import Pass, PassConfig, PassContext, PassResult, option
from edgeml.compiler.passes.quiet_preprocess_advice import quiet_preprocess_advice
from edgeml.errors import CalibrationError

__all__ = ["CALIBRATION_BATCH", "QuantizeStatic", "QuantizeStaticConfig", "feeds_for"]

CALIBRATION_BATCH = 32


@dataclass(frozen=True)
class QuantizeStaticConfig(PassConfig):
    activation_type: str = option("uint8", "activation integer type: uint8 or int8")
    weight_type: str = option("int8", "weight integer type: int8 or uint8")
    per_channel: bool = option(True, "one weight scale per output channel")
    reduce_range: bool = option(False, "7-bit weights, for x86 CPUs without VNNI that would saturate")
    calibrate_method: str = option("minmax", "activation range estimator: minmax, entropy or percentile")
    op_types: tuple[str, ...] = option((), "op types to quantize (empty: ONNX Runtime's default set)")
    exclude_nodes: tuple[str, ...] = option((), "node names kept in float")


def feeds_for(ctx_signature, dataset: Dataset, most: int = CALIBRATION_BATCH) -> Iterator[dict[str, np.ndarray]]:
    """Calibration feeds in the batch size the model accepts (one sample when the batch is fixed), at most
    `most` samples each."""
    dynamic = all(spec.batch_is_dynamic for spec in ctx_signature.inputs)
    yield from dataset.batches(min(CALIBRATION_BATCH, most) if dynamic else 1)


def _calibration_batch(proto, dataset: Dataset, method: str) -> int:
    """The samples one calibration feed may hold within the memory budget (the model's activations per sample,
    from shape inference, bound what ONNX Runtime holds while it runs)."""
    from edgeml.compiler.layer_numerics import activation_bytes
    from edgeml.compiler.memory_budget import MemoryBudgetError, current_budget

    if not len(dataset):
        return CALIBRATION_BATCH
    per_sample = activation_bytes(proto, dataset.feed(slice(0, 1)))
    budget = current_budget()
    if method != "minmax" and not budget.fits(per_sample * len(dataset), share=1 / 2):
        raise MemoryBudgetError(
            f"{method} calibration keeps every activation of every sample: about "
            f"{per_sample * len(dataset) / 2**30:.1f} GiB for {len(dataset)} samples, over the memory budget",
            "use --option calibrate_method=minmax, fewer --calib-samples, or a larger --max-memory",
        )
    # NOTE: ×2: the calibrator's augmented model reads every tensor, so ONNX Runtime keeps them all until the
    # run ends (measured: 1.0 GiB per 480×640 sample of a detector whose activations sum to 0.5 GiB)
    return budget.samples_at_once(2 * per_sample, "calibration", CALIBRATION_BATCH)


class QuantizeStatic(Pass):
    name = "quantize-static"
    Config = QuantizeStaticConfig
    uses_calibration = True
    tools = ("onnx", "onnxruntime")

    def apply(self, model: bytes, ctx: PassContext) -> PassResult:
        import onnx
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            quantize_static,
        )

        if ctx.calibration is None:
            raise CalibrationError("static INT8 needs calibration data", "pass --calib, or choose --precision fp32")
        cfg = self.config

        proto = onnx.load_model_from_string(model)
        batch = _calibration_batch(proto, ctx.calibration, cfg.calibrate_method)

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self._it = feeds_for(ctx.signature, ctx.calibration, batch)

            def get_next(self):
                return next(self._it, None)

        out = ctx.scratch / "quantized-static.onnx"
        with quiet_preprocess_advice():
            quantize_static(
                proto,
                out,
                Reader(),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(cfg.op_types) or None,
                per_channel=cfg.per_channel,
                reduce_range=cfg.reduce_range,
                activation_type=_quant_type(cfg.activation_type),
                weight_type=_quant_type(cfg.weight_type),
                nodes_to_exclude=list(cfg.exclude_nodes) or None,
                calibrate_method={
                    "minmax": CalibrationMethod.MinMax,
                    "entropy": CalibrationMethod.Entropy,
                    "percentile": CalibrationMethod.Percentile,
                }[cfg.calibrate_method],
                extra_options={"ActivationSymmetric": cfg.activation_type == "int8", "WeightSymmetric": True},
                calibration_cache_path=_calibration_cache(model, ctx, cfg),
            )
        note = f"QDQ {cfg.activation_type} activations / {cfg.weight_type} weights, {cfg.calibrate_method}"
        return PassResult(out.read_bytes(), changed=True, notes=(note,))


def _calibration_cache(model: bytes, ctx: PassContext, cfg: QuantizeStaticConfig) -> Path:
    """Where this model's activation ranges on this calibration set are kept for the rest of the compile."""
    h = hashlib.sha256(model)
    h.update(f"|{ctx.calibration.digest()}|{cfg.calibrate_method}|{cfg.activation_type}|{cfg.op_types}".encode())
    return ctx.scratch / "calibration-ranges" / f"{h.hexdigest()[:32]}.json"


def _quant_type(name: str):
    from onnxruntime.quantization import QuantType

    return {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}[name]
