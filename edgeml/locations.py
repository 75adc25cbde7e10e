"""Where edgeml keeps its files on this machine: the signing key, the pass cache, the compile logs.

Each location can be overridden by an environment variable, so CI jobs and containers stay hermetic.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

__all__ = ["cache_dir", "config_dir", "default_key_path", "log_dir"]


def config_dir() -> Path:
    """`EDGEML_CONFIG_DIR`, else the user's config folder (e.g. ~/.config/edgeml)."""
    env = os.environ.get("EDGEML_CONFIG_DIR")
    return Path(env) if env else Path(platformdirs.user_config_dir("edgeml"))


def cache_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """`--cache-dir`, else `EDGEML_CACHE_DIR`, else the user's cache folder (e.g. ~/.cache/edgeml)."""
    if override:
        return Path(override)
    env = os.environ.get("EDGEML_CACHE_DIR")
    return Path(env) if env else Path(platformdirs.user_cache_dir("edgeml"))


def default_key_path() -> Path:
    """The signing key `edgeml compile` creates on first use when no --key is given."""
    return config_dir() / "keys" / "signing.key"


def log_dir(cache_override: str | os.PathLike[str] | None = None) -> Path:
    """Where compile logs go (third-party libraries' output): `logs/` in the cache folder."""
    return cache_dir(cache_override) / "logs"
