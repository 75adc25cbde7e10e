"""Fleet fixtures: two signed releases of the digits model, and a fleet on a fresh database."""

from __future__ import annotations

from pathlib import Path

import pytest

import edgeml

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "digits"


@pytest.fixture(scope="session")
def releases(tmp_path_factory, keypair):
    """digits 1.2.3 and 1.3.0 for cpu-ort, signed with the fleet's key."""
    root = tmp_path_factory.mktemp("releases")
    cache = tmp_path_factory.mktemp("release-cache")
    out = {}
    for version in ("1.2.3", "1.3.0"):
        edgeml.compile(str(DIGITS / "model.onnx"), "cpu-ort", key=keypair[0], out=root / version, cache_dir=cache,
                       version=version, name="digits", options={"precision": "fp32"})  # fmt: skip
        out[version] = root / version
    return out


@pytest.fixture
def fleet(tmp_path, keypair):
    from edgeml.artifact import load_private_key
    from edgeml.fleet import Fleet

    f = Fleet(tmp_path / "fleet.sqlite", tmp_path / "store", load_private_key(keypair[0]))
    yield f
    f.db.close()
