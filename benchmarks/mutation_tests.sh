#!/usr/bin/env bash
# The test selection mutation testing runs against each mutant (see the [mutmut] section of setup.cfg and
# docs/verification.md): `bash benchmarks/mutation_tests.sh [SELECTION]`. A non-zero exit kills the mutant;
# the first failure ends the run. numba's JIT is off wherever the mutated code runs as Python (a mutated kernel
# then needs no compile; the generated direct convolutions run on kernels/simd.py's Python vectors); simd.py's
# intrinsics exist only compiled, so its selection keeps the JIT.
set -euo pipefail
cd "$(dirname "$0")/.."
export HYPOTHESIS_PROFILE=ci PYTHONPATH="$PWD" MINIRES_CACHE_DIR="${TMPDIR:-/tmp}/minires-mutation-cache-$$"
trap 'rm -rf "$MINIRES_CACHE_DIR"' EXIT
# In a copy of the repository minires.kernels must be the copy's kernels/ (an editable install maps it to the
# original checkout): the copy needs the link minires/kernels -> ../kernels.
python - <<'PY'
import pathlib, minires.kernels
here = pathlib.Path.cwd().resolve()
assert pathlib.Path(minires.kernels.__file__).resolve().is_relative_to(here), \
    f"minires.kernels is imported from {minires.kernels.__file__}, not from {here}: ln -s ../kernels minires/kernels"
PY
pytest() { python -m pytest -x -q -p no:cacheprovider --no-header -o addopts="" "$@" > /dev/null; }
case "${1:-default}" in
  default)  # kernels/, minires/functional/, minires/optim/, minires/tensor.py
    export NUMBA_DISABLE_JIT=1
    python -m minires gradcheck --all --draws 2 --exitfirst > /dev/null
    pytest tests/test_kernel_registry.py tests/test_nonfinite.py tests/test_errors.py tests/test_autograd.py \
      tests/test_optim.py tests/test_kernels.py tests/test_ops.py -k "not gradcheck_float64" ;;
  direct_conv)  # kernels/direct_conv.py: the generated kernels as Python
    NUMBA_DISABLE_JIT=1 pytest tests/test_direct_conv.py ;;
  simd)  # kernels/simd.py: compiled (its intrinsics have no Python form), its Python and checked twins
    pytest tests/test_simd.py ;;
  batchnorm_channels_last)  # kernels/batchnorm_channels_last.py, kernels/batchnorm_relu_channels_last.py
    NUMBA_DISABLE_JIT=1 pytest tests/test_batchnorm_channels_last.py tests/test_nonfinite.py \
      tests/test_channels_last.py -k "(batch_norm or batchnorm or fused) and not network" ;;
  sgd)  # kernels/sgd.py
    NUMBA_DISABLE_JIT=1 pytest tests/test_optim.py tests/test_nonfinite.py -k "sgd or SGD" ;;
  memory_format)  # minires/memory_format.py
    NUMBA_DISABLE_JIT=1 pytest tests/test_memory_format.py tests/test_channels_last.py -k "not network and not every_op" ;;
  lr_scheduler)  # minires/optim/lr_scheduler.py
    NUMBA_DISABLE_JIT=1 pytest tests/test_lr_scheduler.py tests/test_optim.py ;;
  distributed)  # minires/distributed/, minires/functional/sync_batchnorm.py, minires/nn/sync_batchnorm.py
    # one process first (cheap), then the runs on two ranks (mpiexec); the kernels stay compiled (cached)
    mpi="two_ranks or allreduce_of_early or no_sync_acc or rank_that_fails or diverging"
    pytest tests/test_distributed.py -k "not ($mpi or mpiexec_minires_train or bench)"
    pytest tests/test_distributed.py -k "$mpi" ;;
  *) echo "unknown selection $1" >&2; exit 2 ;;
esac
