"""The direct convolution kernels (kernels/direct/fast.py) against the float64 im2col convolution, on every
geometry a layer can give them and every register block their generator can pick: unequal strides and
padding, non-square kernels and images, padding wider than the kernel, partial pixel and channel blocks.

The kernels index without bounds checks, so a geometry no test draws is a geometry that can corrupt memory.
CI runs this file a second time with NUMBA_BOUNDSCHECK=1 (every index and vector access checked) on one
thread (numba drops an exception raised on another thread), where such an index fails as an error. With
NUMBA_DISABLE_JIT=1 the generated kernels run as plain Python with bounds-checked vectors (kernels/direct/simd.py):
that is how mutation testing runs them.
"""
import json
import os
import pathlib
import subprocess
import sys

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minires as mr
from minires import F, kernels
from minires.errors import StorageError
from conv_against_im2col import (assert_close_to_reference, check_direct_conv, direct_conv, im2col_conv,
                                  random_layer)

direct = pytest.importorskip("minires.kernels.direct.fast") if kernels.numba_available() else None
from minires.kernels.direct import blocks, isa  # noqa: E402
pytestmark = pytest.mark.skipif(kernels.cpu_flavour() != "numba",
                                reason="the direct kernels run with the numba kernel flavour only")


class Runs(list):
    """(kind, size, vectors) of kernel runs, and the set of their vector widths."""
    lanes: set


@pytest.fixture
def kernel_runs(monkeypatch):
    """The (kind, size, vectors) of every generated kernel run, in order (their lanes in ``kernel_runs.lanes``)."""
    runs, original = Runs(), direct._execute
    runs.lanes = set()

    def recorded(block, args, lanes):
        runs.append(tuple(block))
        runs.lanes.add(lanes)
        return original(block, args, lanes)
    monkeypatch.setattr(direct, "_execute", recorded)
    return runs


@pytest.fixture
def untuned(monkeypatch):
    """The default blocks, no timing (MINIRES_TUNE=0) and no tuning file of an earlier test."""
    monkeypatch.setenv("MINIRES_TUNE", "0")
    monkeypatch.setattr(direct, "_tuner", None)


