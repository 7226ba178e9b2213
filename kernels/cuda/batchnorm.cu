// Batch normalisation over the channel axis of (N, C, M) arrays: the CUDA twins of kernels/batchnorm.py's
// NumPy references, float32 and float64 (entry points _f32, _f64), computing in the same order as the
// references: products in the array's dtype, every sum over a channel in double.
//
// Inputs are read through two strides, element (b, ch, k) at b * sn + ch * sc + k: (C M, M) for NCHW
// memory, (M, N M) for the GPU convolution's output, whose memory is (C, N, M) (functional/conv_gemm.py).
// The forward writes y in NCHW order; the backward writes dx laid out as x, so the convolution before it
// gets its gradient in the layout it wants. The same kernels run batch-norm + residual + ReLU fused
// (kernels/batchnorm_relu.py's CUDA version): normalise adds and clamps, the backward masks g by y.
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

// Offset of the k-th of a channel's N*M values (image k / m, pixel k % m).
__device__ long long channel_at(long long k, long long ch, long long m, long long sn, long long sc) {
    return (k / m) * sn + ch * sc + k % m;
}

// Offset of the i-th element of (N, C, M) in NCHW order.
__device__ long long element_at(long long i, long long c, long long m, long long sn, long long sc) {
    return (i / (c * m)) * sn + ((i / m) % c) * sc + i % m;
}

// The training statistics, one block per channel: mean, var (biased, of the centred values, as the
// reference) and inv_std = 1 / sqrt(var + eps) in double, written in the array's dtype, with
// scale = inv_std gamma (the normalise step's factor). With `update`, the running statistics move in place
// as PyTorch's: running = (1 - momentum) running + momentum batch, the variance unbiased.
template <typename T>
__device__ void channel_moments(const T* x, long long sn, long long sc, const T* gamma, T* mean, T* var,
                                T* inv_std, T* scale, T* running_mean, T* running_var, double momentum,
                                long long update, long long n, long long c, long long m, double eps) {
    __shared__ double shared[MAX_THREADS];
    long long count = n * m;
    for (long long ch = blockIdx.x; ch < c; ch += gridDim.x) {
        double sum = 0;
        for (long long k = threadIdx.x; k < count; k += blockDim.x) sum += x[channel_at(k, ch, m, sn, sc)];
        double mu = block_sum(sum, shared) / count;
        T centre = T(mu);
        double squares = 0;
        for (long long k = threadIdx.x; k < count; k += blockDim.x) {
            T d = x[channel_at(k, ch, m, sn, sc)] - centre;
            squares += d * d;
        }
        double variance = block_sum(squares, shared) / count;
        if (threadIdx.x == 0) {
            double istd = 1.0 / sqrt(variance + eps);
            mean[ch] = T(mu), var[ch] = T(variance), inv_std[ch] = T(istd), scale[ch] = T(istd * gamma[ch]);
            if (update) {
                running_mean[ch] = running_mean[ch] * T(1.0 - momentum) + T(momentum) * mean[ch];
                running_var[ch] = running_var[ch] * T(1.0 - momentum)
                                  + T(momentum) * var[ch] * T(double(count) / double(count - 1));
            }
        }
    }
}

// y = (x - mean_c) scale_c + shift_c: the training forward (scale = gamma inv_std, shift = beta) and, with
// mean 0, the evaluation forward and backward. y is NCHW. With `relu`, y = max(that (+ residual), 0), the
// fused tail of a residual block (a NaN stays NaN, as the reference's maximum keeps it).
template <typename T>
__device__ void normalise(const T* x, long long sn, long long sc, const T* mean, const T* scale, const T* shift,
                          const T* residual, long long has_residual, long long relu, T* y, long long n,
                          long long c, long long m) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n * c * m;
         i += (long long)blockDim.x * gridDim.x) {
        long long ch = (i / m) % c;
        T v = (x[element_at(i, c, m, sn, sc)] - mean[ch]) * scale[ch] + shift[ch];
        if (has_residual) v += residual[i];
        y[i] = relu && v <= T(0) ? T(0) : v;
    }
}

// The gradient that reaches the batch-norm: g itself, or behind the fused ReLU gm = 0 where y <= 0, else g
// (y is the NCHW output; a NaN y passes g on, as the reference's where does).
template <typename T>
__device__ T reaching(const T* g, long long g_at, const T* y, long long y_at, long long masked) {
    return masked && y[y_at] <= T(0) ? T(0) : g[g_at];
}

