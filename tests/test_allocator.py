"""minires.allocator: freed memory kept for reuse while a step runs (glibc's malloc settings)."""
import resource
import sys

import numpy as np
import pytest

from minires import allocator

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc settings: Linux only")


@linux_only
def test_freed_memory_is_kept_inside_the_block_and_nested_blocks_keep_it_until_the_outer_one_ends():
    assert not allocator.active()
    with allocator.keep_freed_memory():
        assert allocator.active()
        with allocator.keep_freed_memory():
            assert allocator.active()
        assert allocator.active()  # the inner block's end does not give the memory back
    assert not allocator.active()


@linux_only
def test_a_steps_worth_of_arrays_freed_inside_the_block_is_reused_without_new_page_faults():
    """The reason for the block: a step's activations (here 8 arrays of 16 MiB), freed and asked for again,
    come back mapped. ru_minflt counts the pages the kernel had to map: about 4000 for the first pass (fewer
    with huge pages), none for a pass that reuses the memory. After the block the memory is given back, so
    the same pass maps its pages again."""
    def faults_of_a_pass():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        arrays = [np.ones(4 * 2**20, dtype=np.float32) for _ in range(8)]  # written, then freed together
        del arrays
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    with allocator.keep_freed_memory():
        first = faults_of_a_pass()
        again = [faults_of_a_pass() for _ in range(3)]
    after = faults_of_a_pass()
    assert max(again) <= first / 20, (first, again)
    assert after > first / 2, (first, after)
