"""The on-device agent. Light by contract: it never imports torch, onnx, openvino, nncf or tensorflow at
import time; each runtime is imported only when a model that needs it is opened."""

from __future__ import annotations

from edgeml.device_agent.runtimes import RUNTIMES, Session, open_session

__all__ = ["RUNTIMES", "Session", "open_session"]
