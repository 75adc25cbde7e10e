"""Artifact folder → a deterministic .tar (sorted members, zero times and owners) for transfer."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

from edgeml.atomic_files import atomic_write

__all__ = ["pack"]


def pack(folder: str | os.PathLike[str], tar_path: str | os.PathLike[str]) -> Path:
    folder, tar_path = Path(folder), Path(tar_path)
    with (
        atomic_write(tar_path, durable=False) as out,
        tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = tar.gettarinfo(str(path), arcname=path.relative_to(folder).as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode = 0, 0, 0, "", "", 0o644
            with open(path, "rb") as f:
                tar.addfile(info, f)
    return tar_path
