#include "core/sched/memory_batch_size.h"

#include "absl/strings/str_cat.h"
#include "core/util/checked_math.h"
#include "core/util/status_macros.h"

namespace inferd {
namespace {

// Bytes of one sample of `spec` (dims past the batch dim; -1 counts as 1).
absl::StatusOr<uint64_t> SampleBytes(const TensorSpec& spec, const std::string& model) {
  const size_t element = DataTypeSize(spec.dtype);
  if (element == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("model '", model, "': tensor '", spec.name, "' has no fixed element size"));
  }
  uint64_t bytes = element;
  for (size_t d = 1; d < spec.shape.size(); ++d) {
    const uint64_t dim = spec.shape[d] > 0 ? static_cast<uint64_t>(spec.shape[d]) : 1;
    if (!CheckedMul(bytes, dim, &bytes)) {
      return absl::InvalidArgumentError(
          absl::StrCat("model '", model, "': tensor '", spec.name, "' overflows"));
    }
  }
  return bytes;
}

}  // namespace

absl::StatusOr<BatchSizeRequest> SampleBatchSizeRequest(const ModelSignature& model, int device) {
  if (model.max_batch_size <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("model '", model.name, "' has no batch dimension"));
  }
  uint64_t in = 0;
  uint64_t out = 0;
  for (const TensorSpec& t : model.inputs) {
    ASSIGN_OR_RETURN(const uint64_t b, SampleBytes(t, model.name));
    if (!CheckedAdd(in, b, &in)) return absl::InvalidArgumentError("input bytes overflow");
  }
  for (const TensorSpec& t : model.outputs) {
    ASSIGN_OR_RETURN(const uint64_t b, SampleBytes(t, model.name));
    if (!CheckedAdd(out, b, &out)) return absl::InvalidArgumentError("output bytes overflow");
  }
  if (in > static_cast<uint64_t>(INT64_MAX)) {
    return absl::InvalidArgumentError("input bytes overflow");
  }
  BatchSizeRequest request;
  request.device = device;
  request.model_size_mb = 0;
  request.input_shape = {static_cast<int64_t>(in)};  // all inputs as bytes
  request.dtype = DataType::kUint8;
  request.output_bytes_per_sample = out;
  request.max_batch_size = 0;  // the scheduler splits, then clips
  return request;
}

std::function<absl::StatusOr<int64_t>(const ModelSignature&, int)> MemoryBatchSizeFn(
    MemoryEngine* engine) {
  return [engine](const ModelSignature& model, int device) -> absl::StatusOr<int64_t> {
    ASSIGN_OR_RETURN(BatchSizeRequest request, SampleBatchSizeRequest(model, device));
    return engine->GetOptimalBatchSize(request);
  };
}

}  // namespace inferd
