"""kernels/direct/isa.py (which vectors and registers a machine gives the kernels), blocks.py (which register
blocks fit them) and tune.py (which one a layer runs with, and the tuning file that remembers it: a damaged,
foreign or impossible entry is ignored, never trusted)."""
import hashlib
import json
import os

import numpy as np
import pytest

from minires import kernels
from minires.errors import ArgumentError

pytest.importorskip("numba")
from minires.kernels.direct import blocks, isa, tune  # noqa: E402

PROFILES = [isa.PROFILES[name] for name in ("avx512", "avx2", "neon")]


@pytest.mark.parametrize("arch, cpu, features, expected", [
    ("x86_64", "znver4", {"avx512f": True, "avx2": True, "fma": True}, "avx512"),
    ("x86_64", "znver3", {"avx512f": False, "avx2": True, "fma": True}, "avx2"),
    ("x86_64", "znver3", {"avx2": True, "fma": False}, "generic"),   # AVX2 without FMA: no vsfma
    ("x86_64", "nehalem", {"sse4.2": True}, "generic"),
    ("x86_64", "haswell", None, "avx2"),                              # NUMBA_CPU_NAME alone
    ("x86_64", "skylake-avx512", None, "avx512"),
    ("x86_64", "generic", None, "generic"),
    ("AMD64", "icelake-server", {"avx512f": True}, "avx512"),
    ("aarch64", "neoverse-n1", {"neon": True}, "neon"),
    ("arm64", "apple-m1", None, "neon"),
    ("ppc64le", "pwr9", {}, "generic"),
])
def test_the_profile_follows_the_instruction_set_of_the_generated_code(arch, cpu, features, expected):
    assert isa.profile_of(arch, cpu, features).name == expected


def test_numba_cpu_features_are_read_as_numba_writes_them():
    assert isa.parse_features("+avx2,+fma, -avx512f,,junk,Xfoo,+x") == {"avx2": True, "fma": True, "avx512f": False,
                                                                        "x": True}


def test_the_profiles_are_the_instruction_sets_vectors_and_registers():
    assert {name: (p.lanes, p.registers) for name, p in isa.PROFILES.items()} == {
        "avx512": (16, 32), "avx2": (8, 16), "neon": (4, 32), "generic": (0, 0)}


@pytest.mark.parametrize("text, expected", [
    ("processor\t: 0\nmodel name\t: AMD EPYC 7B13 64-Core Processor\nflags\t: fpu\n", "AMD EPYC 7B13 64-Core Processor"),
    ("Processor\t: ARMv7\nModel\t\t: Raspberry Pi 4 Model B\n", "Raspberry Pi 4 Model B"),
    ("model name\t: Intel(R) Xeon(R) CPU @ 2.20GHz: stepping 7\n", "Intel(R) Xeon(R) CPU @ 2.20GHz: stepping 7"),
    ("model name without a colon\nmodel name: B\n", "B"),
])
def test_the_cpu_model_is_read_from_cpuinfo(tmp_path, text, expected):
    (tmp_path / "cpuinfo").write_text(text)
    assert isa.cpu_model(tmp_path / "cpuinfo") == expected


def test_without_cpuinfo_the_cpu_model_is_platforms(tmp_path, monkeypatch):
    import platform
    monkeypatch.setattr(platform, "processor", lambda: "")
    assert isa.cpu_model(tmp_path / "missing") == platform.machine()
    monkeypatch.setattr(platform, "processor", lambda: "arm")
    assert isa.cpu_model(tmp_path / "missing") == "arm"


def test_describe_and_the_machine_key_name_the_cpu_the_target_and_the_profile(monkeypatch):
    import llvmlite.binding as llvm
    monkeypatch.setenv("MINIRES_ISA", "avx2")
    target = isa._detected()[1]
    assert isa.describe() == f"{isa.cpu_model()} (LLVM target {target}); direct kernels for avx2: 8 float32 lanes x 16 registers"
    assert isa.machine_key() == f"{isa.cpu_model()}|{target}|avx2"
    monkeypatch.setenv("MINIRES_ISA", "generic")
    assert isa.describe().endswith("direct kernels for generic: no direct kernels")
    monkeypatch.delenv("MINIRES_ISA")
    assert target in (llvm.get_host_cpu_name(), __import__("numba").config.CPU_NAME)


