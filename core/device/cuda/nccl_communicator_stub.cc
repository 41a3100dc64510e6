// NewNcclCommunicator for builds without NCCL (no CUDA, or NCCL not found):
// the comm engine then runs collectives with copies (HostCommunicator).
#include "core/device/communicator.h"

namespace inferd {

absl::StatusOr<std::unique_ptr<Communicator>> NewNcclCommunicator(std::vector<Device*>) {
  return absl::UnimplementedError("this build of inferd has no NCCL");
}

bool BuiltWithNccl() { return false; }

}  // namespace inferd
