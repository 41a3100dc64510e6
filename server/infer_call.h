// The protocol side of one inference, shared by ModelInfer and
// ModelStreamInfer: decoding a ModelInferRequest into a core InferRequest
// (typed or raw contents, or shared-memory regions; request parameters),
// and filling a ModelInferResponse from the outputs the execution produces
// (into the message, into shared-memory regions, or as classifications).
#ifndef INFERD_SERVER_INFER_CALL_H_
#define INFERD_SERVER_INFER_CALL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/types/span.h"
#include "core/config/config.h"
#include "core/infer/infer_request.h"
#include "core/models/model_registry.h"
#include "core/shm/shared_memory_registry.h"
#include "inference/grpc_service.pb.h"

namespace inferd {

// Where one model output of a request goes.
struct OutputRoute {
  bool wanted = false;
  int64_t classification = 0;           // > 0: top-K classes as BYTES
  std::optional<SharedMemoryView> shm;  // set: written to the region
};

// What a decoded request holds until its last response is sent. Not
// thread-safe; owned by one call.
struct DecodedCall {
  // Bytes decoded from typed contents (inputs point into them; reserved up
  // front so they never move).
  std::vector<std::string> storage;
  // Shared-memory inputs, held mapped while the request runs.
  std::vector<SharedMemoryView> input_regions;
  absl::InlinedVector<OutputRoute, 4> outputs;  // one per signature output
  // Request parameter triton_enable_empty_final_response.
  bool enable_empty_final_response = false;
};

// Parses `wire` into `request` (model looked up, inputs bound and
// validated) and `call`. `shm` may be null (shared-memory parameters are
// then refused). INVALID_ARGUMENT naming the field; NOT_FOUND for an
// unknown model or region.
absl::Status DecodeInferRequest(const inference::ModelInferRequest& wire,
                                const ModelRegistry& models, const LimitsConfig& limits,
                                const SharedMemoryRegistry* shm, InferRequest* request,
                                DecodedCall* call);

// Fills one ModelInferResponse with a request's outputs. Not thread-safe:
// the execution calls it in sequence (AllocateOutput calls, then Finish).
class ResponseFiller {
 public:
  // Borrows both; they must outlive the filler.
  ResponseFiller(inference::ModelInferResponse* response, DecodedCall* call)
      : response_(response), call_(call) {}

  // InferResponder::AllocateOutput: memory for output `index`, or null when
  // the client did not ask for it. Records an error (reported by Finish)
  // when the output does not fit its shared-memory range.
  void* AllocateOutput(int index, const TensorSpec& spec, const TensorDesc& desc);
  // InferResponder::AllocateDeviceOutput: the CUDA region of output `index`
  // when it lives on `device`, else null.
  void* AllocateDeviceOutput(int index, const TensorSpec& spec, const TensorDesc& desc,
                             Device& device);
  // Completes the response: turns classification outputs into BYTES and
  // copies outputs staged for a region on another device. Returns `status`,
  // or the first error recorded; on error the outputs are cleared.
  absl::Status Finish(const ModelSignature& sig, absl::Status status);
  // A decoupled model's response: fills the outputs from host tensors
  // (one per signature output, data null when left out) and finishes.
  absl::Status FillFromHost(const ModelSignature& sig, absl::Span<const HostTensor> outputs);

 private:
  struct Pending {
    int index;
    TensorDesc desc;
    std::string bytes;  // host staging (classification, or a region elsewhere)
    int output_slot;    // position in response_->outputs()
  };
  void* AddOutput(int index, const TensorSpec& spec, const TensorDesc& desc, bool raw);

  inference::ModelInferResponse* const response_;
  DecodedCall* const call_;
  absl::Status error_;
  std::vector<Pending> pending_;
};

// An InferResponder whose outputs go into a ResponseFiller: the responder
// of ModelInfer and of each ModelStreamInfer request.
class FillingResponder : public InferResponder {
 public:
  // `filler` (borrowed) may be a member of the derived class, not yet built.
  explicit FillingResponder(ResponseFiller* filler) : filler_(filler) {}

  // inferd::InferResponder
  void* AllocateOutput(int index, const TensorSpec& spec, const TensorDesc& desc) override {
    return filler_->AllocateOutput(index, spec, desc);
  }
  void* AllocateDeviceOutput(int index, const TensorSpec& spec, const TensorDesc& desc,
                             Device& device) override {
    return filler_->AllocateDeviceOutput(index, spec, desc, device);
  }

 private:
  ResponseFiller* const filler_;
};

}  // namespace inferd

#endif  // INFERD_SERVER_INFER_CALL_H_
