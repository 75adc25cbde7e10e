"""The on-device agent. Light by contract: it never imports torch, onnx, openvino, nncf or tensorflow at
import time; each runtime is imported only when a model that needs it is opened."""

from __future__ import annotations

from edgeml.device_agent.agent import Agent
from edgeml.device_agent.agent_config import AgentConfig, AgentConfigError, load_config
from edgeml.device_agent.install_result import InstallResult
from edgeml.device_agent.installer import ActiveModel, Installer
from edgeml.device_agent.lifecycle import State
from edgeml.device_agent.prediction import PredictError, Prediction
from edgeml.device_agent.self_test import SelfTestPolicy
from edgeml.runtimes import RUNTIMES, Session, open_session

__all__ = [
    "RUNTIMES",
    "ActiveModel",
    "Agent",
    "AgentConfig",
    "AgentConfigError",
    "InstallResult",
    "Installer",
    "PredictError",
    "Prediction",
    "SelfTestPolicy",
    "Session",
    "State",
    "load_config",
    "open_session",
]
