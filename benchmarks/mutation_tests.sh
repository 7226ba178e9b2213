#!/usr/bin/env bash
# The fast test selection that mutation testing runs against each mutant (see the [mutmut] section of setup.cfg):
# numba's JIT is off (the kernels' loops run as plain Python, so a mutated kernel needs no recompile), and the
# first failure ends the run. A non-zero exit kills the mutant.
set -euo pipefail
cd "$(dirname "$0")/.."
export NUMBA_DISABLE_JIT=1 HYPOTHESIS_PROFILE=ci PYTHONPATH="$PWD"  # this checkout, also in a copy
python -m minires gradcheck --all --draws 2 --exitfirst > /dev/null
python -m pytest -x -q -p no:cacheprovider --no-header -o addopts="" \
    tests/test_kernel_registry.py tests/test_nonfinite.py tests/test_errors.py tests/test_autograd.py tests/test_optim.py tests/test_kernels.py \
    tests/test_ops.py -k "not gradcheck_float64" > /dev/null
