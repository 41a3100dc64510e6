// The Kernels of CUDA devices: Add, Scale, Reduce and DivideBy as
// grid-stride CUDA kernels with exactly the host kernels' semantics (see
// elementwise_ops.h), launched on a CudaStream.
#ifndef INFERD_CORE_DEVICE_CUDA_CUDA_KERNELS_H_
#define INFERD_CORE_DEVICE_CUDA_CUDA_KERNELS_H_

#include <memory>

#include "core/device/device.h"

namespace inferd {

// Returns the kernels of CUDA devices. Stateless; thread-safe. Each call
// checks its arguments (INVALID_ARGUMENT for an unsupported dtype, a stream
// that is not a CudaStream, a null or misaligned pointer, a divisor that is
// 0 in the element type) and returns the launch error, if any.
std::unique_ptr<Kernels> NewCudaKernels();

}  // namespace inferd

#endif  // INFERD_CORE_DEVICE_CUDA_CUDA_KERNELS_H_
