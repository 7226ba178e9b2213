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

// A pixel of a 4-D array and the flat offsets of its two memory formats.
struct Pixel {
    long long b, ch, row, col;
};

template <bool channels_last>
__device__ Pixel pixel_at(long long i, long long c, long long h, long long w) {
    if (channels_last) return {i / (h * w * c), i % c, (i / (w * c)) % h, (i / c) % w};
    return {i / (c * h * w), (i / (h * w)) % c, (i / w) % h, i % w};
}

template <bool channels_last>
__device__ long long offset_of(Pixel p, long long c, long long h, long long w) {
    if (channels_last) return ((p.b * h + p.row) * w + p.col) * c + p.ch;
    return ((p.b * c + p.ch) * h + p.row) * w + p.col;
}

// Option A: y (N, CO, OH, OW) takes x (N, C, H, W) at every stride-th pixel, with `before` zero channels in
// front and the rest behind (either memory format, the same for x and y).
template <typename T, bool channels_last>
__device__ void shortcut_a_forward(const T* x, T* y, long long n, long long c, long long h, long long w,
                                   long long co, long long oh, long long ow, long long sh, long long sw,
                                   long long before) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n * co * oh * ow;
         i += (long long)blockDim.x * gridDim.x) {
        Pixel out = pixel_at<channels_last>(i, co, oh, ow);
        Pixel in = {out.b, out.ch - before, out.row * sh, out.col * sw};
        y[i] = (in.ch >= 0 && in.ch < c) ? x[offset_of<channels_last>(in, c, h, w)] : T(0);
    }
}

// Its backward as a gather over dx (N, C, H, W): a pixel on the stride grid takes its channel's gradient,
// every other pixel 0.
template <typename T, bool channels_last>
__device__ void shortcut_a_backward(const T* g, T* dx, long long n, long long c, long long h, long long w,
                                    long long co, long long oh, long long ow, long long sh, long long sw,
                                    long long before) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n * c * h * w;
         i += (long long)blockDim.x * gridDim.x) {
        Pixel in = pixel_at<channels_last>(i, c, h, w);
        Pixel out = {in.b, in.ch + before, in.row / sh, in.col / sw};
        bool on_grid = in.row % sh == 0 && in.col % sw == 0;
        dx[i] = on_grid ? g[offset_of<channels_last>(out, co, oh, ow)] : T(0);
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
    shortcut_a_forward<T, false>(x, y, SHORTCUT_ARGS);                                                       \
}                                                                                                            \
extern "C" __global__ void shortcut_a_backward_##SUFFIX(const T* g, T* dx, SHORTCUT_PARAMS) {                \
    shortcut_a_backward<T, false>(g, dx, SHORTCUT_ARGS);                                                     \
}                                                                                                            \
extern "C" __global__ void shortcut_a_forward_channels_last_##SUFFIX(const T* x, T* y, SHORTCUT_PARAMS) {    \
    shortcut_a_forward<T, true>(x, y, SHORTCUT_ARGS);                                                        \
}                                                                                                            \
extern "C" __global__ void shortcut_a_backward_channels_last_##SUFFIX(const T* g, T* dx, SHORTCUT_PARAMS) {  \
    shortcut_a_backward<T, true>(g, dx, SHORTCUT_ARGS);                                                      \
}

RESIDUAL_ENTRY_POINTS(float, f32)
RESIDUAL_ENTRY_POINTS(double, f64)
