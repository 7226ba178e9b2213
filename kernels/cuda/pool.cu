// Pooling over the H x W planes of NCHW arrays: the CUDA twins of kernels/pool.py's NumPy references,
// float32 and float64 (entry points _f32, _f64). Window KH x KW, stride (SH, SW), padding (PH, PW).
//
// Max pooling picks its winner as the references (and PyTorch's CPU kernel) do, walking the window in row
// order: padding never wins, a NaN wins and a later NaN beats an earlier one, otherwise the first pixel
// holding the maximum; argmax keeps the winner's in-plane index row * W + column. Its backward runs one
// plane per thread, adding each output's gradient at its winner in output order: deterministic, no atomics
// (a gather over dx would need the window's geometry, which the kernel's signature does not carry).
// Average pooling counts the padded zeros (count_include_pad, PyTorch's default) and its backward is a
// gather: each input pixel sums the shares of the windows that cover it.

// -inf of each dtype from its bits (NVRTC has no math.h and so no INFINITY)
template <typename T>
__device__ T minus_infinity();
template <>
__device__ float minus_infinity<float>() { return __int_as_float(int(0xff800000u)); }
template <>
__device__ double minus_infinity<double>() { return __longlong_as_double((long long)0xfff0000000000000ull); }

template <typename T>
__device__ void max_pool_forward(const T* x, T* y, long long* argmax, long long planes, long long h, long long w,
                                 long long oh, long long ow, long long kh, long long kw, long long sh,
                                 long long sw, long long ph, long long pw) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < planes * oh * ow;
         i += (long long)blockDim.x * gridDim.x) {
        long long ox = i % ow, oy = (i / ow) % oh, plane = i / (ow * oh);
        const T* image = x + plane * h * w;
        T best = minus_infinity<T>();
        long long where = -1;
        for (long long r = 0; r < kh; ++r) {
            long long row = oy * sh - ph + r;
            if (row < 0 || row >= h) continue;
            for (long long s = 0; s < kw; ++s) {
                long long col = ox * sw - pw + s;
                if (col < 0 || col >= w) continue;
                T v = image[row * w + col];
                if (v > best || where < 0 || isnan(v)) {
                    best = v;
                    where = row * w + col;
                }
            }
        }
        y[i] = best;
        argmax[i] = where;
    }
}

// dx as a gather: each input pixel sums, in output order, the gradients of the windows that cover it and
// chose it (argmax holds the in-plane index row * W + column). Deterministic, no atomics; the same order as
// the references' scatter, so the same sums.
template <typename T>
__device__ void max_pool_backward(const T* g, const long long* argmax, T* dx, long long planes, long long h,
                                  long long w, long long oh, long long ow, long long kh, long long kw,
                                  long long sh, long long sw, long long ph, long long pw) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < planes * h * w;
         i += (long long)blockDim.x * gridDim.x) {
        long long column = i % w, row = (i / w) % h, plane = i / (w * h), here = row * w + column;
        // the outputs oy whose window rows oy sh - ph .. oy sh - ph + kh - 1 hold `row` (likewise ox)
        long long first_y = row + ph - kh + 1 > 0 ? (row + ph - kh + sh) / sh : 0;
        long long first_x = column + pw - kw + 1 > 0 ? (column + pw - kw + sw) / sw : 0;
        long long last_y = (row + ph) / sh < oh - 1 ? (row + ph) / sh : oh - 1;
        long long last_x = (column + pw) / sw < ow - 1 ? (column + pw) / sw : ow - 1;
        T sum = 0;
        for (long long oy = first_y; oy <= last_y; ++oy)
            for (long long ox = first_x; ox <= last_x; ++ox) {
                long long k = (plane * oh + oy) * ow + ox;
                if (argmax[k] == here) sum += g[k];
            }
        dx[i] = sum;
    }
}

template <typename T>
__device__ void avg_pool_forward(const T* x, T* y, long long planes, long long h, long long w, long long oh,
                                 long long ow, long long kh, long long kw, long long sh, long long sw,
                                 long long ph, long long pw) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < planes * oh * ow;
         i += (long long)blockDim.x * gridDim.x) {
        long long ox = i % ow, oy = (i / ow) % oh, plane = i / (ow * oh);
        T sum = 0;
        for (long long r = 0; r < kh; ++r) {
            long long row = oy * sh - ph + r;
            for (long long s = 0; s < kw; ++s) {
                long long col = ox * sw - pw + s;
                if (row >= 0 && row < h && col >= 0 && col < w) sum += x[(plane * h + row) * w + col];
            }
        }
        y[i] = sum / T(kh * kw);
    }
}

