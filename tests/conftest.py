"""Shared fixtures: an isolated config/cache folder per test, a signing key pair, the bundled examples."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "examples" / "digits"


@pytest.fixture(autouse=True)
def isolated_edgeml_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("edgeml-home")
    monkeypatch.setenv("EDGEML_CONFIG_DIR", str(home / "config"))
    monkeypatch.setenv("EDGEML_CACHE_DIR", str(home / "cache"))
    return home


@pytest.fixture(scope="session")
def keypair(tmp_path_factory):
    from edgeml.artifact import create_keypair

    return create_keypair(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="session")
def digits_artifact(tmp_path_factory, keypair):
    """One compiled digits artifact shared by read-only tests (each test that changes it copies it first)."""
    import edgeml

    out = tmp_path_factory.mktemp("artifacts") / "digits"
    cache = tmp_path_factory.mktemp("shared-cache")
    edgeml.compile(str(DIGITS / "model.onnx"), "cpu-ort", key=keypair[0], out=out, cache_dir=cache, version="1.2.3")
    return out
