// The SGD update in place: the CUDA twin of kernels/sgd.py (PyTorch's rule), float32 and float64 (entry
// points _f32, _f64), the scalars in the parameter's dtype:
//     d = g + weight_decay p;  b = d (first step) or momentum b + keep d;  d = d + momentum b (nesterov) or b
//     p = p - lr d
// sgd_update: one parameter, one grid-stride pass. sgd_update_many: every parameter of an optimiser's group
// in one launch, from a table of 64-bit words, one row per parameter: (p, g, buffer, size, first); the grid's
// y blocks stride over the rows, its x blocks over a row's elements. Without momentum the buffer is never
// touched.

template <typename T>
__device__ void sgd_step(T* p, const T* g, T* buffer, long long i, T lr, T momentum, T keep, T weight_decay,
                         long long nesterov, long long first) {
    T d = weight_decay != T(0) ? g[i] + weight_decay * p[i] : g[i];
    if (momentum != T(0)) {
        T b = first ? d : buffer[i] * momentum + keep * d;
        buffer[i] = b;
        d = nesterov ? d + momentum * b : b;
    }
    p[i] = p[i] - lr * d;
}

template <typename T>
__device__ void sgd_update(T* p, const T* g, T* buffer, T lr, T momentum, T keep, T weight_decay,
                           long long nesterov, long long first, long long n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x)
        sgd_step(p, g, buffer, i, lr, momentum, keep, weight_decay, nesterov, first);
}

template <typename T>
__device__ void sgd_update_many(const long long* table, long long rows, T lr, T momentum, T keep,
                                T weight_decay, long long nesterov) {
    for (long long r = blockIdx.y; r < rows; r += gridDim.y) {
        const long long* row = table + 5 * r;
        T* p = reinterpret_cast<T*>(row[0]);
        const T* g = reinterpret_cast<const T*>(row[1]);
        T* buffer = reinterpret_cast<T*>(row[2]);
        for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < row[3];
             i += (long long)blockDim.x * gridDim.x)
            sgd_step(p, g, buffer, i, lr, momentum, keep, weight_decay, nesterov, row[4]);
    }
}

#define SGD_ENTRY_POINTS(T, SUFFIX)                                                                          \
extern "C" __global__ void sgd_update_##SUFFIX(T* p, const T* g, T* buffer, T lr, T momentum, T keep,        \
                                              T weight_decay, long long nesterov, long long first,           \
                                              long long n) {                                                 \
    sgd_update(p, g, buffer, lr, momentum, keep, weight_decay, nesterov, first, n);                          \
}                                                                                                            \
extern "C" __global__ void sgd_update_many_##SUFFIX(const long long* table, long long rows, T lr, T momentum, \
                                                   T keep, T weight_decay, long long nesterov) {             \
    sgd_update_many(table, rows, lr, momentum, keep, weight_decay, nesterov);                                \
}

SGD_ENTRY_POINTS(float, f32)
SGD_ENTRY_POINTS(double, f64)
