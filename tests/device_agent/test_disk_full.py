"""A disk that fills up during the slot copy: the install rolls back cleanly and the running model keeps serving.

The state folder is a small tmpfs (needs root to mount; CI and the dev machines run as root).
"""

from __future__ import annotations

import contextlib
import os
import subprocess

import pytest

from edgeml.device_agent.update.lifecycle import State

PAGE = 4096

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs to fill it up needs root")


@contextlib.contextmanager
def _tmpfs(path, size_bytes):
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def _pages(folder):
    return sum(-(-p.stat().st_size // PAGE) * PAGE for p in folder.iterdir())


def _assert_clean_rollback(installer, state_dir, result):
    assert (result.outcome, result.code) == (State.ROLLED_BACK, "disk_full"), result.describe()
    assert "disk filled up while copying digits" in result.reason and "running model is unchanged" in result.hint
    assert installer.state().lifecycle is State.ROLLED_BACK
    assert not any(p.name.startswith(".") for p in (state_dir / "slots").iterdir())  # no half-copied folder


def test_64k_disk_refuses_the_first_install_cleanly(tmp_path, make_installer, digits_artifact):
    with _tmpfs(tmp_path / "agent", 64 * 1024) as state_dir:
        installer = make_installer(state_dir)
        _assert_clean_rollback(installer, state_dir, installer.install(digits_artifact))
        assert installer.active_model() is None
        assert installer.resume().lifecycle is State.ROLLED_BACK


def test_disk_with_room_for_one_model_keeps_serving_it(
    tmp_path, make_installer, digits_artifact, newer_artifact, assert_serving
):
    room = _pages(digits_artifact) + 8 * PAGE  # one artifact, the state file and its temp copy; not two
    assert room < _pages(digits_artifact) + _pages(newer_artifact)
    with _tmpfs(tmp_path / "agent", room) as state_dir:
        installer = make_installer(state_dir)
        assert installer.install(digits_artifact).ok
        _assert_clean_rollback(installer, state_dir, installer.install(newer_artifact))
        assert installer.state().slots["b"] is None
        assert_serving(installer, "1.2.3")
        assert make_installer(state_dir).resume().active == "a"


def test_room_for_two_models_is_enough_for_any_number_of_updates(
    tmp_path, make_installer, digits_artifact, newer_artifact, resign, assert_serving
):
    def as_1_4_0(manifest):
        manifest["version"], manifest["release"] = "1.4.0", 1_004_000

    third = resign(newer_artifact, edit=as_1_4_0)
    room = _pages(digits_artifact) + _pages(newer_artifact) + 8 * PAGE  # the old fallback goes before the copy
    with _tmpfs(tmp_path / "agent", room) as state_dir:
        installer = make_installer(state_dir)
        for artifact in (digits_artifact, newer_artifact, third):
            result = installer.install(artifact)
            assert result.ok, result.describe()
        assert (installer.state().slots["b"].version, installer.state().active) == ("1.3.0", "a")
        assert_serving(installer, "1.4.0")