@st.composite
def layers(draw):
    """A layer that fits: sizes, kernels, strides and padding drawn per axis (so unequal), padding up to two
    more than the kernel's half (dx then scatters), channel counts that take 1-4 vectors or are padded."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, kh // 2 + 1)), draw(st.integers(0, kw // 2 + 1))
    h, w = draw(st.integers(max(1, kh - 2 * ph), 9)), draw(st.integers(max(1, kw - 2 * pw), 9))
    return dict(batch=draw(st.integers(1, 3)), channels=draw(st.sampled_from([1, 3, 16, 17, 32])),
                out_channels=draw(st.sampled_from([16, 20, 32, 48, 64])), size=(h, w), kernel=(kh, kw),
                stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))), padding=(ph, pw))


# Each case: a layer, whether its weight is channels-last, and the kinds of kernel it must run. Pixel counts are
# never a multiple of the pixel block and channel counts not of the channel block, so every block also runs its
# remainder loop; the channel counts give every profile (4, 8 and 16 lanes) one to four vectors per block.
def _block_cases():
    per_tap = [dict(batch=3, channels=9, out_channels=oc, size=(5, 5), kernel=(3, 2), stride=(2, 1),
                    padding=(1, 0)) for oc in (16, 32, 64)]
    row3 = [dict(batch=2, channels=12, out_channels=oc, size=(5, 11), kernel=(2, 3), stride=(2, 1),
                 padding=(0, 1)) for oc in (8, 32)]
    scatter = [dict(batch=3, channels=c, out_channels=16, size=(7, 5), kernel=(3, 3), stride=(1, 2),
                    padding=(1, 1)) for c in (16, 32, 64)]
    tiled = dict(batch=5, channels=128, out_channels=64, size=(3, 5), kernel=(1, 3), stride=(1, 2), padding=(0, 1))
    small_cl = dict(batch=3, channels=64, out_channels=24, size=(3, 6), kernel=(2, 3), stride=(2, 1), padding=(1, 0))
    cases = [(layer, False, {"forward", "weight_grad"}) for layer in per_tap]
    cases += [(layer, False, {"forward_row3", "weight_grad_row3"}) for layer in row3]
    cases += [(layer, False, {"input_grad_scatter"}) for layer in scatter]
    cases += [(tiled, False, {"forward_tiled"}), (small_cl, True, {"weight_grad_cl"})]
    # stride 1 with padding wider than the kernel's reach on one axis: dx cannot be a gather, it scatters
    for padding in [(1, 0), (0, 2)]:
        wide = dict(batch=2, channels=16, out_channels=16, size=(3, 4), kernel=(1, 2), stride=(1, 1), padding=padding)
        cases.append((wide, False, {"input_grad_scatter"}))
    return cases


PROFILES = ["avx512", "avx2", "neon"]  # every ISA's generator, whatever this machine is (LLVM lowers any width)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("layer, weight_channels_last, expected", _block_cases() if direct else [])
def test_every_profiles_default_blocks_equal_im2col(profile, layer, weight_channels_last, expected, kernel_runs,
                                                    untuned, monkeypatch):
    monkeypatch.setenv("MINIRES_ISA", profile)
    x, weight, g = random_layer(np.random.default_rng(len(layer)), **layer)
    check_direct_conv(x, weight, g, layer["stride"], layer["padding"], weight_channels_last)
    assert expected <= {kind for kind, _, _ in kernel_runs}, kernel_runs
    assert kernel_runs.lanes == {isa.PROFILES[profile].lanes}
    assert all(blocks.fits(blocks.Block(*run), isa.PROFILES[profile]) for run in kernel_runs)


def _candidate_cases():
    """(profile, kind, block, layer): every block the tuner may pick for these layers on every profile."""
    cases = []
    for profile in PROFILES:
        p = isa.PROFILES[profile]
        for layer, weight_channels_last, kinds in _block_cases()[:-2]:
            for kind in sorted(kinds):
                by_input = kind in ("input_grad_scatter", "weight_grad_cl")
                count = -(-(layer["channels"] if by_input else layer["out_channels"]) // p.lanes)
                limit = layer["channels"] if kind.startswith("weight_grad") and kind != "weight_grad_cl" else None
                divides = layer["out_channels"] if kind == "weight_grad_cl" else None
                for block in blocks.candidates(kind, p, count, limit, divides)[1:]:
                    cases.append((profile, kind, block, layer, weight_channels_last))
    return sorted(set((pr, k, b, tuple(sorted(layer.items())), cl) for pr, k, b, layer, cl in cases))


@pytest.mark.slow
@pytest.mark.parametrize("profile, kind, block, layer, weight_channels_last", _candidate_cases() if direct else [])
def test_every_candidate_block_of_every_profile_equals_im2col(profile, kind, block, layer, weight_channels_last,
                                                              kernel_runs, untuned, monkeypatch):
    """The tuner may choose any candidate: each one, forced, computes the layer exactly as the default does."""
    layer = dict(layer)
    monkeypatch.setenv("MINIRES_ISA", profile)
    candidates, choices = blocks.candidates, blocks.choices
    monkeypatch.setattr(blocks, "choices", lambda kinds, *a: [block] if kind in kinds and block in candidates(kind, *a)
                        else choices(kinds, *a))
    x, weight, g = random_layer(np.random.default_rng(block.size), **layer)
    check_direct_conv(x, weight, g, layer["stride"], layer["padding"], weight_channels_last)
    assert tuple(block) in kernel_runs


def test_the_cases_reach_every_kind_of_kernel():
    """A new kind of generated kernel needs a case above."""
    reached = set().union(*(expected for _, _, expected in _block_cases()))
    assert reached == set(direct._SOURCES)


@given(layer=layers(), weight_channels_last=st.booleans(), seed=st.integers(0, 2**16))
def test_direct_kernels_equal_the_im2col_convolution_on_any_geometry(layer, weight_channels_last, seed):
    """Forward, dx and dW under a random upstream gradient."""
    x, weight, g = random_layer(np.random.default_rng(seed), **layer)
    check_direct_conv(x, weight, g, layer["stride"], layer["padding"], weight_channels_last)


@pytest.mark.parametrize("geometry", [((3, 3), (1, 1), (1, 1)), ((3, 3), (2, 2), (1, 1)), ((1, 1), (2, 2), (0, 0)),
                                      ((1, 1), (1, 1), (0, 0)), ((7, 7), (2, 2), (3, 3)), ((3, 3), (1, 1), (0, 0))])
@pytest.mark.parametrize("size", [(5, 7), (2, 2), (1, 3)])
def test_small_layers_with_channels_last_weights_take_weight_grad_cl_and_equal_im2col(geometry, size,
                                                                                      kernel_runs):
    """32 or more input channels, small activations and a channels-last weight: dW runs as one task per tap
    and channel block over the whole batch, skipping the taps that fall on padding (odd sizes, strides,
    images smaller than the kernel)."""
    kernel, stride, padding = geometry
    if size[0] + 2 * padding[0] < kernel[0] or size[1] + 2 * padding[1] < kernel[1]:
        pytest.skip("the kernel does not fit")
    x, weight, g = random_layer(np.random.default_rng(size[0]), 3, 64, 24, size, kernel, stride, padding)
    check_direct_conv(x, weight, g, stride, padding, weight_channels_last=True)
    assert "weight_grad_cl" in [kind for kind, _, _ in kernel_runs]


@pytest.mark.parametrize("side", [8, 16])
def test_channels_padded_to_a_vector_are_cut_back_whatever_the_image_side(side, kernel_runs):
    """8 channels run zero-padded to one vector of 16 and are cut back: on an 8x8 image (as many rows and
    columns as channels) and on a 16x16 one (as many as the padded vector) as on any other."""
    x, weight, g = random_layer(np.random.default_rng(side), 2, 8, 8, (side, side), (3, 3), (1, 1), (1, 1))
    check_direct_conv(x, weight, g, 1, 1)
    assert {"forward_row3", "weight_grad_row3"} <= {kind for kind, _, _ in kernel_runs}


@pytest.mark.parametrize("batch", [1, 3])
def test_output_channels_in_two_chunks_share_the_threads(batch, kernel_runs):
    """128 output channels are two chunks of four vectors: the tasks (an image or a group of small images, for
    one chunk) are shared among the threads, per image and in groups (forward_tiled)."""
    rng = np.random.default_rng(batch)
    for size, channels in [((6, 5), 16), ((4, 4), 128)]:
        x, weight, g = random_layer(rng, batch, channels, 128, size, (3, 3), (1, 1), (1, 1))
        check_direct_conv(x, weight, g, 1, 1)
    assert {"forward", "forward_tiled"} <= {kind for kind, _, _ in kernel_runs}


@pytest.mark.parametrize("threads", [1, 2])
def test_weight_grad_sums_every_image_into_the_layout_asked_for(threads):
    """dW without padding (a one-element halo) from three images shared among the threads, in (OC, C, KH, KW)
    memory unless channels-last is asked for (then it may run as weight_grad_cl, summing in another order)."""
    x, weight, g = random_layer(np.random.default_rng(threads), 3, 16, 16, (5, 6), (2, 2), (2, 1), (0, 0))
    reference = im2col_conv(x, weight, g, (2, 1), (0, 0))[2]
    nhwc = x.transpose(0, 2, 3, 1).copy(), g.transpose(0, 2, 3, 1).copy()
    previous = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        plain = direct.weight_grad(*nhwc, (2, 2), (2, 1), (0, 0))
        channels_last = direct.weight_grad(*nhwc, (2, 2), (2, 1), (0, 0), channels_last=True)
    finally:
        numba.set_num_threads(previous)
    assert plain.flags.c_contiguous and channels_last.transpose(0, 2, 3, 1).flags.c_contiguous
    assert_close_to_reference(plain, reference)
    assert_close_to_reference(channels_last, reference)


@pytest.mark.parametrize("column", [0, 1, 5, 6])
def test_an_infinite_input_at_a_row_end_reaches_only_the_weight_gradients_it_meets(column):
    """The row-of-taps dW block takes only the real taps near a row's ends: an infinite input in the first
    or last two columns gives an infinite gradient where it meets the output gradient, never a NaN from a
    zero stand-in (0 * inf). Compared with the float64 im2col convolution, value for value."""
    rng = np.random.default_rng(column)
    x = rng.standard_normal((2, 16, 5, 7)).astype(np.float32)
    x[1, 3, 2, column] = np.inf
    weight = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    g = rng.standard_normal((2, 16, 5, 7)).astype(np.float32)
    ours, reference = direct_conv(x, weight, g, 1, 1)[2], im2col_conv(x, weight, g, 1, 1)[2]
    assert not np.isnan(reference).any() and np.isinf(reference).any()
    np.testing.assert_array_equal(np.isinf(ours), np.isinf(reference))
    np.testing.assert_array_equal(np.sign(ours), np.sign(reference))
    finite = np.isfinite(reference)
    assert_close_to_reference(ours[finite], reference[finite])


def test_direct_convolution_adds_the_bias_and_its_gradient():
    rng = np.random.default_rng(0)
    x = mr.tensor(rng.standard_normal((2, 16, 5, 6)).astype(np.float32)).contiguous(memory_format=mr.channels_last)
    layer = mr.nn.Conv2d(16, 32, 3, padding=1)
    y = layer(x)
    assert y.grad_fn.saved_tensors[0].backward is kernels.direct.conv2d_backward
    reference = F.conv2d(x.contiguous(), layer.weight.detach(), layer.bias.detach(), padding=1)
    np.testing.assert_allclose(y.numpy(), reference.numpy(), rtol=1e-5, atol=1e-5)
    upstream = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(upstream)
    np.testing.assert_allclose(layer.bias.grad.numpy(), upstream.sum(axis=(0, 2, 3)), rtol=1e-5, atol=1e-5)


def test_the_weight_reorder_and_the_thread_sum_are_their_loops():
    """The two helper passes, compiled or not, against NumPy's transposes and sum (any memory order)."""
    w = np.random.default_rng(0).standard_normal((5, 18, 3, 2)).astype(np.float32)
    for flip, swap in [(False, False), (True, True), (False, True)]:
        taps = w[:, :, ::-1, ::-1] if flip else w
        expected = taps.transpose(2, 3, 0, 1) if swap else taps.transpose(2, 3, 1, 0)
        out = direct.kernel_weight(w.transpose(0, 2, 3, 1).copy().transpose(0, 3, 1, 2), flip, swap, 32)
        np.testing.assert_array_equal(out[..., :expected.shape[-1]], expected)
        assert not out[..., expected.shape[-1]:].any()
    partial = np.random.default_rng(1).standard_normal((3, 3, 2, 18, 5)).astype(np.float32)
    grad = np.empty((5, 3, 2, 18), np.float32).transpose(0, 3, 1, 2)  # channels-last memory
    direct.summed_weight_grad(partial, grad)
    np.testing.assert_allclose(grad, partial.sum(axis=0).transpose(3, 2, 0, 1), rtol=1e-6)


