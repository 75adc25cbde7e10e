"""A disk that fills up during a download: the agent reports it, keeps serving, and tries again later.

The state folder is a small tmpfs (mounting needs root; CI and the dev machines run as root)."""

from __future__ import annotations

import contextlib
import os
import subprocess

import numpy as np
import pytest

from edgeml.protocol import Kind
from edgeml.transport.memory_transport import MemoryTransport

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs to fill it up needs root")

PAGE = 4096


@contextlib.contextmanager
def _tmpfs(path, size_bytes):
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def _pages(folder):
    return sum(-(-p.stat().st_size // PAGE) * PAGE for p in folder.rglob("*") if p.is_file())


def test_a_full_disk_during_download_is_reported_and_the_model_keeps_serving(
    tmp_path, make_config, memory_fleet, running_agents, preinstall, digits_artifact, newer_tar
):
    broker, fleet = memory_fleet
    room = _pages(digits_artifact) + 16 * PAGE  # one model and the agent's small files; no room for a download
    with _tmpfs(tmp_path / "agent", room) as state_dir:
        config = make_config(agent={"state_dir": str(state_dir)})
        preinstall(config, digits_artifact)
        agent = running_agents.start(config, MemoryTransport(broker, "cam-042"))
        fleet.next(Kind.HELLO)
        fleet.desire(fleet.add(newer_tar))
        failed = fleet.event("download_failed")
        assert failed.reason.startswith("[disk_full]") and "disk is full" in failed.reason and not failed.ok
        assert agent.serving.model.version == "1.2.3"
        assert agent.predict({"input": np.zeros((1, 1, 8, 8), np.float32)})["logits"].shape == (1, 10)
        assert agent.status()["download"]["received"] == 0
        running_agents.pop().stop()
