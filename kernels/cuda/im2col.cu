// im2col and col2im over NCHW arrays: the CUDA twins of kernels/im2col.py's NumPy references, float32 and
// float64 (entry points _f32, _f64). Window KH x KW, stride (SH, SW), padding (PH, PW), dilation (DH, DW);
// col is (N, C, KH, KW, OH, OW).
//
// im2col writes each column element once: the input pixel under tap (i, j) of output pixel (oy, ox), or 0 on
// the padding. col2im is a gather over x: each input pixel sums, tap by tap in the reference's order, the
// column elements whose tap lands on it. Deterministic, no atomics; grid-stride loops, 64-bit indices.

template <typename T>
__device__ void im2col(const T* x, T* col, long long n, long long c, long long h, long long w, long long kh,
                       long long kw, long long oh, long long ow, long long sh, long long sw, long long ph,
                       long long pw, long long dh, long long dw) {
    for (long long k = blockIdx.x * (long long)blockDim.x + threadIdx.x; k < n * c * kh * kw * oh * ow;
         k += (long long)blockDim.x * gridDim.x) {
        long long ox = k % ow, oy = (k / ow) % oh, j = (k / (ow * oh)) % kw, i = (k / (ow * oh * kw)) % kh;
        long long plane = k / (ow * oh * kw * kh);  // b * C + channel
        long long row = oy * sh - ph + i * dh, col_ = ox * sw - pw + j * dw;
        col[k] = (row >= 0 && row < h && col_ >= 0 && col_ < w) ? x[(plane * h + row) * w + col_] : T(0);
    }
}

template <typename T>
__device__ void col2im(const T* col, T* x, long long n, long long c, long long h, long long w, long long kh,
                       long long kw, long long oh, long long ow, long long sh, long long sw, long long ph,
                       long long pw, long long dh, long long dw) {
    for (long long k = blockIdx.x * (long long)blockDim.x + threadIdx.x; k < n * c * h * w;
         k += (long long)blockDim.x * gridDim.x) {
        long long column = k % w, row = (k / w) % h, plane = k / (w * h);
        T sum = 0;
        for (long long i = 0; i < kh; ++i) {
            long long top = row + ph - i * dh;  // = oy * sh for the output row whose tap i lands here
            if (top < 0 || top % sh != 0 || top / sh >= oh) continue;
            for (long long j = 0; j < kw; ++j) {
                long long left = column + pw - j * dw;
                if (left < 0 || left % sw != 0 || left / sw >= ow) continue;
                sum += col[(((plane * kh + i) * kw + j) * oh + top / sh) * ow + left / sw];
            }
        }
        x[k] = sum;
    }
}

// --- entry points, one per dtype ------------------------------------------------------------------------
#define IM2COL_PARAMS long long n, long long c, long long h, long long w, long long kh, long long kw,       \
    long long oh, long long ow, long long sh, long long sw, long long ph, long long pw, long long dh,        \
    long long dw
#define IM2COL_ARGS n, c, h, w, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw

#define IM2COL_ENTRY_POINTS(T, SUFFIX)                                                                       \
extern "C" __global__ void im2col_##SUFFIX(const T* x, T* col, IM2COL_PARAMS) {                              \
    im2col(x, col, IM2COL_ARGS);                                                                             \
}                                                                                                            \
extern "C" __global__ void col2im_##SUFFIX(const T* col, T* x, IM2COL_PARAMS) {                              \
    col2im(col, x, IM2COL_ARGS);                                                                             \
}

IM2COL_ENTRY_POINTS(float, f32)
IM2COL_ENTRY_POINTS(double, f64)