template <typename T>
__device__ void avg_pool_backward(const T* g, T* dx, long long planes, long long h, long long w, long long oh,
                                  long long ow, long long kh, long long kw, long long sh, long long sw,
                                  long long ph, long long pw) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < planes * h * w;
         i += (long long)blockDim.x * gridDim.x) {
        long long col = i % w, row = (i / w) % h, plane = i / (w * h);
        T sum = 0;
        for (long long r = 0; r < kh; ++r) {  // the windows (oy, ox) whose tap (r, s) lands on this pixel
            long long top = row + ph - r;
            if (top < 0 || top % sh != 0 || top / sh >= oh) continue;
            for (long long s = 0; s < kw; ++s) {
                long long left = col + pw - s;
                if (left < 0 || left % sw != 0 || left / sw >= ow) continue;
                sum += g[(plane * oh + top / sh) * ow + left / sw] / T(kh * kw);
            }
        }
        dx[i] = sum;
    }
}

// The global average: one plane per block, a tree reduction in double (blockDim a power of two).
#define MAX_THREADS 1024

template <typename T>
__device__ void global_avg_pool_forward(const T* x, T* y, long long planes, long long size) {
    __shared__ double shared[MAX_THREADS];
    for (long long plane = blockIdx.x; plane < planes; plane += gridDim.x) {
        double sum = 0;
        for (long long k = threadIdx.x; k < size; k += blockDim.x) sum += x[plane * size + k];
        shared[threadIdx.x] = sum;
        __syncthreads();
        for (unsigned stride = blockDim.x / 2; stride > 0; stride /= 2) {
            if (threadIdx.x < stride) shared[threadIdx.x] += shared[threadIdx.x + stride];
            __syncthreads();
        }
        if (threadIdx.x == 0) y[plane] = T(shared[0] / size);
        __syncthreads();  // shared[0] is read before the next plane writes the array
    }
}

template <typename T>
__device__ void global_avg_pool_backward(const T* g, T* dx, long long planes, long long size) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < planes * size;
         i += (long long)blockDim.x * gridDim.x) {
        dx[i] = g[i / size] / T(size);
    }
}

// --- entry points, one per dtype ------------------------------------------------------------------------
#define WINDOW_PARAMS long long planes, long long h, long long w, long long oh, long long ow, long long kh, \
    long long kw, long long sh, long long sw, long long ph, long long pw
#define WINDOW_ARGS planes, h, w, oh, ow, kh, kw, sh, sw, ph, pw

#define POOL_ENTRY_POINTS(T, SUFFIX)                                                                         \
extern "C" __global__ void max_pool_forward_##SUFFIX(const T* x, T* y, long long* argmax, WINDOW_PARAMS) {   \
    max_pool_forward(x, y, argmax, WINDOW_ARGS);                                                             \
}                                                                                                            \
extern "C" __global__ void max_pool_backward_##SUFFIX(const T* g, const long long* argmax, T* dx,             \
                                                     long long planes, long long h, long long w,             \
                                                     long long oh, long long ow, long long kh, long long kw, \
                                                     long long sh, long long sw, long long ph, long long pw) { \
    max_pool_backward(g, argmax, dx, planes, h, w, oh, ow, kh, kw, sh, sw, ph, pw);                          \
}                                                                                                            \
extern "C" __global__ void avg_pool_forward_##SUFFIX(const T* x, T* y, WINDOW_PARAMS) {                      \
    avg_pool_forward(x, y, WINDOW_ARGS);                                                                     \
}                                                                                                            \
extern "C" __global__ void avg_pool_backward_##SUFFIX(const T* g, T* dx, WINDOW_PARAMS) {                    \
    avg_pool_backward(g, dx, WINDOW_ARGS);                                                                   \
}                                                                                                            \
extern "C" __global__ void global_avg_pool_forward_##SUFFIX(const T* x, T* y, long long planes,              \
                                                           long long size) {                                 \
    global_avg_pool_forward(x, y, planes, size);                                                             \
}                                                                                                            \
extern "C" __global__ void global_avg_pool_backward_##SUFFIX(const T* g, T* dx, long long planes,            \
                                                            long long size) {                                \
    global_avg_pool_backward(g, dx, planes, size);                                                           \
}

POOL_ENTRY_POINTS(float, f32)
POOL_ENTRY_POINTS(double, f64)
