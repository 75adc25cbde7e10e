"""Arrays → a byte-identical `.npz`: fixed zip timestamps and sorted names, so rebuilds match byte for byte."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Mapping

import numpy as np

__all__ = ["npz_bytes", "write_npz"]

_EPOCH = (1980, 1, 1, 0, 0, 0)


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with zf.open(info, "w") as f:
                np.lib.format.write_array(f, np.asarray(arrays[name], order="C"), allow_pickle=False)  # keeps 0-d
    return buf.getvalue()


def write_npz(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray]) -> None:
    with open(path, "wb") as f:
        f.write(npz_bytes(arrays))