def test_numba_cpu_name_picks_the_profile_of_that_target(monkeypatch):
    import numba
    isa._detected.cache_clear()
    monkeypatch.setattr(numba.config, "CPU_NAME", "haswell")
    monkeypatch.setattr(numba.config, "CPU_FEATURES", None)
    import llvmlite.binding as llvm
    import platform
    try:
        assert isa.current().name == "avx2" and "haswell" in isa.machine_key()
        monkeypatch.setattr(numba.config, "CPU_FEATURES", "+avx512f,+avx2,+fma")
        isa._detected.cache_clear()
        assert isa.current().name == "avx512"
        monkeypatch.setattr(numba.config, "CPU_NAME", None)  # features alone: the host's name
        isa._detected.cache_clear()
        assert isa.current().name == "avx512" and isa._detected()[1] == llvm.get_host_cpu_name()
        monkeypatch.setattr(numba.config, "CPU_NAME", "host")  # numba's word for the machine itself
        monkeypatch.setattr(numba.config, "CPU_FEATURES", None)
        isa._detected.cache_clear()
        host = isa.profile_of(platform.machine(), llvm.get_host_cpu_name(), dict(llvm.get_host_cpu_features()))
        assert isa.current() == host
    finally:
        isa._detected.cache_clear()


def test_minires_isa_overrides_and_a_wrong_name_is_an_error_that_lists_the_choices(monkeypatch):
    monkeypatch.setenv("MINIRES_ISA", "neon")
    assert isa.current() == isa.PROFILES["neon"]
    assert "direct kernels for neon: 4 float32 lanes x 32 registers" in isa.describe()
    monkeypatch.setenv("MINIRES_ISA", "avx1024")
    with pytest.raises(ArgumentError, match=r"^MINIRES_ISA='avx1024': expected one of avx512, avx2, neon, generic$"):
        isa.current()


def test_a_cpu_without_a_profile_runs_no_direct_kernel_and_keeps_weights_nchw(monkeypatch):
    monkeypatch.setenv("MINIRES_ISA", "generic")
    assert kernels.conv2d_weight_format(np.float32) == "contiguous_format"
    x = np.zeros((1, 2, 2, 16), np.float32).transpose(0, 3, 1, 2)
    from minires.functional.window import sliding_window
    window = sliding_window("conv2d", x.shape, (1, 1), 1, 0, 1)
    assert not kernels.direct.applies(x, np.zeros((16, 16, 1, 1), np.float32), window, 1)


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
@pytest.mark.parametrize("kind", sorted(blocks.ROW3 + ("forward", "forward_tiled", "weight_grad", "weight_grad_cl",
                                                      "input_grad_scatter")))
@pytest.mark.parametrize("vector_count", [1, 2, 3, 4, 6, 8, 16, 64])
def test_every_candidate_fits_the_registers_divides_the_channels_and_the_default_comes_first(profile, kind,
                                                                                          vector_count):
    limit = 3 if kind.startswith("weight_grad") and kind != "weight_grad_cl" else None
    divides = 24 if kind == "weight_grad_cl" else None
    found = blocks.candidates(kind, profile, vector_count, limit, divides)
    assert found[0] == blocks.default(kind, profile, vector_count, limit, divides)
    assert len(found) == len(set(found)) <= 4
    for block in found:
        assert block.kind == kind and blocks.fits(block, profile), block
        assert vector_count % block.vectors == 0 and block.size >= 1
        assert limit is None or block.size <= limit
        assert divides is None or divides % block.size == 0


