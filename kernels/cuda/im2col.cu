// im2col and col2im over NCHW arrays: the CUDA twins of kernels/im2col.py's NumPy references, float32 and
// float64 (entry points _f32, _f64). Window KH x KW, stride (SH, SW), padding (PH, PW), dilation (DH, DW);
// col is (N, C, KH, KW, OH, OW) or, in the "rows" order of the GPU convolution (functional/conv_gemm.py),
// (C, KH, KW, N, OH, OW): a (K, N OH OW) matrix that one GEMM multiplies for the whole batch.
//
// im2col writes each column element once: the input pixel under tap (i, j) of output pixel (oy, ox), or 0 on
// the padding. col2im is a gather over x: each input pixel sums, tap by tap in the reference's order, the
// column elements whose tap lands on it. Deterministic, no atomics; grid-stride loops, 64-bit indices.

// Where column element (image b, channel ch, tap i, j, output pixel oy, ox) lives in either order.
template <bool ROWS>
__device__ long long column_at(long long b, long long ch, long long i, long long j, long long oy, long long ox,
                               long long n, long long c, long long kh, long long kw, long long oh, long long ow) {
    if (ROWS) return ((((ch * kh + i) * kw + j) * n + b) * oh + oy) * ow + ox;
    return ((((b * c + ch) * kh + i) * kw + j) * oh + oy) * ow + ox;
}

template <typename T, bool ROWS>
__device__ void im2col(const T* x, T* col, long long n, long long c, long long h, long long w, long long kh,
                       long long kw, long long oh, long long ow, long long sh, long long sw, long long ph,
                       long long pw, long long dh, long long dw) {
    for (long long k = blockIdx.x * (long long)blockDim.x + threadIdx.x; k < n * c * kh * kw * oh * ow;
         k += (long long)blockDim.x * gridDim.x) {
        long long ox = k % ow, oy = (k / ow) % oh, b, i, j, ch;
        if (ROWS) {  // k walks (C, KH, KW, N, OH, OW)
            b = (k / (ow * oh)) % n, j = (k / (ow * oh * n)) % kw, i = (k / (ow * oh * n * kw)) % kh;
            ch = k / (ow * oh * n * kw * kh);
        } else {     // k walks (N, C, KH, KW, OH, OW)
            j = (k / (ow * oh)) % kw, i = (k / (ow * oh * kw)) % kh, ch = (k / (ow * oh * kw * kh)) % c;
            b = k / (ow * oh * kw * kh * c);
        }
        long long plane = b * c + ch;
        long long row = oy * sh - ph + i * dh, col_ = ox * sw - pw + j * dw;
        col[k] = (row >= 0 && row < h && col_ >= 0 && col_ < w) ? x[(plane * h + row) * w + col_] : T(0);
    }
}

template <typename T, bool ROWS>
__device__ void col2im(const T* col, T* x, long long n, long long c, long long h, long long w, long long kh,
                       long long kw, long long oh, long long ow, long long sh, long long sw, long long ph,
                       long long pw, long long dh, long long dw) {
    for (long long k = blockIdx.x * (long long)blockDim.x + threadIdx.x; k < n * c * h * w;
         k += (long long)blockDim.x * gridDim.x) {
        long long column = k % w, row = (k / w) % h, ch = (k / (w * h)) % c, b = k / (w * h * c);
        T sum = 0;
        for (long long i = 0; i < kh; ++i) {
            long long top = row + ph - i * dh;  // = oy * sh for the output row whose tap i lands here
            if (top < 0 || top % sh != 0 || top / sh >= oh) continue;
            for (long long j = 0; j < kw; ++j) {
                long long left = column + pw - j * dw;
                if (left < 0 || left % sw != 0 || left / sw >= ow) continue;
                sum += col[column_at<ROWS>(b, ch, i, j, top / sh, left / sw, n, c, kh, kw, oh, ow)];
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
    im2col<T, false>(x, col, IM2COL_ARGS);                                                                   \
}                                                                                                            \
extern "C" __global__ void col2im_##SUFFIX(const T* col, T* x, IM2COL_PARAMS) {                              \
    col2im<T, false>(col, x, IM2COL_ARGS);                                                                   \
}                                                                                                            \
extern "C" __global__ void im2col_rows_##SUFFIX(const T* x, T* col, IM2COL_PARAMS) {                         \
    im2col<T, true>(x, col, IM2COL_ARGS);                                                                    \
}                                                                                                            \
extern "C" __global__ void col2im_rows_##SUFFIX(const T* col, T* x, IM2COL_PARAMS) {                         \
    col2im<T, true>(col, x, IM2COL_ARGS);                                                                    \
}

IM2COL_ENTRY_POINTS(float, f32)
IM2COL_ENTRY_POINTS(double, f64)
