// HostCommunicator: the collectives of Communicator built from what every
// Device offers — stream copies (CopyFromPeer), events and Kernels::Reduce /
// DivideBy. It is the implementation for host devices and the CUDA fallback
// when NCCL is off or missing.
//
// Algorithms (N ranks, all work enqueued on the ranks' streams):
//  - every collective starts with each rank waiting for the others' earlier
//    work (events) and ends with a full barrier, so no rank's later work can
//    overwrite a buffer another rank still reads;
//  - AllReduce = a reduce-scatter phase (rank r reduces segment r of every
//    rank's input, in rank order 0..N-1, in scratch) and an all-gather phase
//    (every rank copies the other segments), so the reduction work is spread
//    over the devices and every element is reduced in the same order;
//  - ReduceScatter = the first phase alone; AllGather and Broadcast = peer
//    copies.
// Large segments are processed in pieces of at most max_scratch_bytes, so the
// scratch each rank takes (two pieces, from the DeviceAllocator) is bounded.
#ifndef INFERD_CORE_DEVICE_HOST_COMMUNICATOR_H_
#define INFERD_CORE_DEVICE_HOST_COMMUNICATOR_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "core/device/communicator.h"
#include "core/device/device_allocator.h"

namespace inferd {

struct HostCommunicatorOptions {
  // Largest scratch piece per rank; at least one element.
  size_t max_scratch_bytes = 16u << 20;
};

// Thread-compatible (see Communicator). The devices and the allocator are
// borrowed and must outlive it.
class HostCommunicator final : public Communicator {
 public:
  // INVALID_ARGUMENT for an empty or repeated device list, a null device or
  // allocator, or a zero max_scratch_bytes.
  static absl::StatusOr<std::unique_ptr<HostCommunicator>> Create(
      std::vector<Device*> devices, DeviceAllocator* allocator,
      const HostCommunicatorOptions& options = {});

  // inferd::Communicator
  const char* kind() const override { return "copy"; }
  const std::vector<Device*>& devices() const override { return devices_; }
  absl::Status Broadcast(absl::Span<const CollectiveRank> ranks, int root, DataType dtype,
                         size_t count) override;
  absl::Status AllReduce(absl::Span<const CollectiveRank> ranks, DataType dtype, size_t count,
                         CollectiveReduceOp op) override;
  absl::Status AllGather(absl::Span<const CollectiveRank> ranks, DataType dtype,
                         size_t count) override;
  absl::Status ReduceScatter(absl::Span<const CollectiveRank> ranks, DataType dtype, size_t count,
                             CollectiveReduceOp op) override;

 private:
  class Run;

  HostCommunicator(std::vector<Device*> devices, DeviceAllocator* allocator,
                   const HostCommunicatorOptions& options)
      : devices_(std::move(devices)), allocator_(allocator), options_(options) {}

  // INVALID_ARGUMENT for a wrong rank count, a stream of another device, a
  // null buffer, an unsupported dtype or a byte size that overflows.
  absl::Status Check(const char* op, absl::Span<const CollectiveRank> ranks, DataType dtype,
                     size_t count, size_t per_rank_factor) const;
  // Reduces, on rank r, elements [begin, begin + n) of `src(q)` over q into
  // `dst` (a buffer of rank r), piece by piece through scratch.
  absl::Status ReduceSegment(Run& run, int r, absl::Span<const CollectiveRank> ranks,
                             DataType dtype, size_t src_offset_elems, size_t n, void* dst,
                             CollectiveReduceOp op);

  // Constant after construction.
  const std::vector<Device*> devices_;
  DeviceAllocator* const allocator_;
  const HostCommunicatorOptions options_;
};

}  // namespace inferd

#endif  // INFERD_CORE_DEVICE_HOST_COMMUNICATOR_H_
