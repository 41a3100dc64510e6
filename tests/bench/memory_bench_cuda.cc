// The cudaMallocAsync baseline for memory_bench (CUDA builds only): CUDA's
// stream-ordered allocator on the default pool, release threshold at max.
#include <memory>
#include <utility>

#include "core/device/cuda/async_allocator.h"
#include "tests/bench/memory_bench.h"

namespace inferd::bench {
namespace {

const int kRegistered = RegisterMemoryBaseline([](Device& device) -> std::unique_ptr<AllocFreePair> {
  absl::StatusOr<std::unique_ptr<CudaAsyncAllocator>> a = CudaAsyncAllocator::Create(device);
  if (!a.ok()) return nullptr;
  std::shared_ptr<CudaAsyncAllocator> alloc = *std::move(a);
  auto pair = std::make_unique<AllocFreePair>();
  pair->name = "cudaMallocAsync (default pool)";
  pair->allocate = [alloc](size_t bytes) { return alloc->Allocate(bytes); };
  pair->free = [alloc](void* p) { alloc->Free(p); };
  pair->reserved = [alloc] { return alloc->Reserved(); };
  pair->high_water = [alloc] { return std::make_pair(alloc->PeakReserved(), alloc->PeakUsed()); };
  pair->finish = [alloc] { alloc->Synchronize(); };
  return pair;
});

}  // namespace
}  // namespace inferd::bench
