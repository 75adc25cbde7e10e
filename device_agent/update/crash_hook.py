"""Test hook: die right after a lifecycle state is persisted, the way a power cut would.

Set `EDGEML_AGENT_CRASH_AT=<state>` (e.g. `installing`) and the installer calls `os._exit(137)` just after
it has persisted that state, before running the state's step: no cleanup, no finally blocks, no flushed
buffers. The crash tests run an install in a subprocess this way and then check that `resume()` brings
the device back to a verified, loadable model. This is the only place the variable is read; unset (as
on every real device) it costs one dictionary lookup per transition.
"""

from __future__ import annotations

import logging
import os

from edgeml.device_agent.update.lifecycle import State

__all__ = ["CRASH_ENV", "crash_if_asked"]

CRASH_ENV = "EDGEML_AGENT_CRASH_AT"

log = logging.getLogger(__name__)


def crash_if_asked(state: State) -> None:
    if os.environ.get(CRASH_ENV) == state.value:
        log.warning("%s=%s: simulating a power cut after persisting %s", CRASH_ENV, state.value, state.value)
        os._exit(137)
