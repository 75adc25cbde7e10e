"""This machine's CPU: architecture, model name, the integer-dot-product features quantization cares about."""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass

__all__ = ["HostInfo", "host_info", "normalize_arch"]


@dataclass(frozen=True)
class HostInfo:
    arch: str  # "x86_64" | "arm64" | other
    cpu: str
    cores: int
    vnni: bool  # AVX-512 VNNI or AVX-VNNI: fast u8·s8 dot products
    amx: bool

    def to_dict(self) -> dict[str, object]:
        return {"arch": self.arch, "cpu": self.cpu, "cores": self.cores, "vnni": self.vnni, "amx": self.amx}


def normalize_arch(machine: str) -> str:
    m = machine.lower()
    return {"amd64": "x86_64", "aarch64": "arm64", "armv8": "arm64"}.get(m, m)


@functools.cache
def host_info() -> HostInfo:
    flags: set[str] = set()
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "flags" and not flags:
                    flags = set(value.split())
                elif key.strip() == "model name":
                    cpu = value.strip()
    except OSError:
        pass
    return HostInfo(
        arch=normalize_arch(platform.machine()),
        cpu=cpu,
        cores=os.cpu_count() or 1,
        vnni=bool(flags & {"avx512_vnni", "avx_vnni"}),
        amx=bool(flags & {"amx_int8"}),
    )
