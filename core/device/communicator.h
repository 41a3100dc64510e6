// Communicator: collective operations (broadcast, all-reduce, all-gather,
// reduce-scatter) over one buffer per device of a fixed, ordered device set.
// Two implementations: NcclCommunicator (core/device/cuda/, one NCCL group
// call per collective) and HostCommunicator (stream copies plus
// Kernels::Reduce on any Device: the implementation for host devices and the
// CUDA fallback when NCCL is off).
//
// Calls enqueue work and return: the work runs on the streams passed in, in
// their order, after the work already enqueued there; the caller waits on
// those streams (events) before it reads results or frees buffers. Every
// rank's stream must belong to that rank's device. The returned status is
// the synchronous one (bad arguments, a launch or NCCL error).
#ifndef INFERD_CORE_DEVICE_COMMUNICATOR_H_
#define INFERD_CORE_DEVICE_COMMUNICATOR_H_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/device/device.h"
#include "core/tensor/dtype.h"

namespace inferd {

class DeviceAllocator;

enum class CollectiveReduceOp { kSum, kProd, kMin, kMax, kAvg };

// "sum", "prod", "min", "max", "avg".
const char* CollectiveReduceOpName(CollectiveReduceOp op);

// One rank's part of a collective: the stream to run on and its buffers
// (device pointers of the rank's device). `send` may equal `recv` (in place)
// where the operation says so.
struct CollectiveRank {
  Stream* stream = nullptr;
  const void* send = nullptr;
  void* recv = nullptr;
};

// True for the element types NCCL reduces: INT8, UINT8, INT32, UINT32,
// INT64, UINT64, FP16, FP32, FP64, BF16.
bool IsCollectiveDataType(DataType dtype);

// Thread-compatible: one collective at a time per communicator (the comm
// engine serializes them), as NCCL requires of a communicator.
class Communicator {
 public:
  virtual ~Communicator() = default;

  // "nccl" or "copy".
  virtual const char* kind() const = 0;
  // Devices in rank order.
  virtual const std::vector<Device*>& devices() const = 0;

  // Copies root's `count` elements of `send` into every rank's `recv`
  // (in place on the root when its send == recv).
  virtual absl::Status Broadcast(absl::Span<const CollectiveRank> ranks, int root, DataType dtype,
                                 size_t count) = 0;
  // recv[r][i] = op over ranks q of send[q][i], for `count` elements. In
  // place allowed (send == recv on every rank).
  virtual absl::Status AllReduce(absl::Span<const CollectiveRank> ranks, DataType dtype,
                                 size_t count, CollectiveReduceOp op) = 0;
  // recv[r] (N * count elements) = send[0] ++ send[1] ++ ... ++ send[N-1].
  // Buffers must not overlap.
  virtual absl::Status AllGather(absl::Span<const CollectiveRank> ranks, DataType dtype,
                                 size_t count) = 0;
  // recv[r] (count elements) = op over q of send[q][r*count, (r+1)*count);
  // each send holds N * count elements. Buffers must not overlap.
  virtual absl::Status ReduceScatter(absl::Span<const CollectiveRank> ranks, DataType dtype,
                                     size_t count, CollectiveReduceOp op) = 0;
};

// Returns an NCCL communicator over `devices` (all CUDA devices, each at
// most once), created with ncclCommInitAll. Implemented in
// core/device/cuda/; UNIMPLEMENTED in builds without NCCL; the NCCL error,
// naming the devices, when initialization fails.
absl::StatusOr<std::unique_ptr<Communicator>> NewNcclCommunicator(std::vector<Device*> devices);

// True when this build links NCCL.
bool BuiltWithNccl();

}  // namespace inferd

#endif  // INFERD_CORE_DEVICE_COMMUNICATOR_H_
