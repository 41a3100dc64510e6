// ExecuteOnDevice: runs one bound InferRequest on one device stream —
// allocate, copy inputs in, run the model, copy outputs out, complete. The
// scheduler decides where; this decides nothing.
#ifndef INFERD_CORE_INFER_DEVICE_EXECUTION_H_
#define INFERD_CORE_INFER_DEVICE_EXECUTION_H_

#include "core/device/device.h"
#include "core/device/device_allocator.h"
#include "core/infer/infer_request.h"

namespace inferd {

// Validates `request` against its model, enqueues its work on `stream` and
// returns. `responder->Complete` is called exactly once: from the stream's
// callback thread on success or a device error, or before this returns on
// a synchronous failure (validation, allocation, launch). Input host bytes
// must stay valid until Complete. Inputs with a `device` are read in place
// when it is the stream's device and copied from that peer otherwise;
// outputs for which the responder's AllocateDeviceOutput returns memory are
// written there and not copied to the host. Host inputs and outputs are
// staged through pinned memory when `allocator` gives a staging block
// (inputs copied into it before their upload is enqueued, outputs copied
// out of it on the callback thread before Complete), so no copy into
// pageable memory holds the calling thread until the stream has run.
void ExecuteOnDevice(InferRequest request, Stream& stream, DeviceAllocator& allocator,
                     InferResponder* responder);

}  // namespace inferd

#endif  // INFERD_CORE_INFER_DEVICE_EXECUTION_H_
