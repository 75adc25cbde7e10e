"""The signed artifact: manifest schema, Ed25519 keys and signatures, atomic writing, verification.

Light on purpose (numpy-free, torch-free): the fleet and the device agent import it.
"""

from __future__ import annotations

from edgeml.artifact.keys import create_keypair, key_id, load_private_key, load_public_key
from edgeml.artifact.manifest import MANIFEST_NAME, SCHEMA_VERSION, check_manifest, release_from_version
from edgeml.artifact.pack import pack
from edgeml.artifact.verify import VerifiedArtifact, open_artifact, read_manifest, verify
from edgeml.artifact.writer import write_artifact

__all__ = [
    "MANIFEST_NAME",
    "SCHEMA_VERSION",
    "VerifiedArtifact",
    "check_manifest",
    "create_keypair",
    "key_id",
    "load_private_key",
    "load_public_key",
    "open_artifact",
    "pack",
    "read_manifest",
    "release_from_version",
    "verify",
    "write_artifact",
]
