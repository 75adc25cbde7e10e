"""Fleet → device, retained and signed: which artifact a device should run (`edgeml/v1/desired_state`).

The fleet signs the canonical JSON of every field but `signature` with its Ed25519 key (the same
canonical form and signature block as an artifact manifest); the device verifies against the key it
pinned. Signed payloads carry integers only, never floats, so every language produces the same bytes.
The signature covers the payload exactly as received, unknown fields included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edgeml.artifact.signing import signature_block, signature_problem, signed_bytes
from edgeml.protocol.chunks import ChunkLayout
from edgeml.protocol.fields import Fields, header
from edgeml.protocol.kind import Kind
from edgeml.protocol.protocol_error import ProtocolError

__all__ = ["ArtifactRef", "DesiredState", "SignedDesiredState", "sign_desired_state", "verify_desired_state"]


@dataclass(frozen=True)
class ArtifactRef:
    """The artifact to fetch: identity, release, digest, and how its chunk stream is cut."""

    name: str
    version: str
    release: int
    sha256: str
    size: int
    chunk_size: int
    chunk_count: int
    target: str

    def layout(self) -> ChunkLayout:
        return ChunkLayout(self.sha256, self.size, self.chunk_size)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def read(cls, f: Fields) -> ArtifactRef:
        ref = cls(
            f.text("name"), f.text("version", 64), f.integer("release"), f.sha256("sha256"), f.integer("size", 1),
            f.integer("chunk_size"), f.integer("chunk_count", 1), f.ident("target"),
        )  # fmt: skip
        try:
            layout = ref.layout()
        except ProtocolError as exc:
            raise ProtocolError("out_of_range", f"{f.where}: {exc.reason}") from None
        if layout.count != ref.chunk_count:
            raise ProtocolError(
                "invalid_field", f"{f.where}.chunk_count is {ref.chunk_count}, size makes {layout.count}"
            )
        return ref


@dataclass(frozen=True)
class DesiredState:
    """What `device_id` should run. `sequence` grows strictly per device (the device ignores anything not
    newer than what it accepted); `deadline` and `issued_at` are epoch seconds. `min_release` is the
    anti-rollback floor the fleet signs: the device refuses a release below it. Without it (an older fleet)
    the device's floor is the highest release it committed, and a lower release is applied only when
    `allow_rollback` is set."""

    KIND: ClassVar[Kind] = Kind.DESIRED_STATE

    device_id: str
    artifact: ArtifactRef
    rollout_id: str
    sequence: int
    issued_at: int
    deadline: int
    allow_rollback: bool = False
    min_release: int | None = None

    def to_dict(self) -> dict[str, Any]:
        floor = {} if self.min_release is None else {"min_release": self.min_release}  # NOTE: optional field
        return floor | {
            **header(self.KIND),
            "device_id": self.device_id,
            "artifact": self.artifact.to_dict(),
            "rollout_id": self.rollout_id,
            "sequence": self.sequence,
            "issued_at": self.issued_at,
            "deadline": self.deadline,
            "allow_rollback": self.allow_rollback,
        }

    @classmethod
    def from_dict(cls, obj: Any) -> DesiredState:
        f = Fields.payload(obj, cls.KIND)
        issued_at = f.integer("issued_at")
        return cls(
            device_id=f.ident("device_id"),
            artifact=ArtifactRef.read(f.nested("artifact")),
            rollout_id=f.ident("rollout_id"),
            sequence=f.integer("sequence", 1),
            issued_at=issued_at,
            deadline=f.integer("deadline", issued_at),
            allow_rollback=f.flag("allow_rollback"),
            min_release=f.integer("min_release") if f.present("min_release") else None,
        )


@dataclass(frozen=True)
class SignedDesiredState:
    """A desired state with its signature block, exactly as it travels (`body` is what was signed)."""

    KIND: ClassVar[Kind] = Kind.DESIRED_STATE

    state: DesiredState
    signature: dict[str, str]
    body: dict[str, Any] = field(repr=False)

    def signed_bytes(self) -> bytes:
        return signed_bytes(self.body)

    def to_dict(self) -> dict[str, Any]:
        return {**self.body, "signature": dict(self.signature)}

    @classmethod
    def from_dict(cls, obj: Any) -> SignedDesiredState:
        signature, body = split_signed(obj, "desired_state", "the fleet must sign it")
        return cls(DesiredState.from_dict(body), signature, body)


def split_signed(obj: Any, kind: str, hint: str) -> tuple[dict[str, str], dict[str, Any]]:
    """A fleet-signed message → (its signature block, checked for shape; the body it signs). `unsigned` if none."""
    f = Fields(obj, kind)
    if not f.present("signature"):
        raise ProtocolError("unsigned", f"{kind} carries no signature", hint)
    sig = f.nested("signature")
    signature = {"algorithm": sig.token("algorithm"), "key_id": sig.text("key_id", 64), "value": sig.text("value")}
    return signature, {k: v for k, v in obj.items() if k != "signature"}


def sign_desired_state(state: DesiredState, key: Ed25519PrivateKey) -> SignedDesiredState:
    """Sign `state` with the fleet key; ProtocolError if it would not pass the device's checks."""
    body = state.to_dict()
    DesiredState.from_dict(body)  # never sign what a device would reject
    return SignedDesiredState(state, signature_block(body, key), body)


_HINTS = {"wrong_key": "provision the device with the fleet's current public key, or sign with the pinned one"}


def verify_desired_state(signed: SignedDesiredState, public_key: Ed25519PublicKey) -> DesiredState:
    """Return the state if the fleet's pinned key signed exactly this payload, else ProtocolError
    ('bad_signature' | 'wrong_key')."""
    problem = signature_problem(signed.signature, signed.body, public_key)
    if problem is not None:
        code, what = problem
        raise ProtocolError(code, f"desired state {what}", _HINTS.get(code))
    return signed.state
