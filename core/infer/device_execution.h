// ExecuteOnDevice: runs one bound InferRequest on one device stream —
// allocate, copy inputs in, run the model, copy outputs out, complete —
// and ExecuteGroupOnDevice several side by side, sharing their copies and
// completion. The scheduler decides where and which; this decides nothing.
#ifndef INFERD_CORE_INFER_DEVICE_EXECUTION_H_
#define INFERD_CORE_INFER_DEVICE_EXECUTION_H_

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/types/span.h"
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
//
// With `model_stream` (not null, its stream not `stream`), the model runs
// on model_stream->stream and only the copies and the completion on
// `stream`: for a model whose executions queue on one stream one after
// another (ModelSignature::overlap_executions false), so that an
// execution's copies overlap the one before it instead of holding the GPU
// between the two. Three events order them: `stream` records
// inputs_copied after the inputs' copies, the model stream waits for it
// and records started, then computed after the model; `stream` waits for
// started before its second time mark and for computed before the output
// copies. So compute_input includes the wait for the model stream, and
// compute_infer is the model's own time. The events are the caller's, for
// this execution alone until it completes.
struct ModelStream {
  Stream* stream = nullptr;
  Event* inputs_copied = nullptr;
  Event* started = nullptr;
  Event* computed = nullptr;
};
void ExecuteOnDevice(InferRequest request, Stream& stream, DeviceAllocator& allocator,
                     InferResponder* responder, const ModelStream* model_stream = nullptr);

// One request of a group (ExecuteGroupOnDevice).
struct GroupedRequest {
  InferRequest* request = nullptr;      // borrowed until `done` has run
  InferResponder* responder = nullptr;  // outputs and timing; never Completed here
  // The request's outcome, set before `done`. One that is not OK on entry
  // (cancelled, past its deadline) is skipped and keeps it.
  absl::Status status;
};

// Runs `requests` (models neither decoupled nor host-executed, each as
// ExecuteOnDevice would) on `stream` as one execution: one device buffer
// and one staging block for all, their staged inputs in one copy and their
// staged outputs in one, one stream callback for all; the requests of one
// model run in one Model::ExecuteMany call (the identity builtins make it
// one device-to-device copy). Each request is validated on its own and
// fails alone, as does one whose model call fails; a failure of the
// shared work (allocation, a copy, the stream) fails every request.
// `done` runs exactly once, after every request's status is set, with the
// shared work's status: from the stream's callback thread, or before this
// returns when nothing was enqueued. Each request that ran reports an
// equal share of the execution's time.
void ExecuteGroupOnDevice(absl::Span<GroupedRequest> requests, Stream& stream,
                          DeviceAllocator& allocator,
                          absl::AnyInvocable<void(absl::Status) &&> done);

}  // namespace inferd

#endif  // INFERD_CORE_INFER_DEVICE_EXECUTION_H_
