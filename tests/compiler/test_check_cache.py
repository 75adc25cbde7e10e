"""A cached pre-flight check is keyed by the target rules' source: new rules never reuse an old verdict."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from edgeml.compiler import compile as compile_module
from edgeml.compiler.content_cache import Blob, ContentCache
from edgeml.compiler.progress import NullProgress
from edgeml.targets import load_target, rules_digest

MODEL = Path(__file__).resolve().parents[2] / "examples" / "digits" / "model.onnx"


def test_the_check_cache_follows_the_rules(tmp_path, monkeypatch):
    real = load_target("cpu-ort")
    recipe = real.recipe()
    cache, model = ContentCache(tmp_path), Blob.of(MODEL.read_bytes())
    calls = []
    target = dataclasses.replace(real, check=lambda *a: calls.append(1) or real.check(*a))  # NOTE: counts the calls

    compile_module._check_target(target, model, recipe, cache, NullProgress())
    compile_module._check_target(target, model, recipe, cache, NullProgress())
    assert len(calls) == 1  # the second run came from the cache
    monkeypatch.setattr(compile_module, "rules_digest", lambda: "other rules")
    compile_module._check_target(target, model, recipe, cache, NullProgress())
    assert len(calls) == 2  # changed rules: checked again
    assert len(rules_digest()) == 64
