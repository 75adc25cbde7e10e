"""This machine's CPU: architecture, model name, and the ISA features that change INT8 numerics and speed.

ONNX Runtime, OpenVINO and LiteRT pick their integer kernels by these features (AVX2 vs AVX-512 VNNI vs AMX
on x86; NEON dotprod and i8mm on Arm), so INT8 accuracy, layer rankings and speed-ups measured on one host
may differ on another: every figure a compile measures is recorded with the host it was measured on.
"""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass

__all__ = ["ISA_FEATURES", "HostInfo", "host_from_cpuinfo", "host_info", "normalize_arch", "peak_rss_bytes"]

# /proc/cpuinfo flag → how people name it, in the order a description lists them
ISA_FEATURES: dict[str, str] = {
    "avx2": "AVX2",
    "avx512f": "AVX-512",
    "avx512_vnni": "AVX-512 VNNI",
    "avx_vnni": "AVX-VNNI",
    "amx_int8": "AMX-INT8",
    "asimd": "NEON",
    "asimddp": "dotprod",
    "i8mm": "i8mm",
}


@dataclass(frozen=True)
class HostInfo:
    arch: str  # "x86_64" | "arm64" | other
    cpu: str
    cores: int
    vnni: bool  # AVX-512 VNNI or AVX-VNNI: fast u8·s8 dot products
    amx: bool
    isa: tuple[str, ...] = ()  # the ISA_FEATURES flags this CPU has

    def describe(self) -> str:
        """'x86-64 AVX2' or 'arm64 NEON, dotprod, i8mm': the host in the words latency figures are quoted with."""
        arch = "x86-64" if self.arch == "x86_64" else self.arch
        features = ", ".join(ISA_FEATURES[f] for f in self.isa)
        return f"{arch} {features}" if features else arch

    def to_dict(self) -> dict[str, object]:
        return {
            "arch": self.arch,
            "cpu": self.cpu,
            "cores": self.cores,
            "vnni": self.vnni,
            "amx": self.amx,
            "isa": list(self.isa),
            "description": self.describe(),
        }


def normalize_arch(machine: str) -> str:
    m = machine.lower()
    return {"amd64": "x86_64", "aarch64": "arm64", "armv8": "arm64"}.get(m, m)


@functools.cache
def host_info() -> HostInfo:
    try:
        with open("/proc/cpuinfo") as f:
            cpuinfo = f.read()
    except OSError:
        cpuinfo = ""
    return host_from_cpuinfo(cpuinfo, platform.machine(), platform.system())


def host_from_cpuinfo(cpuinfo: str, machine: str, system: str = "Linux") -> HostInfo:
    """/proc/cpuinfo's text (x86 `flags`, Arm `Features`; '' where there is none) + platform.machine()."""
    cpu, flags = _first_cpu(cpuinfo)
    arch = normalize_arch(machine)
    if arch == "arm64" and not flags and system == "Darwin":
        flags = {"asimd", "asimddp"}  # NOTE: every Apple-silicon core has NEON and the dot-product instructions
    return HostInfo(
        arch=arch,
        cpu=cpu or platform.processor() or machine,
        cores=os.cpu_count() or 1,
        vnni=bool(flags & {"avx512_vnni", "avx_vnni"}),
        amx=bool(flags & {"amx_int8"}),
        isa=tuple(f for f in ISA_FEATURES if f in flags),
    )


def _first_cpu(cpuinfo: str) -> tuple[str, set[str]]:
    """The first CPU's model name and feature flags."""
    cpu, flags = "", set()
    for line in cpuinfo.splitlines():
        key, _, value = (s.strip() for s in line.partition(":"))
        if key in ("flags", "Features") and not flags:
            flags = set(value.split())
        elif key == "model name" and not cpu:
            cpu = value
    return cpu, flags


def peak_rss_bytes() -> int | None:
    """The most resident memory this process, or any child it waited for (Vela, a converter), held so far;
    None where the OS does not say (no `resource` module)."""
    try:
        import resource
    except ImportError:  # NOTE: Windows
        return None
    kib = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    )
    return kib if platform.system() == "Darwin" else kib * 1024  # NOTE: macOS reports bytes, Linux KiB