def test_the_register_counts_are_the_blocks_accumulators_loads_and_one_scalar():
    assert blocks.registers_needed("forward", 4, 2) == 8 + 2 + 1
    assert blocks.registers_needed("forward_row3", 8, 1) == 8 + 3 + 1
    assert blocks.registers_needed("weight_grad_row3", 4, 1) == 12 + 3 + 1
    avx512, avx2 = isa.PROFILES["avx512"], isa.PROFILES["avx2"]
    # the blocks measured best on AVX-512 before tuning existed are its defaults
    assert [blocks.default("forward", avx512, v)[1:] for v in (1, 2, 4)] == [(8, 1), (8, 2), (4, 4)]
    assert blocks.default("weight_grad_row3", avx512, 1, limit=16)[1:] == (8, 1)
    assert blocks.default("weight_grad_cl", avx512, 4, divides=64)[1:] == (8, 2)
    # AVX2 has half the registers: no default spills
    assert blocks.default("forward", avx2, 8)[1:] == (4, 2)
    assert blocks.default("weight_grad_row3", avx2, 2, 16)[1:] == (4, 1)


def _sizes(found):
    return [tuple(block)[1:] for block in found]


def test_the_candidates_are_the_largest_fitting_blocks_per_vector_count_and_their_halves():
    """Hand-counted on AVX2 (16 registers) and AVX-512 (32): per vector count, the largest size whose block
    fits (at most 12, the limit, a divisor of ``divides``) and its half (not below 2), at most four in all."""
    avx2, avx512 = isa.PROFILES["avx2"], isa.PROFILES["avx512"]
    assert _sizes(blocks.candidates("forward", avx2, 2)) == [(4, 2), (6, 2), (3, 2), (12, 1)]
    assert _sizes(blocks.candidates("forward", avx2, 8)) == [(4, 2), (2, 4), (6, 2), (3, 2)]
    assert _sizes(blocks.candidates("weight_grad_cl", avx2, 2, divides=20)) == [(4, 2), (5, 2), (2, 2), (10, 1)]
    assert _sizes(blocks.candidates("weight_grad", avx2, 2, limit=3)) == [(3, 2), (3, 1)]
    assert _sizes(blocks.candidates("weight_grad", avx2, 2, limit=1)) == [(1, 2)]  # a 1-channel input
    assert _sizes(blocks.candidates("weight_grad_row3", avx2, 4, limit=16)) == [(4, 1), (2, 1)]
    assert _sizes(blocks.candidates("weight_grad_row3", avx512, 2, limit=16)) == [(8, 1), (4, 2), (2, 2), (9, 1)]
    assert blocks.default("weight_grad_cl", avx2, 2, divides=6)[1:] == (3, 2)  # the largest divisor below 4
    assert blocks.default("weight_grad_cl", avx2, 3, divides=8)[2] == 1  # 24 channels: one vector, not three
    every = [b for kind in blocks.ROW3 + ("forward",) for n in (1, 2, 8) for b in blocks.candidates(kind, avx2, n)]
    assert all(type(b.size) is int and type(b.vectors) is int for b in every)


def test_a_layer_both_kinds_can_compute_times_the_first_three_blocks_of_each():
    avx2 = isa.PROFILES["avx2"]
    found = blocks.choices(["forward_row3", "forward"], avx2, 2)
    assert found == blocks.candidates("forward_row3", avx2, 2)[:3] + blocks.candidates("forward", avx2, 2)[:3]
    assert found[0] == blocks.default("forward_row3", avx2, 2)


# --- the tuner ------------------------------------------------------------------------------------------------

CANDIDATES = [blocks.Block("forward", 4, 2), blocks.Block("forward", 2, 4), blocks.Block("forward_row3", 6, 1)]


def _args(stride=1):
    return (np.zeros((2, 3)), np.zeros(4), np.full(5, 7.0), 3, stride)


