"""The instruction set the direct kernels are built for, and what it gives them: vector lanes and registers.

A register block (fast.py) must fit the vector registers, and their number and width depend on the CPU:

    profile   lanes of float32   vector registers   machines
    avx512          16                 32           Intel Xeon since Skylake-SP, AMD Zen 4
    avx2             8                 16           AVX2 + FMA: most laptops and cloud VMs, AMD Zen 1-3
    neon             4                 32           ARM64 (Apple M-series, Graviton); not measured here
    generic          -                  -           anything else: the direct kernels are not used

The profile is the one of the machine code numba generates: the host's, or the target named by numba's
NUMBA_CPU_NAME / NUMBA_CPU_FEATURES (so that AVX2 code can be generated and timed on an AVX-512 machine).
MINIRES_ISA=avx512|avx2|neon|generic overrides the choice (for tests and measurements; a profile wider than
the code LLVM emits still computes correctly, only slower).
"""
import functools
import os
import platform
from typing import NamedTuple

from minires.errors import ArgumentError


class Profile(NamedTuple):
    name: str
    lanes: int       # float32 lanes of one vector register
    registers: int   # vector registers the register blocks may fill


PROFILES = {"avx512": Profile("avx512", 16, 32), "avx2": Profile("avx2", 8, 16), "neon": Profile("neon", 4, 32),
            "generic": Profile("generic", 0, 0)}

# LLVM CPU names that NUMBA_CPU_NAME may give without NUMBA_CPU_FEATURES, by the widest profile they have
_AVX512_CPUS = {"skylake-avx512", "cascadelake", "cooperlake", "cannonlake", "icelake-client", "icelake-server",
                "tigerlake", "sapphirerapids", "emeraldrapids", "graniterapids", "rocketlake", "znver4", "znver5",
                "knl", "knm", "x86-64-v4"}
_AVX2_CPUS = {"haswell", "broadwell", "skylake", "alderlake", "raptorlake", "meteorlake", "arrowlake", "gracemont",
              "znver1", "znver2", "znver3", "bdver4", "x86-64-v3"}


def profile_of(arch, cpu_name, features):
    """The profile for machine code of ``arch`` (platform.machine()), LLVM CPU ``cpu_name`` and a feature set
    ({name: enabled}; None when only the CPU name is known)."""
    if arch.lower() in ("arm64", "aarch64"):
        return PROFILES["neon"]  # NEON is part of every ARM64 CPU
    if arch.lower() not in ("x86_64", "amd64"):
        return PROFILES["generic"]
    if features is None:
        return PROFILES["avx512" if cpu_name in _AVX512_CPUS else "avx2" if cpu_name in _AVX2_CPUS else "generic"]
    if features.get("avx512f"):
        return PROFILES["avx512"]
    if features.get("avx2") and features.get("fma"):
        return PROFILES["avx2"]
    return PROFILES["generic"]


def parse_features(text):
    """NUMBA_CPU_FEATURES' form, '+avx2,+fma,-avx512f', as {name: enabled}."""
    return {item.strip()[1:]: item.strip()[0] == "+" for item in text.split(",") if item.strip()[:1] in "+-"
            and item.strip()[1:]}


def _target():
    """(LLVM CPU name, features or None) of the code numba generates in this process."""
    import llvmlite.binding as llvm
    import numba
    if numba.config.CPU_FEATURES:
        return numba.config.CPU_NAME or llvm.get_host_cpu_name(), parse_features(numba.config.CPU_FEATURES)
    if numba.config.CPU_NAME and numba.config.CPU_NAME != "host":
        return numba.config.CPU_NAME, None
    return llvm.get_host_cpu_name(), dict(llvm.get_host_cpu_features())


@functools.lru_cache(maxsize=None)
def _detected():
    name, features = _target()
    return profile_of(platform.machine(), name, features), name


def current():
    """The profile in force (MINIRES_ISA, else the target numba compiles for)."""
    chosen = os.environ.get("MINIRES_ISA")
    if chosen:
        if chosen not in PROFILES:
            raise ArgumentError(f"MINIRES_ISA={chosen!r}: expected one of {', '.join(PROFILES)}")
        return PROFILES[chosen]
    return _detected()[0]


def cpu_model(cpuinfo="/proc/cpuinfo"):
    """The CPU's marketing name where Linux tells it (``cpuinfo``'s "model name", or "Model" on ARM boards),
    else what the platform module says."""
    try:
        with open(cpuinfo) as info:
            for line in info:
                if line.startswith(("model name", "Model")) and ":" in line:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe():
    """One line for benchmark tables: the CPU, LLVM's name for it and the profile the kernels are built for."""
    profile, target = current(), _detected()[1]
    width = f"{profile.lanes} float32 lanes x {profile.registers} registers" if profile.lanes else "no direct kernels"
    return f"{cpu_model()} (LLVM target {target}); direct kernels for {profile.name}: {width}"


def machine_key():
    """What a tuning result belongs to: CPU model, LLVM target and profile (another CPU never reuses it)."""
    return f"{cpu_model()}|{_detected()[1]}|{current().name}"
