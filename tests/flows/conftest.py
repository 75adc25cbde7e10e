"""The flow tests run Prefect's ephemeral API against a private Prefect home, quietly, with room to start on a
loaded machine. Set when this conftest is imported: Prefect reads its settings when it is first imported, and
the test modules import it while they are collected."""

from __future__ import annotations

import os
import tempfile

for _key, _value in {
    "PREFECT_HOME": tempfile.mkdtemp(prefix="edgeml-prefect-home-"),
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300",
}.items():
    os.environ.setdefault(_key, _value)