def test_generated_kernels_are_cached_by_source_and_report_their_first_call(tmp_path, monkeypatch,
                                                                           one_second_per_reading):
    monkeypatch.setenv("MINIRES_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(direct, "_kernels", {})
    monkeypatch.setattr(direct, "_compile_seconds", {})
    x, weight, g = random_layer(np.random.default_rng(0), 1, 16, 16, (3, 4), (1, 2), (1, 1), (0, 0))
    one_second_per_reading(direct)
    check_direct_conv(x, weight, g, 1, 0)
    files = sorted(p.name for p in (tmp_path / "kernels").glob("direct_*.py"))
    assert files and all(p.startswith(("direct_forward_", "direct_weight_grad_")) for p in files), files
    report = direct.compile_report()
    assert set(report) == {f"{kind} {block}x{vectors} ({lanes} lanes)"
                           for kind, block, vectors, lanes in direct._kernels}
    assert all(seconds == 1.0 for seconds in report.values()), report  # two readings around each first call
    source = (tmp_path / "kernels" / files[0]).read_text()
    assert source.startswith("# Generated by minires.kernels.direct.fast") and direct._DECORATOR in source
    monkeypatch.setattr(direct, "_kernels", {})  # a new process: the file is read again, not rewritten
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "kernels").glob("direct_*.py")}
    check_direct_conv(x, weight, g, 1, 0)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    # a changed generator (a newer minires) writes its kernels to new files and runs them, never the old ones
    monkeypatch.setattr(direct, "_kernels", {})
    header = direct._header
    monkeypatch.setattr(direct, "_header", lambda lanes: header(lanes) + ["# a newer generator"])
    check_direct_conv(x, weight, g, 1, 0)
    assert len(list((tmp_path / "kernels").glob("direct_*.py"))) == 2 * len(stamps)
    for kernel in direct._kernels.values():
        source_file = getattr(kernel, "py_func", kernel).__code__.co_filename
        assert "# a newer generator" in pathlib.Path(source_file).read_text()


