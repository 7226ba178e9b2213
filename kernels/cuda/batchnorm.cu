// Batch normalisation over the channel axis of (N, C, M) arrays: the CUDA twins of kernels/batchnorm.py's
// NumPy references, float32 and float64 (entry points _f32, _f64), computing in the same order as the
// references: products in the array's dtype, every sum over a channel in double.
//
// A channel's sums are one block's work: its threads stride over the channel's N*M values, then a tree
// reduction in shared memory (blockDim a power of two, at most MAX_THREADS) with __syncthreads between the
// levels. Blocks stride over the channels, so any grid covers any C. The elementwise kernels walk their
// output with a grid-stride loop over 64-bit indices.

#define MAX_THREADS 1024

// Sum of the block's `value`s, returned to every thread (the shared array is free again afterwards).
__device__ double block_sum(double value, double* shared) {
    shared[threadIdx.x] = value;
    __syncthreads();
    for (unsigned stride = blockDim.x / 2; stride > 0; stride /= 2) {
        if (threadIdx.x < stride) shared[threadIdx.x] += shared[threadIdx.x + stride];
        __syncthreads();
    }
    double total = shared[0];
    __syncthreads();  // everyone has read the total before the array is written again
    return total;
}

// mean, var (biased, of the centred values, as the reference) and inv_std = 1 / sqrt(var + eps), in double.
template <typename T>
__device__ void channel_moments(const T* x, double* mean, double* var, double* inv_std, long long n,
                                long long c, long long m, double eps) {
    __shared__ double shared[MAX_THREADS];
    long long count = n * m;
    for (long long ch = blockIdx.x; ch < c; ch += gridDim.x) {
        double sum = 0;
        for (long long k = threadIdx.x; k < count; k += blockDim.x) sum += x[((k / m) * c + ch) * m + k % m];
        double mu = block_sum(sum, shared) / count;
        T centre = T(mu);
        double squares = 0;
        for (long long k = threadIdx.x; k < count; k += blockDim.x) {
            T d = x[((k / m) * c + ch) * m + k % m] - centre;
            squares += d * d;
        }
        double variance = block_sum(squares, shared) / count;
        if (threadIdx.x == 0) {
            mean[ch] = mu;
            var[ch] = variance;
            inv_std[ch] = 1.0 / sqrt(variance + eps);
        }
    }
}

// y = (x - mean_c) scale_c + shift_c: the training forward (scale = gamma inv_std, shift = beta) and, with
// mean 0, the evaluation forward and backward.
template <typename T>
__device__ void normalise(const T* x, const T* mean, const T* scale, const T* shift, T* y, long long n,
                          long long c, long long m) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n * c * m;
         i += (long long)blockDim.x * gridDim.x) {
        long long ch = (i / m) % c;
        y[i] = (x[i] - mean[ch]) * scale[ch] + shift[ch];
    }
}

// dbeta_c = sum(g), dgamma_c = sum(g x_hat) with x_hat = (x - mean_c) inv_std_c, in double.
template <typename T>
__device__ void gradient_sums(const T* g, const T* x, const T* mean, const T* inv_std, double* dgamma,
                              double* dbeta, long long n, long long c, long long m) {
    __shared__ double shared[MAX_THREADS];
    long long count = n * m;
    for (long long ch = blockIdx.x; ch < c; ch += gridDim.x) {
        double sum_g = 0, sum_gx = 0;
        for (long long k = threadIdx.x; k < count; k += blockDim.x) {
            long long at = ((k / m) * c + ch) * m + k % m;
            T x_hat = (x[at] - mean[ch]) * inv_std[ch];
            sum_g += g[at];
            sum_gx += g[at] * x_hat;
        }
        double total_g = block_sum(sum_g, shared), total_gx = block_sum(sum_gx, shared);
        if (threadIdx.x == 0) {
            dbeta[ch] = total_g;
            dgamma[ch] = total_gx;
        }
    }
}

// The three-term training backward: dx = s_c (K g - dbeta_c - x_hat dgamma_c), s_c = gamma_c inv_std_c / K.
template <typename T>
__device__ void three_term_dx(const T* g, const T* x, const T* mean, const T* inv_std, const T* s,
                              const T* dbeta, const T* dgamma, T* dx, long long n, long long c, long long m) {
    T count = T(n * m);
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n * c * m;
         i += (long long)blockDim.x * gridDim.x) {
        long long ch = (i / m) % c;
        T x_hat = (x[i] - mean[ch]) * inv_std[ch];
        dx[i] = s[ch] * (count * g[i] - dbeta[ch] - x_hat * dgamma[ch]);
    }
}

// --- entry points, one per dtype ------------------------------------------------------------------------
#define BATCHNORM_ENTRY_POINTS(T, SUFFIX)                                                                    \
extern "C" __global__ void channel_moments_##SUFFIX(const T* x, double* mean, double* var, double* inv_std,  \
                                                   long long n, long long c, long long m, double eps) {      \
    channel_moments(x, mean, var, inv_std, n, c, m, eps);                                                    \
}                                                                                                            \
extern "C" __global__ void normalise_##SUFFIX(const T* x, const T* mean, const T* scale, const T* shift,     \
                                             T* y, long long n, long long c, long long m) {                  \
    normalise(x, mean, scale, shift, y, n, c, m);                                                            \
}                                                                                                            \
extern "C" __global__ void gradient_sums_##SUFFIX(const T* g, const T* x, const T* mean, const T* inv_std,   \
                                                 double* dgamma, double* dbeta, long long n, long long c,    \
                                                 long long m) {                                              \
    gradient_sums(g, x, mean, inv_std, dgamma, dbeta, n, c, m);                                              \
}                                                                                                            \
extern "C" __global__ void three_term_dx_##SUFFIX(const T* g, const T* x, const T* mean, const T* inv_std,   \
                                                 const T* s, const T* dbeta, const T* dgamma, T* dx,         \
                                                 long long n, long long c, long long m) {                    \
    three_term_dx(g, x, mean, inv_std, s, dbeta, dgamma, dx, n, c, m);                                       \
}

BATCHNORM_ENTRY_POINTS(float, f32)
BATCHNORM_ENTRY_POINTS(double, f64)