@pytest.fixture
def timed(monkeypatch):
    """A tuner whose clock says each block takes the seconds in ``timed.seconds`` (no real timing), and the
    list of blocks it ran."""
    class Timed:
        seconds = {CANDIDATES[0]: 0.010, CANDIDATES[1]: 0.004, CANDIDATES[2]: 0.020}
        ran = []

        def run(self, block, args):
            assert not args[2].any() and args[2].shape == (5,)  # a zeroed scratch output, never the caller's
            self.ran.append(block)
            self.current = block
    t = Timed()
    t.ran = []
    monkeypatch.setattr(tune, "seconds_of", lambda run, repeats: (run(), t.seconds[t.current])[1])
    monkeypatch.delenv("MINIRES_TUNE", raising=False)
    return t


def test_the_fastest_candidate_wins_and_is_remembered_for_this_machine(tmp_path, timed):
    tuner = tune.Tuner(tmp_path, "CPU X|znver3|avx2", "g1")
    assert tuner.choose("forward", _args(), CANDIDATES, timed.run) == CANDIDATES[1]
    content = json.loads(tuner.path.read_text())
    assert content["machine"] == "CPU X|znver3|avx2" and list(content["choices"].values()) == [["forward", 2, 4]]
    assert content["format"] == 1 and content["generator"] == "g1"
    assert tuner.path.name == f"tuning-{hashlib.sha1(b'CPU X|znver3|avx2').hexdigest()[:12]}.json"
    assert tuner.timings[tune.layer_key("forward", _args())] == dict(zip(CANDIDATES, (0.010, 0.004, 0.020)))
    timed.ran = []  # asked again in this process: remembered, nothing runs
    assert tuner.choose("forward", _args(), CANDIDATES, timed.run) == CANDIDATES[1] and timed.ran == []
    # another process on the same machine reads it and times nothing
    again, timed.ran = tune.Tuner(tmp_path, "CPU X|znver3|avx2", "g1"), []
    assert again.choose("forward", _args(), CANDIDATES, timed.run) == CANDIDATES[1] and timed.ran == []


@pytest.mark.parametrize("damage", [
    "not json {", json.dumps([1, 2]),
    json.dumps({"format": 2, "machine": "CPU X|znver3|avx2", "generator": "g1", "choices": {}}), json.dumps({"format": 1, "machine": "CPU Y|znver4|avx512", "generator": "g1",
                                                   "choices": {}}),
    json.dumps({"format": 1, "machine": "CPU X|znver3|avx2", "generator": "g0", "choices": {}}),
    json.dumps({"format": 1, "machine": "CPU X|znver3|avx2", "generator": "g1", "choices": "all"})])
def test_a_damaged_or_foreign_tuning_file_is_ignored_and_replaced(tmp_path, timed, damage, caplog):
    caplog.set_level("INFO", logger="minires.tune")  # what `minires -v` shows
    tuner = tune.Tuner(tmp_path, "CPU X|znver3|avx2", "g1")
    key = tune.layer_key("forward", _args())
    entry = {key: ["forward_row3", 6, 1]}
    text = damage.replace('"choices": {}', f'"choices": {json.dumps(entry)}')
    tuner.path.write_text(text)
    assert tuner.choose("forward", _args(), CANDIDATES, timed.run) == CANDIDATES[1]
    assert set(timed.ran) == set(CANDIDATES)  # timed afresh
    assert json.loads(tuner.path.read_text())["choices"] == {key: ["forward", 2, 4]}
    assert [r.name for r in caplog.records] and all(r.name == "minires.tune" for r in caplog.records)
    assert any(r.getMessage().startswith(("ignoring the damaged tuning file", "ignoring " + str(tuner.path)))
               for r in caplog.records)


@pytest.mark.parametrize("entry", [["forward", 8, 8], ["forward", 6, 1], [6, 1], "6x1", None])
def test_an_entry_that_is_not_a_candidate_today_is_never_run(tmp_path, timed, entry):
    """A block outside today's candidates (hand-edited, or from an older generator that fitted other
    registers) could spill or index past a vector: it is timed afresh instead."""
    tuner = tune.Tuner(tmp_path, "m", "g")
    key = tune.layer_key("forward", _args())
    tuner.path.write_text(json.dumps({"format": 1, "machine": "m", "generator": "g", "choices": {key: entry}}))
    assert tuner.choose("forward", _args(), CANDIDATES, timed.run) == CANDIDATES[1]
    assert entry not in [list(b) for b in timed.ran]


