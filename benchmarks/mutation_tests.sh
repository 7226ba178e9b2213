#!/usr/bin/env bash
# The test selection mutation testing runs against each mutant (see the [mutmut] section of setup.cfg and
# docs/verification.md): `bash benchmarks/mutation_tests.sh [SELECTION]`. A non-zero exit kills the mutant;
# the first failure ends the run. numba's JIT is off wherever the mutated code runs as Python (a mutated kernel
# then needs no compile; the generated direct convolutions run on kernels/direct/simd.py's Python vectors); simd.py's
# intrinsics exist only compiled, so its selection keeps the JIT.
set -euo pipefail
cd "$(dirname "$0")/.."
export HYPOTHESIS_PROFILE=ci PYTHONPATH="$PWD" MINIRES_CACHE_DIR="${TMPDIR:-/tmp}/minires-mutation-cache-$$"
trap 'rm -rf "$MINIRES_CACHE_DIR"' EXIT
# In a copy of the repository minires.kernels must be the copy's kernels/ (an editable install maps it to the
# original checkout): the copy needs the link minires/kernels -> ../kernels. Checked without importing minires
# (a mutant may break that import, which is its own verdict); exit 3 is no verdict: every mutant then
# "survives", which a report shows at once.
if [ ! -e minires/kernels ]; then
  python - <<'PY' || exit 3
import importlib.metadata, json, pathlib, sys
url = json.loads(importlib.metadata.distribution("minires-nn").read_text("direct_url.json") or "{}").get("url")
if url and url != pathlib.Path.cwd().resolve().as_uri():
    sys.exit(f"minires.kernels would be {url}'s kernels/, not this copy's: ln -s ../kernels minires/kernels")
