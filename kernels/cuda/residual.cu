// The residual join y = out + shortcut (then ReLU) and the option-A shortcut: the CUDA twins of
// kernels/residual.py's NumPy references, float32 and float64 (one entry point per dtype: _f32, _f64).
//
// Every kernel walks its output with a grid-stride loop over 64-bit indices, so any grid covers any size,
// and each output element is written by exactly one thread (gathers, no atomics: deterministic).
// NaN as the reference: max(v, 0) keeps a NaN (v <= 0 is false for NaN), and the ReLU's backward passes
// the gradient wherever y <= 0 is false, a NaN output included.

template <typename T>
__device__ void residual_add_forward(const T* out, const T* shortcut, T* y, long long n, long long relu) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        T v = out[i] + shortcut[i];
        y[i] = (relu && v <= T(0)) ? T(0) : v;
    }
}

// The join's backward with the ReLU (without it the gradient passes unchanged and nothing is launched):
// the same gradient for both branches, masked where the output was clipped.
template <typename T>
__device__ void relu_backward(const T* g, const T* y, T* grad, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        grad[i] = y[i] <= T(0) ? T(0) : g[i];
    }
}

// Option A on NCHW memory: y (N, CO, OH, OW) takes x (N, C, H, W) at every stride-th pixel, with
// `before` zero channels in front and the rest behind.
template <typename T>
__device__ void shortcut_a_forward(const T* x, T* y, long long n, long long c, long long h, long long w,
                                   long long co, long long oh, long long ow, long long sh, long long sw,
                                   long long before) {
    long long total = n * co * oh * ow;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)blockDim.x * gridDim.x) {
        long long ox = i % ow, oy = (i / ow) % oh, o = (i / (ow * oh)) % co, b = i / (ow * oh * co);
        long long ch = o - before;
        y[i] = (ch >= 0 && ch < c) ? x[((b * c + ch) * h + oy * sh) * w + ox * sw] : T(0);
    }
}

// Its backward as a gather over dx (N, C, H, W): a pixel on the stride grid takes its channel's gradient,
// every other pixel 0.
template <typename T>
__device__ void shortcut_a_backward(const T* g, T* dx, long long n, long long c, long long h, long long w,
                                    long long co, long long oh, long long ow, long long sh, long long sw,
                                    long long before) {
    long long total = n * c * h * w;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)blockDim.x * gridDim.x) {
        long long col = i % w, row = (i / w) % h, ch = (i / (w * h)) % c, b = i / (w * h * c);
        bool on_grid = row % sh == 0 && col % sw == 0;
        dx[i] = on_grid ? g[((b * co + ch + before) * oh + row / sh) * ow + col / sw] : T(0);
    }
}

// The same pair on channels-last memory: x (N, H, W, C), y (N, OH, OW, CO).
template <typename T>
__device__ void shortcut_a_forward_channels_last(const T* x, T* y, long long n, long long c, long long h,
                                                 long long w, long long co, long long oh, long long ow,
                                                 long long sh, long long sw, long long before) {
    long long total = n * oh * ow * co;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)blockDim.x * gridDim.x) {
        long long o = i % co, ox = (i / co) % ow, oy = (i / (co * ow)) % oh, b = i / (co * ow * oh);
        long long ch = o - before;
        y[i] = (ch >= 0 && ch < c) ? x[((b * h + oy * sh) * w + ox * sw) * c + ch] : T(0);
    }
}

template <typename T>
__device__ void shortcut_a_backward_channels_last(const T* g, T* dx, long long n, long long c, long long h,
                                                  long long w, long long co, long long oh, long long ow,
                                                  long long sh, long long sw, long long before) {
    long long total = n * h * w * c;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)blockDim.x * gridDim.x) {
        long long ch = i % c, col = (i / c) % w, row = (i / (c * w)) % h, b = i / (c * w * h);
        bool on_grid = row % sh == 0 && col % sw == 0;
        dx[i] = on_grid ? g[((b * oh + row / sh) * ow + col / sw) * co + ch + before] : T(0);
    }
}

// --- entry points, one per dtype ------------------------------------------------------------------------
#define SHORTCUT_PARAMS long long n, long long c, long long h, long long w, long long co, long long oh, \
    long long ow, long long sh, long long sw, long long before
#define SHORTCUT_ARGS n, c, h, w, co, oh, ow, sh, sw, before

#define RESIDUAL_ENTRY_POINTS(T, SUFFIX)                                                                     \
extern "C" __global__ void residual_add_forward_##SUFFIX(const T* out, const T* shortcut, T* y, long long n,  \
                                                        long long relu) {                                    \
    residual_add_forward(out, shortcut, y, n, relu);                                                         \
}                                                                                                            \
extern "C" __global__ void relu_backward_##SUFFIX(const T* g, const T* y, T* grad, long long n) {             \
    relu_backward(g, y, grad, n);                                                                            \
}                                                                                                            \
extern "C" __global__ void shortcut_a_forward_##SUFFIX(const T* x, T* y, SHORTCUT_PARAMS) {                  \
    shortcut_a_forward(x, y, SHORTCUT_ARGS);                                                                 \
}                                                                                                            \
extern "C" __global__ void shortcut_a_backward_##SUFFIX(const T* g, T* dx, SHORTCUT_PARAMS) {                \
    shortcut_a_backward(g, dx, SHORTCUT_ARGS);                                                               \
}                                                                                                            \
extern "C" __global__ void shortcut_a_forward_channels_last_##SUFFIX(const T* x, T* y, SHORTCUT_PARAMS) {    \
    shortcut_a_forward_channels_last(x, y, SHORTCUT_ARGS);                                                   \
}                                                                                                            \
extern "C" __global__ void shortcut_a_backward_channels_last_##SUFFIX(const T* g, T* dx, SHORTCUT_PARAMS) {  \
    shortcut_a_backward_channels_last(g, dx, SHORTCUT_ARGS);                                                 \
}

RESIDUAL_ENTRY_POINTS(float, f32)
RESIDUAL_ENTRY_POINTS(double, f64)
