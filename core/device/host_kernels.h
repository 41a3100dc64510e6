// Host implementations of Kernels: plain loops run on a HostStream's worker.
#ifndef INFERD_CORE_DEVICE_HOST_KERNELS_H_
#define INFERD_CORE_DEVICE_HOST_KERNELS_H_

#include <memory>

#include "absl/functional/any_invocable.h"
#include "core/device/device.h"

namespace inferd {

// Returns the kernels of host devices. Thread-safe, stateless.
std::unique_ptr<Kernels> NewHostKernels();

// Enqueues `op` on `stream`, which must be a HostDevice stream.
absl::Status EnqueueOnHostStream(Stream& stream, absl::AnyInvocable<absl::Status() &&> op);

}  // namespace inferd

#endif  // INFERD_CORE_DEVICE_HOST_KERNELS_H_