_COMPILE_AND_RUN = """
import json, numpy as np
from minires.kernels.direct import fast as direct_conv
x = np.arange(2 * 3 * 5 * 16, dtype=np.float32).reshape(2, 3, 5, 16) % 7
w = np.arange(16 * 16, dtype=np.float32).reshape(16, 16, 1, 1) % 5
y = direct_conv.forward(x, w, (1, 1), (0, 0))
hits = {kind: len(kernel.stats.cache_hits) for (kind, _, _, _), kernel in direct_conv._kernels.items()}
print(json.dumps({"y": y.tolist(), "hits": hits}))
"""


def test_a_kernel_compiled_in_one_process_loads_from_the_disk_cache_in_the_next(tmp_path):
    """The point of the cache: the first process compiles the machine code, the next loads it (numba finds a
    generated kernel's globals through its module's name). Both in fresh processes, compiled, cache on."""
    env = {key: value for key, value in os.environ.items() if key not in ("NUMBA_DISABLE_JIT", "NUMBA_BOUNDSCHECK")}
    env["MINIRES_CACHE_DIR"] = str(tmp_path)
    first, second = (json.loads(subprocess.run([sys.executable, "-c", _COMPILE_AND_RUN], env=env, check=True,
                                               capture_output=True, text=True).stdout) for _ in range(2))
    assert first["hits"] == {"forward": 0} and second["hits"] == {"forward": 1}
    assert first["y"] == second["y"]


