"""An artifact .tar uploaded as an HTTP body → unpacked safely and published as `edgeml fleet publish` does.

The body is streamed to a temporary folder inside the store (capped), the members' total size is checked
against the same cap (a small compressed tar must not fill the disk), the tar is unpacked with tarfile's
"data" filter (no links out, no absolute paths), and the folder is published: verified against the fleet's
key and re-packed deterministically, so the digest equals the CLI's for that folder however the client
made its tar.
"""

from __future__ import annotations

import tarfile
import tempfile
from pathlib import Path
from typing import Any

from edgeml.artifact import open_artifact
from edgeml.errors import VerificationError
from edgeml.fleet.api_request import ApiError, ApiRequest
from edgeml.fleet.artifact_store import ArtifactStore
from edgeml.fleet.database import FleetError

__all__ = ["UPLOAD_TYPES", "publish_upload"]

UPLOAD_TYPES = ("application/x-tar", "application/octet-stream", "application/gzip", "application/x-gzip")
MAKE_TAR = "tar -C build/my-artifact -cf - . | curl --data-binary @- -H 'Content-Type: application/x-tar' …"


def publish_upload(store: ArtifactStore, req: ApiRequest, now: float) -> dict[str, Any]:
    if req.media_type() not in UPLOAD_TYPES:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"an artifact upload is a .tar, not {req.media_type()!r}",
            f"send Content-Type application/x-tar: {MAKE_TAR}",
        )
    with tempfile.TemporaryDirectory(dir=store.root, prefix=".upload-") as tmp:
        tar = Path(tmp) / "upload.tar"
        req.save_body(tar)
        _check_unpacked_size(tar, req.max_upload_bytes)
        unpacked: list[Path] = []
        try:
            with open_artifact(tar) as folder:
                unpacked.append(folder)
                return store.publish(folder, now)
        except (VerificationError, FleetError) as exc:
            cause = exc if isinstance(exc, VerificationError) else exc.__cause__
            if not isinstance(cause, VerificationError):
                raise
            raise _refused(exc, [tar, *unpacked]) from exc


def _check_unpacked_size(tar: Path, limit: int) -> None:
    try:
        with tarfile.open(tar) as t:
            total = sum(member.size for member in t)
    except tarfile.TarError:
        return  # NOTE: open_artifact says what is wrong with it
    if total > limit:
        raise ApiError(
            413,
            "payload_too_large",
            f"the upload unpacks to {total} bytes; the limit is {limit}",
            "publish it on the fleet's machine with `edgeml fleet publish`, or raise --http-max-upload-mb",
        )


def _refused(exc: VerificationError | FleetError, temporary: list[Path]) -> ApiError:
    message = exc.message
    for path in temporary:
        message = message.replace(str(path), "the uploaded artifact")
    return ApiError(400, "verification_failed", message, exc.hint or "upload an artifact signed with the fleet's key")