PY
fi
# mutmut 2.x counts only exit code 1 as a kill: any other failure (pytest's 2 for a collection error, as when a
# mutated module fails to import) would count as a survivor, so every failure below exits 1.
pytest() { python -m pytest -x -q -p no:cacheprovider --no-header -o addopts="" "$@" > /dev/null || exit 1; }
case "${1:-default}" in
  default)  # kernels/, minires/functional/, minires/optim/, minires/tensor.py
    export NUMBA_DISABLE_JIT=1
    python -m minires gradcheck --all --draws 2 --exitfirst > /dev/null || exit 1
    pytest tests/test_kernel_registry.py tests/test_nonfinite.py tests/test_errors.py tests/test_autograd.py \
      tests/test_optim.py tests/test_kernels.py tests/test_ops.py -k "not gradcheck_float64" ;;
  direct_conv)  # kernels/direct/fast.py: the generated kernels as Python
    # three threads, as on a bigger machine: the tasks split unevenly and some threads get none
    NUMBA_DISABLE_JIT=1 NUMBA_NUM_THREADS=3 pytest tests/test_direct_conv.py
    # and forty, more threads than a small layer has tasks
    NUMBA_DISABLE_JIT=1 NUMBA_NUM_THREADS=40 pytest tests/test_direct_conv.py -k two_chunks
    pytest tests/test_simd.py -k bounds_checked  # the generator's bounds-checked build, compiled
    pytest tests/test_kernel_registry.py -k compiled ;;  # the helper passes' JIT settings
  simd)  # kernels/direct/simd.py: compiled (its intrinsics have no Python form), its Python and checked twins
    pytest tests/test_simd.py
    NUMBA_DISABLE_JIT=1 pytest tests/test_simd.py ;;  # the Python build is the one chosen then
  batchnorm_channels_last)  # kernels/batchnorm_channels_last.py, kernels/batchnorm_relu_channels_last.py
    NUMBA_DISABLE_JIT=1 pytest tests/test_batchnorm_channels_last.py tests/test_nonfinite.py \
      tests/test_channels_last.py -k "(batch_norm or batchnorm or fused) and not network"
    pytest tests/test_kernel_registry.py -k compiled ;;  # the passes' JIT settings, seen with the JIT on
  socket)  # kernels/__init__.py, kernels/registry.py: the rules that choose a kernel, and the table
    # The kernels themselves are not mutated here, so they stay compiled: numba's cache and one shared
    # direct-kernel cache serve every mutant (about 30 s each instead of 5 min with the JIT off).
    trap - EXIT
    export MINIRES_CACHE_DIR="${TMPDIR:-/tmp}/minires-mutation-cache-socket"
    NUMBA_DISABLE_JIT=1 pytest tests/test_kernel_socket.py tests/test_kernel_registry.py tests/test_nonfinite.py
    pytest tests/test_channels_last.py tests/test_optim.py tests/test_kernels.py tests/test_cuda_kernels.py \
      -k "not network and not sanitizer and not nvrtc"
    pytest tests/test_ops.py -k pool ;;  # the pooling rules (8 survivors of the first run died here)
  tune)  # kernels/direct/isa.py, blocks.py, tune.py: the machine's profile, the register blocks, the autotuner
    trap - EXIT  # the generated kernels are not mutated: one shared cache serves every mutant
    export MINIRES_CACHE_DIR="${TMPDIR:-/tmp}/minires-mutation-cache-tune"
    pytest tests/test_tune.py
    pytest tests/test_direct_conv.py -k "default_blocks or cases_reach or non_finite" ;;
  autograd)  # minires/autograd.py
    NUMBA_DISABLE_JIT=1 pytest tests/test_autograd.py tests/test_hooks.py tests/test_errors.py tests/test_viz.py \
      tests/test_kernels.py tests/test_distributed_one_process.py ;;
  sgd)  # kernels/sgd.py
    NUMBA_DISABLE_JIT=1 pytest tests/test_optim.py tests/test_nonfinite.py -k "sgd or SGD"
    pytest tests/test_optim.py -k "flavours_agree" && pytest tests/test_kernel_registry.py -k compiled ;;  # compiled
  memory_format)  # minires/memory_format.py
    NUMBA_DISABLE_JIT=1 pytest tests/test_memory_format.py tests/test_channels_last.py -k "not network and not every_op" ;;
  lr_scheduler)  # minires/optim/lr_scheduler.py
    NUMBA_DISABLE_JIT=1 pytest tests/test_lr_scheduler.py tests/test_optim.py
    pytest tests/test_signatures.py -k lr_scheduler ;;  # the constructors' defaults
  distributed|distributed_fast|distributed_one_process)  # minires/distributed/, the sync batch-norm files
    # one process first (cheap), then the runs on two ranks (mpiexec), quickest first; kernels stay compiled
    mpi="two_ranks or allreduce_of_early or no_sync_acc or rank_that_fails or diverging"
    pytest tests/test_distributed_one_process.py tests/test_distributed.py -k "not ($mpi or mpiexec_minires_train or bench)"
    [ "$1" != distributed_one_process ] || exit 0  # a first sieve: what it kills is killed
    pytest $(printf 'tests/test_distributed.py::test_%s ' no_sync_accumulates_locally_and_the_next_backward_averages_the_sum \
      a_diverging_distributed_run_stops_every_rank_with_one_message a_rank_that_fails_ends_the_job_at_once_with_one_message \
      the_allreduce_of_early_buckets_starts_before_backward_ends)
    # distributed_fast leaves out the two ResNet-20 runs on two ranks (25 s): for a first pass over every mutant,
    # its survivors then re-run with them (mutation_report.py distributed --recheck)
    [ "$1" = distributed_fast ] || pytest tests/test_distributed.py -k two_ranks ;;
  exercises)  # minires/exercises/checker.py, catalog.py: the checker and its planted wrong answers
    NUMBA_DISABLE_JIT=1 pytest tests/test_exercises.py ;;
  landscape)  # minires/analysis/hessian.py, landscape.py, joins.py: the products, the surfaces, the split
    trap - EXIT  # no kernel is mutated: one shared cache serves every mutant
    export MINIRES_CACHE_DIR="${TMPDIR:-/tmp}/minires-mutation-cache-landscape"
    pytest tests/test_hessian.py tests/test_landscape.py -k "not command and not trained_runs" ;;
  torch_surface)  # minires/inplace.py, minires/weights_only_unpickler.py, minires/serialization.py
    trap - EXIT  # no kernel is mutated: one shared cache serves every mutant
    export MINIRES_CACHE_DIR="${TMPDIR:-/tmp}/minires-mutation-cache-torch-surface"
    pytest tests/test_inplace.py tests/test_torch_files.py tests/test_serialization.py
    pytest tests/test_torch_surface.py tests/test_autograd.py tests/test_torch_programs.py ;;
  *) echo "unknown selection $1" >&2; exit 2 ;;
esac
