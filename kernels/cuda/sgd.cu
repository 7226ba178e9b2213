// The SGD update of one parameter in place: the CUDA twin of kernels/sgd.py (PyTorch's rule), float32 and
// float64 (entry points _f32, _f64), the scalars in the parameter's dtype:
//     d = g + weight_decay p;  b = d (first step) or momentum b + keep d;  d = d + momentum b (nesterov) or b
//     p = p - lr d
// One grid-stride pass over the parameter; without momentum the buffer is never touched.

template <typename T>
__device__ void sgd_update(T* p, const T* g, T* buffer, T lr, T momentum, T keep, T weight_decay,
                           long long nesterov, long long first, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        T d = weight_decay != T(0) ? g[i] + weight_decay * p[i] : g[i];
        if (momentum != T(0)) {
            T b = first ? d : buffer[i] * momentum + keep * d;
            buffer[i] = b;
            d = nesterov ? d + momentum * b : b;
        }
        p[i] = p[i] - lr * d;
    }
}

#define SGD_ENTRY_POINT(T, SUFFIX)                                                                           \
extern "C" __global__ void sgd_update_##SUFFIX(T* p, const T* g, T* buffer, T lr, T momentum, T keep,        \
                                              T weight_decay, long long nesterov, long long first,           \
                                              long long n) {                                                 \
    sgd_update(p, g, buffer, lr, momentum, keep, weight_decay, nesterov, first, n);                          \
}

SGD_ENTRY_POINT(float, f32)
SGD_ENTRY_POINT(double, f64)
