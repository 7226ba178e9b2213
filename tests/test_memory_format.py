"""minires/memory_format.py's rules, one by one: which memory is channels-last (as torch decides it for the
same shapes), the views and copies between NCHW and NHWC and which of them are counted as conversions, the
pixel matrix the channels-last kernels work on, and Layout, which an op uses to keep its input's format."""
import numpy as np
import pytest
import torch

from minires import memory_format as mf
from minires.errors import ArgumentError

SHAPES = [(2, 3, 4, 5), (1, 3, 4, 5), (2, 1, 4, 5), (2, 3, 1, 1), (2, 3, 1, 5), (1, 1, 1, 1)]


def _both_formats(shape):
    nchw = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    nhwc = np.ascontiguousarray(nchw.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    return nchw, nhwc


@pytest.mark.parametrize("shape", SHAPES)
def test_channels_last_is_decided_as_torch_decides_it(shape):
    for array in _both_formats(shape):
        t = torch.from_numpy(np.ascontiguousarray(array)).as_strided(array.shape, [s // 4 for s in array.strides])
        assert mf.is_channels_last(array) == t.is_contiguous(memory_format=torch.channels_last), (shape, array.strides)
        assert mf.is_in_format(array, mf.channels_last) == mf.is_channels_last(array)
        assert mf.is_in_format(array, mf.contiguous_format) == t.is_contiguous()
        assert mf.only_channels_last(array) == (mf.is_channels_last(array) and not array.flags.c_contiguous)
    nchw, nhwc = _both_formats(shape)
    assert not mf.only_channels_last(nchw)
    assert mf.only_channels_last(nhwc) == (shape[1] > 1 and shape[2] * shape[3] > 1)
    assert not mf.is_channels_last(nchw.reshape(shape[0], -1))  # not 4-D


def test_nhwc_is_a_view_of_channels_last_memory_and_a_counted_copy_of_nchw():
    nchw, nhwc = _both_formats((2, 3, 4, 5))
    before = (mf.conversions.count, mf.conversions.bytes)
    view = mf.nhwc(nhwc)
    assert view.shape == (2, 4, 5, 3) and np.shares_memory(view, nhwc) and view.flags.c_contiguous
    assert (mf.conversions.count, mf.conversions.bytes) == before
    copy = mf.nhwc(nchw)
    assert copy.flags.c_contiguous and not np.shares_memory(copy, nchw)
    np.testing.assert_array_equal(copy, nchw.transpose(0, 2, 3, 1))
    assert (mf.conversions.count, mf.conversions.bytes) == (before[0] + 1, before[1] + nchw.nbytes)
    mf.nhwc(nchw[:1])
    assert (mf.conversions.count, mf.conversions.bytes) == (before[0] + 2, before[1] + 1.5 * nchw.nbytes)
    back = mf.nchw_view(copy)
    assert back.shape == nchw.shape and np.shares_memory(back, copy) and mf.only_channels_last(back)
    np.testing.assert_array_equal(back, nchw)


def test_the_pixel_matrix_has_one_row_per_pixel_and_comes_back_to_the_shape():
    nchw, nhwc = _both_formats((2, 3, 4, 5))
    matrix = mf.pixel_matrix(nhwc)
    assert matrix.shape == (40, 3) and np.shares_memory(matrix, nhwc)
    np.testing.assert_array_equal(matrix[7], nchw[0, :, 1, 2])  # pixel 7 of image 0: row 1, column 2
    again = mf.from_pixel_matrix(matrix * 2, nchw.shape)
    assert again.shape == nchw.shape and mf.only_channels_last(again)
    np.testing.assert_array_equal(again, nchw * 2)


def test_to_format_converts_only_what_is_not_already_in_the_format():
    nchw, nhwc = _both_formats((2, 3, 4, 5))
    count = mf.conversions.count
    assert mf.to_format(nhwc, mf.channels_last) is not None and np.shares_memory(mf.to_format(nhwc, mf.channels_last), nhwc)
    assert mf.to_format(nchw, mf.contiguous_format) is nchw and mf.to_format(nhwc, mf.preserve_format) is nhwc
    assert mf.conversions.count == count
    to_last, to_first = mf.to_format(nchw, mf.channels_last), mf.to_format(nhwc, mf.contiguous_format)
    assert mf.only_channels_last(to_last) and to_first.flags.c_contiguous and mf.conversions.count == count + 2
    np.testing.assert_array_equal(to_last, nchw)
    np.testing.assert_array_equal(to_first, nchw)
    with pytest.raises(ArgumentError, match=r"^channels_last needs a 4-D \(N, C, H, W\) tensor, got shape \(3, 4\)$"):
        mf.to_format(np.zeros((3, 4)), mf.channels_last)


def test_an_unknown_format_is_refused_with_the_known_ones():
    for name in mf.FORMATS:
        assert mf.check(name) == name
    with pytest.raises(ArgumentError, match="^memory_format must be one of 'contiguous_format', 'channels_last', "
                                            "'preserve_format', got 'nhwc'$"):
        mf.check("nhwc")


def test_conversions_are_counted_per_thread():
    import threading

    seen = []
    thread = threading.Thread(target=lambda: (mf.nhwc(np.zeros((1, 2, 3, 3))),
                                              seen.append((mf.conversions.count, mf.conversions.bytes))))
    before = mf.conversions.count
    thread.start(), thread.join()
    assert seen == [(1, 144)] and mf.conversions.count == before


@pytest.mark.parametrize("channels_last", [False, True])
def test_a_layout_hands_kernels_their_memory_and_restores_the_input_s_format(channels_last):
    nchw, nhwc = _both_formats((2, 3, 4, 5))
    x = nhwc if channels_last else nchw
    layout = mf.Layout.of(x)
    assert layout.channels_last is channels_last
    memory = layout.memory(x)
    assert memory.shape == ((2, 4, 5, 3) if channels_last else (2, 3, 4, 5)) and np.shares_memory(memory, x)
    assert np.shares_memory(layout.tensor(memory), x)
    np.testing.assert_array_equal(layout.tensor(memory), nchw)
    as_nchw = layout.nchw(x)
    assert as_nchw.flags.c_contiguous and (as_nchw is x) is not channels_last
    restored = layout.restore(as_nchw)
    assert mf.only_channels_last(restored) is channels_last
    np.testing.assert_array_equal(restored, nchw)
