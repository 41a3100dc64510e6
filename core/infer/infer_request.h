// InferRequest: one inference as core/ sees it, independent of the wire
// protocol. Input bytes are borrowed from the caller (the gRPC message) and
// outputs are written straight into memory the caller provides through an
// InferResponder, so no tensor is copied on the host.
#ifndef INFERD_CORE_INFER_INFER_REQUEST_H_
#define INFERD_CORE_INFER_INFER_REQUEST_H_

#include <memory>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/config/config.h"
#include "core/models/model.h"
#include "core/util/priority.h"

namespace inferd {

struct InferInput {
  absl::string_view name;
  TensorDesc desc;
  const void* data = nullptr;  // host bytes, desc.byte_size long
  // Non-null: `data` is memory of this device (a pinned tensor), used in
  // place when the request runs there and copied from it otherwise.
  Device* device = nullptr;
  // Host bytes in page-locked memory: copied to a GPU directly, without
  // going through a staging block.
  bool pinned = false;
};

// Work a responder runs on a thread of its own (InferResponder::
// RunOnOwnThread). Not owned by the responder: it stays valid until Run.
class ResponderWork {
 public:
  virtual void Run() = 0;

 protected:
  ~ResponderWork() = default;
};

// Receives the results of one request. Implemented by the protocol adapter;
// must outlive the request (until Complete returns).
class InferResponder {
 public:
  virtual ~InferResponder() = default;
  // Returns host memory of `desc.byte_size` bytes for model output `index`
  // (signature order), or nullptr when the client did not ask for it.
  // Called once per output, from any thread, before Complete.
  virtual void* AllocateOutput(int index, const TensorSpec& spec, const TensorDesc& desc) = 0;
  // Returns memory of `device` where the model writes output `index`
  // directly (the output then stays on the device and AllocateOutput is not
  // called for it), or nullptr to receive it in host memory. Called once
  // per output before the model runs.
  virtual void* AllocateDeviceOutput(int index, const TensorSpec& spec, const TensorDesc& desc,
                                     Device& device) {
    return nullptr;
  }
  // True when AllocateOutput answers page-locked memory, which a GPU copies
  // into directly (without a staging block); memory that turns out
  // pageable is still copied into correctly, only synchronously.
  virtual bool HostOutputsPinned() const { return false; }
  // Called exactly once, from any thread, with the request's outcome.
  virtual void Complete(absl::Status status) = 0;
  // Runs `work` soon on a thread of the responder's own (the front end's
  // thread for this call) and returns true, or returns false (the default:
  // it has none) and the caller runs it. A finished batch hands each
  // member's delivery (its rows of the outputs, then Complete) to its
  // member this way, so that the members' responses are filled and sent
  // in parallel instead of one after another on the completing thread.
  virtual bool RunOnOwnThread(ResponderWork* work) { return false; }
  // Called once before Complete when the request ran on a device, with how
  // long the execution's phases took (a batch's members share its timing).
  virtual void ReportTiming(const ExecutionTiming& timing) {}
  // True once the client no longer wants the result: a queued request is
  // then dropped (CANCELLED) instead of run. Polled from any thread.
  virtual bool IsCancelled() const { return false; }
  // Decoupled models: delivers one of the request's 0..N responses, before
  // Complete (which ends the request). `outputs` as ResponseWriter::Send.
  // May block for flow control; CANCELLED when the client has gone. The
  // default refuses: only ModelStreamInfer takes several responses.
  virtual absl::Status SendResponse(absl::Span<const HostTensor> outputs) {
    return absl::FailedPreconditionError(
        "the model is decoupled (0..N responses per request): use ModelStreamInfer");
  }
};

struct InferRequest {
  std::shared_ptr<const Model> model;
  absl::InlinedVector<InferInput, 4> inputs;  // in signature order once bound
  ModelParams params;
  Priority priority = Priority::kNormal;
};

// Where a bound request goes to run: the direct dispatcher, or the
// scheduler with queues and batching. Thread-safe.
class InferSubmitter {
 public:
  virtual ~InferSubmitter() = default;
  // Runs `request` (already bound) and completes `responder` exactly once.
  virtual void Submit(InferRequest request, InferResponder* responder) = 0;
};

// The inferences one request holds (the statistics' inference_count): dim 0
// of its first input for a model that batches (max_batch_size > 0), else 1.
int64_t InferenceCount(const InferRequest& request);

// Orders `request->inputs` by the model's signature and checks names,
// counts, ranks, byte sizes (with checked arithmetic) and `limits`.
// INVALID_ARGUMENT naming the field, e.g. "inputs[1] (INPUT1): ...".
absl::Status BindInputs(const LimitsConfig& limits, InferRequest* request);

}  // namespace inferd

#endif  // INFERD_CORE_INFER_INFER_REQUEST_H_
