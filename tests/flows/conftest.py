"""The flow tests run Prefect's ephemeral API against a private Prefect home, quietly."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def prefect_home(tmp_path_factory):
    # NOTE: Prefect reads its settings when first imported: set them before any test imports it
    home = tmp_path_factory.mktemp("prefect-home")
    for key, value in {"PREFECT_HOME": str(home), "PREFECT_LOGGING_LEVEL": "WARNING",
                       "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                       "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180"}.items():  # fmt: skip
        os.environ.setdefault(key, value)
    return home
