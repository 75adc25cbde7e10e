"""The on-device agent. Light by contract: it never imports torch, onnx, openvino, nncf or tensorflow at
import time; each runtime is imported only when a model that needs it is opened.

    agent.py, cli.py, agent_status.py   the Agent, `edgeml-agent`, and the status report it reads from disk
    update/       the update path: one lifecycle table, persisted in one state file, and its steps
    serving/      the committed model as the host application calls it
    telemetry/    latency, drift and output statistics per period
    messaging/    status, events and the spool: what reaches the fleet
    config/       agent.toml and its environment variables
"""

from __future__ import annotations

from edgeml.device_agent.agent import Agent
from edgeml.device_agent.config.agent_config import AgentConfig, AgentConfigError, load_config
from edgeml.device_agent.serving.prediction import PredictError, Prediction
from edgeml.device_agent.update.install_result import InstallResult
from edgeml.device_agent.update.installer import ActiveModel, Installer
from edgeml.device_agent.update.lifecycle import State
from edgeml.device_agent.update.self_test import SelfTestPolicy
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
