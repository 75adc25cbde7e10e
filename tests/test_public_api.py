"""The public surface is small and pinned: changing it is a decision, not an accident."""

from __future__ import annotations

import edgeml
import edgeml.artifact
import edgeml.calibration
import edgeml.device_agent


def test_edgeml_exports():
    assert sorted(edgeml.__all__) == ["EdgemlError", "__version__", "bench", "compile", "create_keypair", "verify"]


def test_artifact_exports():
    assert sorted(edgeml.artifact.__all__) == [
        "MANIFEST_NAME", "SCHEMA_VERSION", "VerifiedArtifact", "check_manifest", "create_keypair", "key_id",
        "load_private_key", "load_public_key", "open_artifact", "pack", "read_manifest", "release_from_version",
        "verify", "write_artifact",
    ]  # fmt: skip


def test_calibration_and_agent_exports():
    assert sorted(edgeml.calibration.__all__) == ["Dataset", "build_reference_profile", "check_fits", "read_dataset"]
    assert sorted(edgeml.device_agent.__all__) == [
        "ActiveModel", "Agent", "AgentConfig", "AgentConfigError", "InstallResult", "Installer", "PredictError",
        "Prediction", "RUNTIMES", "SelfTestPolicy", "Session", "State", "load_config", "open_session",
    ]  # fmt: skip


def test_every_name_in_all_exists():
    for module in (edgeml, edgeml.artifact, edgeml.calibration, edgeml.device_agent):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"
