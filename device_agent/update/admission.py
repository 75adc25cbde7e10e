"""A verified manifest + what this device is → admitted for install, or InstallFailure naming the rule it breaks.

Rules, in order: built for this device's target; its runtime is one this device runs and is installed, at
the manifest's `target.runtime_min_version` or later;
its model file and self-test are listed in the manifest; its release is not below the anti-rollback floor.
The floor is the `min_release` the fleet signed with the update when there is one (the fleet's policy: a
reverted release can then be superseded by a lower hotfix); otherwise the release must be above the highest
ever committed here, or equal to it while the device runs an older one after a revert (releases only move
forward unless the caller allows a rollback).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from edgeml.device_agent.update.install_failure import InstallFailure
from edgeml.device_agent.update.self_test import self_test_spec
from edgeml.errors import RuntimeUnavailableError
from edgeml.runtimes import RUNTIMES, at_least, runtime_class, runtime_version

__all__ = ["check_admission"]


def check_admission(
    manifest: dict[str, Any],
    device_target: str,
    runtimes: Collection[str],
    committed_release: int | None,
    allow_rollback: bool,
    active_release: int | None = None,
    min_release: int | None = None,
) -> None:
    _check_target(manifest, device_target)
    _check_runtime(manifest, runtimes)
    _check_model_file(manifest)
    self_test_spec(manifest)
    if min_release is not None:
        _check_signed_floor(manifest, min_release)
    else:
        _check_release(manifest, committed_release, allow_rollback, active_release)


def _label(manifest: dict[str, Any]) -> str:
    return f"{manifest['name']} {manifest['version']} (release {manifest['release']})"


def _check_target(manifest: dict[str, Any], device_target: str) -> None:
    target = manifest["target"]["id"]
    if target != device_target:
        raise InstallFailure(
            "wrong_target",
            f"{_label(manifest)} was compiled for target {target!r}; this device is {device_target!r}",
            f"compile the model for this device: `edgeml compile MODEL --target {device_target}`",
        )


def _check_runtime(manifest: dict[str, Any], runtimes: Collection[str]) -> None:
    runtime = manifest["target"].get("runtime")
    if runtime not in runtimes:
        raise InstallFailure(
            "runtime_unavailable",
            f"{_label(manifest)} needs runtime {runtime!r}; this device runs {', '.join(sorted(runtimes)) or 'none'}",
            "compile for a target whose runtime this device has, or add the runtime to the agent's configuration",
        )
    try:
        runtime_class(runtime)
    except RuntimeUnavailableError as exc:
        raise InstallFailure("runtime_unavailable", exc.message, exc.hint) from exc
    minimum = manifest["target"].get("runtime_min_version")
    installed = runtime_version(runtime)
    if isinstance(minimum, str) and installed is not None and at_least(installed, minimum) is False:
        raise InstallFailure(
            "runtime_too_old",
            f"{_label(manifest)} needs {runtime} ≥ {minimum}; this device has {installed}",
            f"upgrade {runtime} on the device (pip install -U 'edgeml[{RUNTIMES[runtime][2]}]'), or compile for "
            "an older runtime",
        )


def _check_model_file(manifest: dict[str, Any]) -> None:
    model_file = manifest["target"].get("model_file")
    if model_file not in {entry["path"] for entry in manifest["files"]}:
        raise InstallFailure(
            "malformed",
            f"{_label(manifest)}: target.model_file {model_file!r} is not one of the manifest's files",
            "recompile the artifact with `edgeml compile`",
        )


def _check_signed_floor(manifest: dict[str, Any], min_release: int) -> None:
    if manifest["release"] < min_release:
        raise InstallFailure(
            "release_not_newer",
            f"{_label(manifest)} is below the anti-rollback floor {min_release} the fleet signed (min_release) "
            "with this update",
            "roll out a release at or above the floor, or take the devices back on purpose with "
            "`edgeml fleet rollout create … --allow-rollback`",
        )


def _check_release(
    manifest: dict[str, Any], committed_release: int | None, allow_rollback: bool, active_release: int | None
) -> None:
    """Releases move forward: below the highest ever committed here is a rollback (only when signed as one).
    The highest itself may come back after a revert moved the device below it — not while it is running."""
    release = manifest["release"]
    if committed_release is None or allow_rollback or release > committed_release:
        return
    if release == committed_release and active_release != committed_release:
        return
    raise InstallFailure(
        "release_not_newer",
        f"{_label(manifest)} is not newer than release {committed_release} already committed on this device "
        "(the anti-rollback floor: the update carries no min_release signed by the fleet)",
        "ship a higher version, or send a signed rollback (install with allow_rollback=True)",
    )