def test_minires_tune_0_and_quick_layers_take_the_default_without_writing(tmp_path, timed, monkeypatch):
    tuner = tune.Tuner(tmp_path, "m", "g", worth_seconds=0.015)
    assert tuner.choose("forward", _args(), CANDIDATES, timed.run) == CANDIDATES[0]  # 10 ms < 15 ms
    assert timed.ran == [CANDIDATES[0]] * 2 and not tuner.path.exists()
    monkeypatch.setenv("MINIRES_TUNE", "0")
    timed.ran = []
    other = tune.Tuner(tmp_path, "m", "g")
    assert other.choose("forward", _args(), CANDIDATES, timed.run) == CANDIDATES[0] and timed.ran == []
    with other.forcing():  # minires tune times every layer, however quick, whatever MINIRES_TUNE says
        assert other.choose("forward", _args(), CANDIDATES, timed.run) == CANDIDATES[1]
    assert tuner.path.exists() and not other.forced
    timed.ran = []
    assert other.choose("forward", _args(0), CANDIDATES, timed.run) == CANDIDATES[0] and timed.ran == []


def test_a_default_exactly_at_the_threshold_is_worth_tuning_and_two_candidates_are_both_timed(tmp_path, timed):
    tuner = tune.Tuner(tmp_path, "m", "g", worth_seconds=0.010)
    assert tuner.choose("forward", _args(), CANDIDATES[:2], timed.run) == CANDIDATES[1]
    assert set(timed.ran) == set(CANDIDATES[:2])
    timed.ran = []
    assert tuner.choose("forward", _args(2), CANDIDATES[:1], timed.run) == CANDIDATES[0] and timed.ran == []


def test_seconds_of_is_the_fastest_of_the_repeats(one_second_per_reading):
    one_second_per_reading(tune)  # each reading of the clock one second later: every call takes 1 s
    runs = []
    assert tune.seconds_of(lambda: runs.append(1), 3) == 1.0 and len(runs) == 3


def test_a_read_only_cache_costs_the_tuning_next_time_never_the_run(tmp_path, timed):
    tuner = tune.Tuner(tmp_path / "missing", "m", "g")
    assert tuner.choose("forward", _args(), CANDIDATES, timed.run) == CANDIDATES[1]
    assert tuner.stored() == {}


def test_the_layer_key_names_kind_shapes_scalars_and_threads():
    import numba
    assert tune.layer_key("forward", _args()) == f"forward 2x3 4 5 3 1 t{numba.get_num_threads()}"
    assert tune.tuning_enabled() == (os.environ.get("MINIRES_TUNE", "1") != "0")


def test_minires_tune_times_every_layer_of_a_small_network_and_writes_the_file(tmp_path, monkeypatch, capsys):
    """`minires tune` on a tiny input: every direct-convolution layer of the step is timed (forced, however
    quick) and the choices land in this machine's tuning file."""
    from minires.cli import main
    from minires.kernels.direct import fast
    monkeypatch.setattr(fast, "_tuner", tune.Tuner(tmp_path, isa.machine_key(), "this test"))  # its own file
    assert main(["tune", "--model", "resnet20", "--batch", "2", "--size", "8"]) == 0
    out = capsys.readouterr().out
    if "nothing to tune" in out:
        assert kernels.conv2d_weight_format(np.float32) != "channels_last"
        return
    choices = json.loads(fast.tuner().path.read_text())["choices"]
    kinds = {key.split()[0] for key in choices}
    assert {"forward", "input_grad_scatter"} <= kinds and len(choices) == len(fast.tuner().timings) >= 6
    assert f"written to {fast.tuner().path}" in out and isa.describe() in out


def test_minires_tune_refuses_an_unknown_model_before_any_work(capsys):
    from minires.cli import main
    assert main(["tune", "--model", "resnet21"]) == 2
    assert "unknown model 'resnet21'" in capsys.readouterr().err
