"""The per-layer probe within a memory budget: streaming chunks gives the rows keeping everything gives, and a
budget that cannot hold one sample stops with MemoryBudgetError before anything runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from edgeml.calibration.read_npz import read_npz
from edgeml.compiler.intake import onnx_signature
from edgeml.compiler.layer_numerics import LayerProbe, activation_bytes
from edgeml.compiler.memory_budget import MemoryBudget, MemoryBudgetError, memory_budget, parse_memory_size

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits"


def _budget(headroom: int) -> MemoryBudget:
    """A budget whose headroom does not move with this process's RSS, so the chunking is exact."""
    return MemoryBudget(headroom, given=True, held_bytes=lambda: 0)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    model = onnx.load(DIGITS / "model.onnx")
    float_model = model.SerializeToString()  # NOTE: quantize_static moves the proto's weights to external data
    signature = onnx_signature(model)
    data = read_npz(DIGITS / "calib.npz", signature.input_names)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = data.batches(16)

        def get_next(self):
            return next(self._it, None)

    out = tmp_path_factory.mktemp("qdq") / "qdq.onnx"
    quantize_static(model, out, Reader(), quant_format=QuantFormat.QDQ)
    return float_model, out.read_bytes(), data, signature


def test_streamed_probe_gives_the_rows_of_the_probe_that_keeps_everything(digits):
    float_model, qdq, data, signature = digits
    with memory_budget(_budget(1 << 40)):
        kept = LayerProbe(float_model, data, signature, samples=40)
    per_sample = sum(kept.tensor_bytes.values())
    with memory_budget(_budget(12 * per_sample)):  # NOTE: too small to keep 40 samples, room for 1 at a time
        streamed = LayerProbe(float_model, data, signature, samples=40)
    assert not kept.streams and streamed.streams
    chunks = list(streamed.chunks(set(streamed.tensor_bytes), per_sample))
    assert len(chunks) > 4  # many small chunks
    a, b = kept.compare(qdq), streamed.compare(qdq)
    assert [r.layer for r in a] == [r.layer for r in b] and len(a) > 3
    for x, y in zip(a, b, strict=True):
        assert y.sqnr_db == pytest.approx(x.sqnr_db, abs=2e-3)
        assert y.sqnr_drop_db == pytest.approx(x.sqnr_drop_db, abs=2e-3)
        assert y.cosine == pytest.approx(x.cosine, abs=2e-6)
        assert (y.max_abs_err, y.float_min, y.float_max) == pytest.approx((x.max_abs_err, x.float_min, x.float_max))
        assert y.clipping_rate == pytest.approx(x.clipping_rate, abs=2e-6)
    name = a[0].tensor
    assert np.allclose(kept.float_tensor(name), streamed.float_tensor(name))


def test_a_budget_below_one_sample_stops_before_the_probe_runs(digits):
    float_model, _, data, signature = digits
    one = activation_bytes(onnx.load_model_from_string(float_model), data.feed(slice(0, 1)))
    assert one > 0
    with memory_budget(_budget(one // 2)), pytest.raises(MemoryBudgetError) as caught:
        LayerProbe(float_model, data, signature)
    assert "per-layer probe" in caught.value.message and "--max-memory" in caught.value.hint


def test_activation_bytes_match_what_the_float_run_returns(digits):
    float_model, _, data, signature = digits
    with memory_budget(_budget(1 << 40)):
        probe = LayerProbe(float_model, data, signature, samples=2)
    estimate = activation_bytes(probe.float_proto, data.feed(slice(0, 1)))
    inputs = {i.name for i in probe.float_proto.graph.input}
    measured = sum(b for t, b in probe.tensor_bytes.items() if t not in inputs)
    assert 0.5 * measured <= estimate <= measured  # a lower bound: tensors shape inference misses count 0


@pytest.mark.parametrize(("text", "value"), [("4G", 4 << 30), ("512 MiB", 512 << 20), ("1.5g", 3 << 29), (1000, 1000)])
def test_sizes_read_as_people_write_them(text, value):
    assert parse_memory_size(text) == value


@pytest.mark.parametrize("text", ["lots", "-1G", "0"])
def test_a_size_that_is_not_one_is_refused_with_a_hint(text):
    with pytest.raises(MemoryBudgetError) as caught:
        parse_memory_size(text)
    assert caught.value.hint
