"""Shared test set-up: hypothesis profiles, the gpu marker, a stand-in clock, no autotuning.

Profiles (HYPOTHESIS_PROFILE=ci|dev|thorough, default ci): ``ci`` keeps the suite within minutes on 2 cores.
"""
import itertools
import os
import types

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=20, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=30, deadline=None)
settings.register_profile("thorough", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# The autotuner times kernels on a layer's first use: which block a test then runs (and which kernels it
# compiles) would depend on how busy the machine is. Tests run the default blocks; the tuner's own tests (and
# `minires tune`'s) turn it on where they need it. Subprocesses inherit this.
os.environ.setdefault("MINIRES_TUNE", "0")


def pytest_collection_modifyitems(config, items):
    from minires import backend

    if backend.cuda_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU with CuPy")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture
def one_second_per_reading(monkeypatch):
    """``install(module)`` replaces the module's ``time`` by a clock that advances one second per reading:
    a test checks how measured durations are added up without measuring one (no test asserts a timing)."""
    def install(module):
        ticks = itertools.count(100)
        monkeypatch.setattr(module, "time", types.SimpleNamespace(perf_counter=lambda: float(next(ticks))))
    return install