// dbeta_c = sum(g), dgamma_c = sum(g x_hat) with x_hat = (x - mean_c) inv_std_c, summed in double (g: the
// gradient that reaches the batch-norm).
template <typename T>
__device__ void gradient_sums(const T* g, long long gsn, long long gsc, const T* y, long long masked, const T* x,
                              long long xsn, long long xsc, const T* mean, const T* inv_std, T* dgamma, T* dbeta,
                              long long n, long long c, long long m) {
    __shared__ double shared[MAX_THREADS];
    long long count = n * m;
    for (long long ch = blockIdx.x; ch < c; ch += gridDim.x) {
        double sum_g = 0, sum_gx = 0;
        for (long long k = threadIdx.x; k < count; k += blockDim.x) {
            T gk = reaching(g, channel_at(k, ch, m, gsn, gsc), y, channel_at(k, ch, m, c * m, m), masked);
            T x_hat = (x[channel_at(k, ch, m, xsn, xsc)] - mean[ch]) * inv_std[ch];
            sum_g += gk;
            sum_gx += gk * x_hat;
        }
        double total_g = block_sum(sum_g, shared), total_gx = block_sum(sum_gx, shared);
        if (threadIdx.x == 0) {
            dbeta[ch] = T(total_g);
            dgamma[ch] = T(total_gx);
        }
    }
}

// The three-term training backward: dx = s_c (K g - dbeta_c - x_hat dgamma_c), s_c = gamma_c inv_std_c / K,
// written laid out as x; with `write_gm` the gradient that reached the batch-norm goes to gm too (NCHW: the
// residual's gradient).
template <typename T>
__device__ void three_term_dx(const T* g, long long gsn, long long gsc, const T* y, long long masked, const T* x,
                              long long xsn, long long xsc, const T* gamma, const T* mean, const T* inv_std,
                              const T* dbeta, const T* dgamma, T* dx, T* gm, long long write_gm, long long n,
                              long long c, long long m) {
    T count = T(n * m);
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n * c * m;
         i += (long long)blockDim.x * gridDim.x) {
        long long ch = (i / m) % c, at = element_at(i, c, m, xsn, xsc);
        T gi = reaching(g, element_at(i, c, m, gsn, gsc), y, i, masked);
        if (write_gm) gm[i] = gi;
        T x_hat = (x[at] - mean[ch]) * inv_std[ch];
        T s = gamma[ch] * inv_std[ch] / count;
        dx[at] = s * (count * gi - dbeta[ch] - x_hat * dgamma[ch]);
    }
}

// --- entry points, one per dtype ------------------------------------------------------------------------
#define BATCHNORM_ENTRY_POINTS(T, SUFFIX)                                                                    \
extern "C" __global__ void channel_moments_##SUFFIX(const T* x, long long sn, long long sc, const T* gamma,   \
                                                   T* mean, T* var, T* inv_std, T* scale, T* running_mean,   \
                                                   T* running_var, double momentum, long long update,        \
                                                   long long n, long long c, long long m, double eps) {      \
    channel_moments(x, sn, sc, gamma, mean, var, inv_std, scale, running_mean, running_var, momentum, update, \
                    n, c, m, eps);                                                                           \
}                                                                                                            \
extern "C" __global__ void normalise_##SUFFIX(const T* x, long long sn, long long sc, const T* mean,          \
                                             const T* scale, const T* shift, const T* residual,              \
                                             long long has_residual, long long relu, T* y, long long n,      \
                                             long long c, long long m) {                                     \
    normalise(x, sn, sc, mean, scale, shift, residual, has_residual, relu, y, n, c, m);                      \
}                                                                                                            \
extern "C" __global__ void gradient_sums_##SUFFIX(const T* g, long long gsn, long long gsc, const T* y,       \
                                                 long long masked, const T* x, long long xsn, long long xsc, \
                                                 const T* mean, const T* inv_std, T* dgamma, T* dbeta,       \
                                                 long long n, long long c, long long m) {                    \
    gradient_sums(g, gsn, gsc, y, masked, x, xsn, xsc, mean, inv_std, dgamma, dbeta, n, c, m);               \
}                                                                                                            \
extern "C" __global__ void three_term_dx_##SUFFIX(const T* g, long long gsn, long long gsc, const T* y,       \
                                                 long long masked, const T* x, long long xsn, long long xsc, \
                                                 const T* gamma, const T* mean, const T* inv_std,            \
                                                 const T* dbeta, const T* dgamma, T* dx, T* gm,              \
                                                 long long write_gm, long long n, long long c, long long m) { \
    three_term_dx(g, gsn, gsc, y, masked, x, xsn, xsc, gamma, mean, inv_std, dbeta, dgamma, dx, gm, write_gm,  \
                  n, c, m);                                                                                  \
}

BATCHNORM_ENTRY_POINTS(float, f32)
BATCHNORM_ENTRY_POINTS(double, f64)
