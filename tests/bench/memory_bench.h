// Baselines for tests/bench/memory_bench.cc: allocate/free function pairs the
// caching pool is compared with. The raw Device::AllocateRaw/FreeRaw pair
// (cudaMalloc/cudaFree on a CUDA device) is built in; other files linked into
// the benchmark (for example a CUDA-only one adding cudaMallocAsync on the
// default pool) register more with RegisterMemoryBaseline at static
// initialization.
#ifndef INFERD_TESTS_BENCH_MEMORY_BENCH_H_
#define INFERD_TESTS_BENCH_MEMORY_BENCH_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "core/device/device.h"

namespace inferd::bench {

// One allocator under test. `allocate` returns null on failure. `reserved`
// (optional) reports the bytes the allocator holds from the driver, for the
// end-of-trace reserved/allocated figure.
struct AllocFreePair {
  std::string name;
  std::function<void*(size_t bytes)> allocate;
  std::function<void(void* ptr)> free;
  std::function<uint64_t()> reserved;
  // Optional: high-water marks {bytes held from the driver, bytes handed
  // out} over the allocator's life.
  std::function<std::pair<uint64_t, uint64_t>()> high_water;
  // Optional: runs once after the trace (synchronize, trim, release).
  std::function<void()> finish;
};

// Makes a baseline for `device`, or returns null when it does not apply
// (a cudaMallocAsync baseline on a host device).
using BaselineFactory = std::function<std::unique_ptr<AllocFreePair>(Device& device)>;

// Adds a baseline; returns a dummy so it can initialize a static.
int RegisterMemoryBaseline(BaselineFactory factory);

}  // namespace inferd::bench

#endif  // INFERD_TESTS_BENCH_MEMORY_BENCH_H_
