// NcclCommunicator: the Communicator of a set of local CUDA devices over
// NCCL. One ncclComm_t per device, created together with ncclCommInitAll and
// reused for every collective; each collective is one NCCL group
// (ncclGroupStart/End around one call per rank), so a collective over N
// devices is issued from one thread without deadlock.
#ifndef INFERD_CORE_DEVICE_CUDA_NCCL_COMMUNICATOR_H_
#define INFERD_CORE_DEVICE_CUDA_NCCL_COMMUNICATOR_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "core/device/communicator.h"

struct ncclComm;

namespace inferd {

// Thread-compatible (one collective at a time, see Communicator). The
// devices are borrowed and must outlive it; destroy it only after the work
// it enqueued has completed.
class NcclCommunicator final : public Communicator {
 public:
  // INVALID_ARGUMENT for an empty list, a device that is not a CudaDevice,
  // or a repeated CUDA ordinal; the NCCL error naming the devices when
  // ncclCommInitAll fails.
  static absl::StatusOr<std::unique_ptr<NcclCommunicator>> Create(std::vector<Device*> devices);
  // Destroys the communicators (aborts them after an error).
  ~NcclCommunicator() override;

  // inferd::Communicator
  const char* kind() const override { return "nccl"; }
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
  NcclCommunicator(std::vector<Device*> devices, std::vector<ncclComm*> comms);

  // Checks the ranks, then runs `call(rank, stream)` for every rank inside
  // one NCCL group; converts NCCL errors (and asynchronous communicator
  // errors) into statuses naming `op`, the devices and NCCL's message.
  // `call` returns an ncclResult_t as int.
  absl::Status Group(const char* op, absl::Span<const CollectiveRank> ranks, DataType dtype,
                     absl::FunctionRef<int(int rank, void* cuda_stream)> call);
  absl::Status Error(const char* op, int result, int rank);

  // Constant after construction.
  const std::vector<Device*> devices_;
  const std::string device_names_;  // "devices [0, 1]"
  const std::vector<ncclComm*> comms_;

  bool failed_ = false;  // an NCCL call failed: abort instead of destroy
};

}  // namespace inferd

#endif  // INFERD_CORE_DEVICE_CUDA_NCCL_COMMUNICATOR_H_