def test_the_kernel_cache_falls_back_to_the_temp_folder_and_says_when_nothing_is_writable(tmp_path, monkeypatch):
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("MINIRES_CACHE_DIR", str(blocked))  # kernels/ cannot be made under a file
    monkeypatch.setattr(direct.tempfile, "gettempdir", lambda: str(tmp_path / "temp"))
    assert direct.cache_directory() == tmp_path / "temp" / f"minires-{direct.os.getuid()}" / "kernels"
    monkeypatch.setattr(direct.tempfile, "gettempdir", lambda: str(blocked))
    with pytest.raises(StorageError, match=r"^minires: no writable directory .*\(tried .*a-file; set MINIRES_CACHE_DIR\)$"):
        direct.cache_directory()
    monkeypatch.delenv("MINIRES_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert direct.cache_directory() == tmp_path / "xdg" / "minires" / "kernels"
    monkeypatch.delenv("XDG_CACHE_HOME")  # then the home folder's .cache, as XDG's default
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert direct.cache_directory() == tmp_path / "home" / ".cache" / "minires" / "kernels"


@pytest.mark.parametrize("geometry", [((3, 3), (1, 1), (1, 1)), ((3, 3), (2, 2), (1, 1)), ((1, 1), (1, 1), (0, 0)),
                                      ((1, 1), (2, 2), (0, 0))])
@pytest.mark.parametrize("size", [(2, 2), (3, 5), (7, 5)])
def test_small_images_with_many_channels_take_forward_tiled_and_equal_im2col(geometry, size, kernel_runs):
    """128 input channels, at most 64 output pixels: the forward (and dx, a forward at stride 1) runs over
    groups of images (one image of 35 pixels, up to 16 of 4) with the channel sum split into tiles; 3 images
    make the last group a partial one."""
    kernel, stride, padding = geometry
    x, weight, g = random_layer(np.random.default_rng(size[1]), 3, 128, 64, size, kernel, stride, padding)
    check_direct_conv(x, weight, g, stride, padding, weight_channels_last=True)
    assert kernel_runs[0][0] == "forward_tiled"


@given(layers(), st.booleans())
def test_the_fast_kernels_equal_the_plain_direct_convolution(layer, weight_channels_last):
    """kernels/direct/reference.py (loops over output pixel, channel and tap, float64) equals the im2col
    convolution, and fast.py's three kernels equal it, on every geometry the generator's choices can meet."""
    from minires.kernels.direct import reference
    x, weight, g = random_layer(np.random.default_rng(5), **layer)
    nhwc = lambda a: np.ascontiguousarray(a.transpose(0, 2, 3, 1))  # noqa: E731
    stride, padding, kernel = layer["stride"], layer["padding"], layer["kernel"]
    plain = [reference.forward(nhwc(x).astype(np.float64), weight.astype(np.float64), stride, padding),
             reference.input_grad(nhwc(g).astype(np.float64), weight.astype(np.float64), stride, padding, x.shape[2:]),
             reference.weight_grad(nhwc(x).astype(np.float64), nhwc(g).astype(np.float64), kernel, stride, padding)]
    y, dx, dw = im2col_conv(x, weight, g, stride, padding)
    for ours, theirs in zip(plain, [nhwc(y), nhwc(dx), dw]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-10 * np.abs(theirs).max())
    w = np.ascontiguousarray(weight.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2) if weight_channels_last else weight
    fast = [direct.forward(nhwc(x), w, stride, padding),
            direct.input_grad(nhwc(g), w, stride, padding, x.shape[2:]),
            direct.weight_grad(nhwc(x), nhwc(g), kernel, stride, padding, weight_channels_last)]
    for ours, theirs in zip(fast, plain):
        assert_close_to_reference(ours, theirs)
    laid_out = (lambda a: a.transpose(0, 2, 3, 1).flags.c_contiguous) if weight_channels_last else \
        (lambda a: a.flags.c_contiguous)  # like the weight
    assert laid_out(fast[2])
    assert laid_out(reference.weight_grad(nhwc(x), nhwc(g), kernel, stride, padding, weight_channels_last))


def _same_non_finite_pattern(ours, reference):
    for test in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(test(ours), test(reference))
    finite = np.isfinite(reference)
    assert_close_to_reference(ours[finite], reference[finite])


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # the reference's inf - inf
@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_a_non_finite_weight_gives_dx_as_the_reference_at_the_borders(value, untuned):
    """At stride 1 dx is a gather over gy padded with zeros; a zero times an infinite weight is NaN, where the
    reference (col2im) and torch sum only the products of real output pixels: such a weight makes dx scatter."""
    rng = np.random.default_rng(5)
    x, weight, g = random_layer(rng, 2, 16, 16, (5, 6), (3, 3), (1, 1), (1, 1))
    weight[3, 5, 0, 0] = value
    ours, reference = direct_conv(x, weight, g, 1, 1)[1], im2col_conv(x, weight, g, 1, 1)[1]
    if value != value:
        assert np.isnan(reference).any() and not np.isnan(reference).all()
    else:
        assert np.isinf(reference).any() and not np.isnan(reference).any()
    _same_non_finite_pattern(ours, reference)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_a_non_finite_output_gradient_gives_dw_as_the_reference_through_the_padding(untuned):
    """weight_grad_cl reads only the taps inside the image, but the reference multiplies the zero padding too:
    an infinite gy at a border pixel gives NaN there (0 * inf), as in torch. Such a gy takes the per-image dW."""
    rng = np.random.default_rng(6)
    x, weight, g = random_layer(rng, 3, 64, 24, (3, 6), (2, 3), (2, 1), (1, 0))
    g[0, 5, 0, 0] = np.inf
    ours, reference = direct_conv(x, weight, g, (2, 1), (1, 0), weight_channels_last=True)[2], \
        im2col_conv(x, weight, g, (2, 1), (1, 0))[2]
    assert np.isnan(reference).any()
    _same_non_finite_pattern(ours, reference)
