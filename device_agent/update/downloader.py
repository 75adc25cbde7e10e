"""An accepted desired state → its artifact file under `state_dir/downloads/`, chunk by chunk over MQTT.

Chunks go straight to disk through the protocol's `Assembler` (preallocated `.partial` file, bitmap of
received chunks, whole-file sha256 before the atomic rename), so memory stays bounded whatever the
artifact size and a restart resumes where the last checkpoint left off. The agent passes `checkpoints`
that keep the bitmap in its one state file, with the update it belongs to.

Requests are windowed: at most `window` chunks are asked for and not yet received; when half the window
has arrived the next ones are asked for. A damaged chunk is dropped and stays outstanding; when nothing
arrives for `quiet_s` seconds, or the connection comes back, everything outstanding is asked for again.
Pure logic: the caller passes in `publish` (for chunk requests) and a clock, and feeds in the chunk
messages; the update worker runs it on its own thread.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable
from pathlib import Path

from edgeml.protocol import AddResult, Assembler, Checkpoints, ChunkRequest, DesiredState, ProtocolError, decode_chunk

__all__ = ["Download"]

log = logging.getLogger(__name__)


class Download:
    def __init__(
        self,
        desired: DesiredState,
        folder: Path,
        publish: Callable[[ChunkRequest], None],
        window: int = 32,
        quiet_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        checkpoints: Checkpoints | None = None,
    ) -> None:
        self.desired = desired
        self.layout = desired.artifact.layout()
        self.path = folder / f"{self.layout.sha256}.tar"
        self.publish = publish
        self.window = window
        self.quiet_s = quiet_s
        self.clock = clock
        self.rejected: collections.Counter[str] = collections.Counter()  # ProtocolError code → chunks dropped
        # raises ArtifactError when the disk fails at resume
        self.assembler = Assembler(self.path, self.layout, checkpoints=checkpoints)
        self._reset_plan()

    @property
    def complete(self) -> bool:
        return self.assembler.complete

    @property
    def received(self) -> int:
        return self.assembler.received

    @property
    def outstanding(self) -> int:
        return len(self._outstanding)

    def request_more(self) -> None:
        """Ask for chunks until `window` are outstanding."""
        self._send(self._fill())

    def request_again(self) -> None:
        """Ask again for everything outstanding (after a quiet period or a reconnect) and fill the window,
        in one request."""
        again = list(self._outstanding)
        self._send(sorted(again + self._fill()))

    def tick(self) -> None:
        """Call a few times a second: re-requests after `quiet_s` without progress."""
        if not self.complete and self.clock() - self._progress_at >= self.quiet_s:
            self.request_again()

    def add(self, message: bytes) -> AddResult | None:
        """Store one chunk message. A damaged one is counted in `rejected` and dropped (None); ArtifactError
        when the disk fails; ProtocolError('hash_mismatch') when the finished file is not the artifact (the
        download then starts over)."""
        try:
            chunk = decode_chunk(message)
        except ProtocolError as exc:
            self.rejected[exc.code] += 1
            log.warning("dropped a chunk of %s…: [%s] %s", self.layout.sha256[:12], exc.code, exc.reason)
            return None
        try:
            result = self.assembler.add(chunk)
        except ProtocolError as exc:
            if exc.code == "hash_mismatch":
                self._reset_plan()
                raise
            self.rejected[exc.code] += 1
            return None
        if result != "ignored":
            self._mark(chunk.index)
        if result in ("stored", "duplicate") and len(self._outstanding) <= self.window // 2:
            self.request_more()
        return result

    def discard(self) -> None:
        """Drop the partial download (a newer desired state replaced this one)."""
        self.assembler.discard()

    # ---- internals --------------------------------------------------------------------------------------

    def _reset_plan(self) -> None:
        missing = self.assembler.missing()
        self._bits = bytearray(b"\xff" * ((self.layout.count + 7) // 8))
        for i in missing:
            self._bits[i >> 3] &= ~(1 << (i & 7)) & 0xFF
        self._todo = collections.deque(missing)
        self._outstanding: dict[int, float] = {}
        self._progress_at = self.clock()

    def _fill(self) -> list[int]:
        """Mark the next chunks outstanding until `window` are; return them."""
        now, wanted = self.clock(), []
        while len(self._outstanding) < self.window and self._todo:
            index = self._todo.popleft()
            if not self._have(index) and index not in self._outstanding:
                self._outstanding[index] = now
                wanted.append(index)
        return wanted

    def _have(self, index: int) -> bool:
        return bool(self._bits[index >> 3] & (1 << (index & 7)))

    def _mark(self, index: int) -> None:
        if not self._have(index):
            self._bits[index >> 3] |= 1 << (index & 7)
            self._progress_at = self.clock()
        self._outstanding.pop(index, None)

    def _send(self, indices: list[int]) -> None:
        if not indices:
            return
        self._progress_at = self.clock()
        self.publish(ChunkRequest.for_indices(self.layout.sha256, self.layout.chunk_size, indices))
