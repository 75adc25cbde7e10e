"""The build host's CPU and the ISA features that change INT8 numerics and speed, from /proc/cpuinfo's text."""

from __future__ import annotations

from edgeml.host import ISA_FEATURES, host_from_cpuinfo, host_info

XEON = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse sse2 avx avx2 fma avx512f avx512bw avx512_vnni amx_bf16 amx_tile amx_int8
processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse sse2
"""

EPYC = """processor\t: 0
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse sse2 avx avx2 fma f16c
"""

GRAVITON3 = """processor\t: 0
BogoMIPS\t: 2100.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp asimddp sha512 sve i8mm bf16
CPU implementer\t: 0x41
CPU part\t: 0xd40
"""


def test_x86_with_avx512_vnni_and_amx():
    host = host_from_cpuinfo(XEON, "x86_64")
    assert host.isa == ("avx2", "avx512f", "avx512_vnni", "amx_int8")  # the first CPU's flags
    assert host.vnni and host.amx and host.cpu == "Intel(R) Xeon(R) Platinum 8480+"
    assert host.describe() == "x86-64 AVX2, AVX-512, AVX-512 VNNI, AMX-INT8"


def test_x86_with_avx2_only():
    host = host_from_cpuinfo(EPYC, "AMD64")
    assert (host.arch, host.isa, host.vnni, host.amx) == ("x86_64", ("avx2",), False, False)
    assert host.describe() == "x86-64 AVX2"


def test_arm_neon_dotprod_i8mm_from_features():
    host = host_from_cpuinfo(GRAVITON3, "aarch64")
    assert host.arch == "arm64" and host.isa == ("asimd", "asimddp", "i8mm")
    assert host.describe() == "arm64 NEON, dotprod, i8mm"
    assert host.to_dict()["isa"] == ["asimd", "asimddp", "i8mm"]


def test_no_cpuinfo_names_the_architecture_only():
    assert host_from_cpuinfo("", "x86_64").isa == ()
    assert host_from_cpuinfo("", "x86_64").describe() == "x86-64"
    assert host_from_cpuinfo("", "arm64", "Darwin").isa == ("asimd", "asimddp")  # Apple silicon


def test_this_host_is_described_with_known_features_only():
    host = host_info()
    assert set(host.isa) <= set(ISA_FEATURES)
    assert host.to_dict()["description"] == host.describe()


def test_peak_memory_is_read_from_the_os_and_only_grows():
    from edgeml.host import peak_rss_bytes

    before = peak_rss_bytes()
    assert before is not None and before > 1 << 20  # a Python process holds megabytes
    block = bytearray(64 << 20)
    block[:: 1 << 12] = b"x" * len(block[:: 1 << 12])  # NOTE: touch each page so it is resident
    assert peak_rss_bytes() >= before
    assert peak_rss_bytes() >= 64 << 20
