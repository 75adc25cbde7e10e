"""Every data format reads into a Dataset, and every misfit names the input and both shapes/dtypes."""

from __future__ import annotations

import numpy as np
import pytest

from edgeml.artifact.npz import write_npz
from edgeml.calibration import build_reference_profile, read_dataset
from edgeml.drift import bin_counts, psi
from edgeml.errors import CalibrationError
from edgeml.signature import ModelSignature, TensorSpec

SIG = ModelSignature(
    (TensorSpec("input", "float32", ("batch", 1, 8, 8)),), (TensorSpec("logits", "float32", ("batch", 10)),)
)


def _npz(tmp_path, **arrays):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    return path


def test_npz_with_labels(tmp_path):
    ds = read_dataset(_npz(tmp_path, input=np.zeros((5, 1, 8, 8), np.float32), labels=np.arange(5)), SIG)
    assert len(ds) == 5 and ds.labels.tolist() == [0, 1, 2, 3, 4]


def test_single_input_npz_key_is_mapped_and_said(tmp_path):
    ds = read_dataset(_npz(tmp_path, x=np.zeros((2, 1, 8, 8), np.float32)), SIG)
    assert "input" in ds.inputs and "key 'x' used" in ds.notes[0]


def test_wrong_shape_names_input_and_both_shapes(tmp_path):
    with pytest.raises(CalibrationError, match=r"input 'input': samples of shape \[1, 28, 28\].*\['batch', 1, 8, 8\]"):
        read_dataset(_npz(tmp_path, input=np.zeros((3, 1, 28, 28), np.float32)), SIG)


def test_wrong_dtype_names_both(tmp_path):
    with pytest.raises(CalibrationError, match="dtype float64, the model expects float32"):
        read_dataset(_npz(tmp_path, input=np.zeros((3, 1, 8, 8))), SIG)


def test_empty_set(tmp_path):
    with pytest.raises(CalibrationError, match="is empty"):
        read_dataset(_npz(tmp_path, input=np.zeros((0, 1, 8, 8), np.float32)), SIG)


def test_nan_and_inf(tmp_path):
    x = np.zeros((4, 1, 8, 8), np.float32)
    x[1, 0, 2, 2], x[3, 0, 0, 0] = np.nan, np.inf
    with pytest.raises(CalibrationError, match="2 NaN/inf"):
        read_dataset(_npz(tmp_path, input=x), SIG)


def test_missing_input_lists_what_is_there(tmp_path):
    sig2 = ModelSignature((*SIG.inputs, TensorSpec("mask", "int64", ("batch", 4))), SIG.outputs)
    with pytest.raises(CalibrationError, match=r"no array for input\(s\) mask \(it has: input\)"):
        read_dataset(_npz(tmp_path, input=np.zeros((2, 1, 8, 8), np.float32)), sig2)


def test_unknown_format_and_missing_file(tmp_path):
    (tmp_path / "d.parquet").write_bytes(b"x")
    with pytest.raises(CalibrationError, match="unknown format"):
        read_dataset(tmp_path / "d.parquet", SIG)
    with pytest.raises(CalibrationError, match="does not exist"):
        read_dataset(tmp_path / "nope.npz", SIG)


def test_corrupt_npz(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(CalibrationError, match="cannot read"):
        read_dataset(tmp_path / "bad.npz", SIG)


def test_npy(tmp_path):
    np.save(tmp_path / "x.npy", np.ones((3, 1, 8, 8), np.float32))
    assert len(read_dataset(tmp_path / "x.npy", SIG)) == 3


def test_csv_with_label_column(tmp_path):
    sig = ModelSignature((TensorSpec("features", "float32", ("batch", 3)),), SIG.outputs)
    (tmp_path / "d.csv").write_text("a,b,c,label\n1,2,3,0\n4,5,6,1\n")
    ds = read_dataset(tmp_path / "d.csv", sig)
    assert ds.inputs["features"].tolist() == [[1, 2, 3], [4, 5, 6]] and ds.labels.tolist() == [0, 1]


def test_image_folder_with_class_subfolders(tmp_path):
    from PIL import Image

    for label, value in (("cat", 0), ("dog", 255)):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        Image.new("L", (16, 16), value).save(tmp_path / "imgs" / label / "a.png")
    ds = read_dataset(tmp_path / "imgs", SIG)
    assert ds.inputs["input"].shape == (2, 1, 8, 8) and ds.labels.tolist() == [0, 1]
    assert ds.inputs["input"].max() == pytest.approx(1.0) and ds.preprocessing["size"] == [8, 8]


def test_callable_source(tmp_path, monkeypatch):
    (tmp_path / "mydata.py").write_text(
        "import numpy as np\ndef batches():\n"
        "    return [{'input': np.zeros((2, 1, 8, 8), np.float32)}, {'input': np.ones((3, 1, 8, 8), np.float32)}]\n"
    )
    monkeypatch.chdir(tmp_path)
    assert len(read_dataset("mydata:batches", SIG)) == 5
    with pytest.raises(CalibrationError, match="cannot import module 'nosuchmod'"):
        read_dataset("nosuchmod:f", SIG)


def test_digest_and_sampling_are_deterministic(tmp_path):
    x = np.random.default_rng(0).random((100, 1, 8, 8), dtype=np.float32)
    ds = read_dataset(_npz(tmp_path, input=x), SIG)
    assert ds.sample(10).digest() == ds.sample(10).digest() != ds.sample(11).digest()
    write_npz(tmp_path / "a.npz", {"input": x})
    write_npz(tmp_path / "b.npz", {"input": x})
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


def test_reference_profile_counts_match_the_data(tmp_path):
    x = np.random.default_rng(0).normal(size=(200, 3, 4, 4)).astype(np.float32)
    ds = read_dataset(_npz(tmp_path, input=x), ModelSignature((TensorSpec("input", "float32", ("b", 3, 4, 4)),), ()))
    logits = np.random.default_rng(1).normal(size=(200, 5)).astype(np.float32)
    profile = build_reference_profile(ds, {"logits": logits})
    channels = profile["inputs"]["input"]["features"]
    assert len(channels) == 3 and all(sum(c["counts"]) == 200 * 16 for c in channels)
    assert sum(profile["outputs"]["logits"]["class_counts"]) == 200
    # the same data counted again over the stored edges has no drift; shifted data has a lot
    same = bin_counts(x[:, 0].reshape(-1), channels[0]["edges"])
    shifted = bin_counts(x[:, 0].reshape(-1) + 2.0, channels[0]["edges"])
    assert psi(channels[0]["counts"], same) < 1e-9 and psi(channels[0]["counts"], shifted) > 1.0
