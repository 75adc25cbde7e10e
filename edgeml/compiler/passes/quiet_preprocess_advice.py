"""A context in which ONNX Runtime's "please consider pre-processing" root-logger advice is filtered out.

edgeml's preparation passes already do what that advice asks (ORT basic optimization, shape inference).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

__all__ = ["quiet_preprocess_advice"]


@contextlib.contextmanager
def quiet_preprocess_advice() -> Iterator[None]:
    """ONNX Runtime logs "consider pre-processing" on the root logger; edgeml already ran those steps."""
    advice = lambda record: "pre-process" not in record.getMessage()  # noqa: E731
    root = logging.getLogger()
    root.addFilter(advice)
    try:
        yield
    finally:
        root.removeFilter(advice)
