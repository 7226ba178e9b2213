// How many values of each of many arrays are NaN or infinite: the CUDA twin of kernels/finite.py, float32 and
// float64 (entry points _f32, _f64). A table of 64-bit words has one row per array: (address, size). Block r
// (blocks stride over the rows) counts row r with its threads and a shared-memory tree sum (blockDim a power
// of two), so the counts need no atomics and the whole check is one launch.

#define MAX_THREADS 1024

template <typename T>
__device__ void count_non_finite(const long long* table, long long rows, long long* counts) {
    __shared__ long long shared[MAX_THREADS];
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* values = reinterpret_cast<const T*>(table[2 * r]);
        long long bad = 0;
        for (long long i = threadIdx.x; i < table[2 * r + 1]; i += blockDim.x) bad += !isfinite(values[i]);
        shared[threadIdx.x] = bad;
        __syncthreads();
        for (unsigned stride = blockDim.x / 2; stride > 0; stride /= 2) {
            if (threadIdx.x < stride) shared[threadIdx.x] += shared[threadIdx.x + stride];
            __syncthreads();
        }
        if (threadIdx.x == 0) counts[r] = shared[0];
        __syncthreads();  // shared[0] is read before the next row writes the array
    }
}

#define FINITE_ENTRY_POINT(T, SUFFIX)                                                                        \
extern "C" __global__ void count_non_finite_##SUFFIX(const long long* table, long long rows,                 \
                                                    long long* counts) {                                     \
    count_non_finite<T>(table, rows, counts);                                                                \
}

FINITE_ENTRY_POINT(float, f32)
FINITE_ENTRY_POINT(double, f64)
