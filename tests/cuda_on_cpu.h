// The CUDA execution model for a host C++ compiler, so that g++ runs the very .cu files that NVRTC compiles
// for the GPU (test infrastructure: tests/cuda_harness.py builds and loads them).
//
// A launch runs one team of blockDim std::threads; the team takes the grid's blocks one after another, so
// __shared__ variables can be function statics (one copy, shared by the team, reused block after block),
// __syncthreads() is a std::barrier across the team, and the team meets at that barrier between blocks.
// Atomics go through std::atomic_ref. ASan/UBSan see every out-of-bounds index, TSan every race that a
// missing __syncthreads leaves between the team's threads.
#pragma once
#include <atomic>
#include <barrier>
#include <bit>
#include <cmath>
#include <thread>
#include <vector>

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};

namespace cuda_on_cpu {
inline thread_local dim3 thread_index, block_index;
inline dim3 block_dim, grid_dim;
inline std::barrier<>* team_barrier = nullptr;

template <typename Kernel>
void launch(const unsigned* grid, const unsigned* block, Kernel kernel) {
    grid_dim = {grid[0], grid[1], grid[2]};
    block_dim = {block[0], block[1], block[2]};
    const unsigned threads = block[0] * block[1] * block[2];
    std::barrier<> barrier(threads);
    team_barrier = &barrier;
    std::vector<std::thread> team;
    for (unsigned t = 0; t < threads; ++t) {
        team.emplace_back([&, t] {
            thread_index = {t % block[0], (t / block[0]) % block[1], t / (block[0] * block[1])};
            for (unsigned bz = 0; bz < grid[2]; ++bz)
                for (unsigned by = 0; by < grid[1]; ++by)
                    for (unsigned bx = 0; bx < grid[0]; ++bx) {
                        block_index = {bx, by, bz};
                        kernel();
                        barrier.arrive_and_wait();  // the next block's threads start together
                    }
        });
    }
    for (auto& thread : team) thread.join();
    team_barrier = nullptr;
}
}  // namespace cuda_on_cpu

#define threadIdx (::cuda_on_cpu::thread_index)
#define blockIdx (::cuda_on_cpu::block_index)
#define blockDim (::cuda_on_cpu::block_dim)
#define gridDim (::cuda_on_cpu::grid_dim)
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __shared__ static  // blocks run one after another: one copy serves the team, block after block

inline void __syncthreads() { cuda_on_cpu::team_barrier->arrive_and_wait(); }

template <typename T>
T atomicAdd(T* address, T value) {
    return std::atomic_ref<T>(*address).fetch_add(value);
}

inline float __int_as_float(int bits) { return std::bit_cast<float>(bits); }
inline double __longlong_as_double(long long bits) { return std::bit_cast<double>(bits); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
using std::isfinite;
using std::isnan;
