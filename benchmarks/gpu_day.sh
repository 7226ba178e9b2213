#!/bin/sh
# Everything that needs a GPU, in one command, from the repository root of an installed checkout
# (pip install --no-deps --no-build-isolation -e .):
#   1. the GPU tests (python -m pytest -m gpu): every CUDA kernel on the device against its reference,
#      ResNet-20/56 steps against the CPU's and against torch on the same GPU (TF32 off);
#   2. compute-sanitizer memcheck and racecheck over the kernel test, where compute-sanitizer is installed;
#   3. benchmarks/bench_gpu.py, its tables appended to benchmarks/RESULTS.md.
# Exit status: non-zero when any test or sanitizer run failed (the benchmark still runs).
status=0
python -m pytest -m gpu -q -p no:cacheprovider || status=1
if command -v compute-sanitizer >/dev/null 2>&1; then
    for tool in memcheck racecheck; do
        compute-sanitizer --tool "$tool" --error-exitcode 1 \
            python -m pytest -m gpu -q -p no:cacheprovider -k every_cuda_kernel || status=1
    done
else
    echo "compute-sanitizer not found: the sanitizer runs are skipped (the CPU harness's ASan/TSan runs remain)"
fi
python benchmarks/bench_gpu.py --results benchmarks/RESULTS.md || status=1
exit $status
