#include "core/infer/infer_request.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/tensor/bytes_framing.h"
#include "core/util/checked_math.h"
#include "core/util/echo.h"

namespace inferd {

int64_t InferenceCount(const InferRequest& request) {
  if (request.model->signature().max_batch_size <= 0 || request.inputs.empty() ||
      request.inputs[0].desc.shape.empty() || request.inputs[0].desc.shape[0] < 1) {
    return 1;
  }
  return request.inputs[0].desc.shape[0];
}

absl::Status BindInputs(const LimitsConfig& limits, InferRequest* request) {
  const ModelSignature& sig = request->model->signature();
  auto& inputs = request->inputs;
  if (inputs.size() != sig.inputs.size()) {
    std::vector<absl::string_view> names;
    for (const auto& s : sig.inputs) names.push_back(s.name);
    return absl::InvalidArgumentError(absl::StrCat(
        "inputs: model '", sig.name, "' expects ", sig.inputs.size(), " input(s) (",
        absl::StrJoin(names, ", "), "), got ", inputs.size()));
  }
  // Reorder into signature order; inputs are few, so a quadratic match is cheapest.
  absl::InlinedVector<InferInput, 4> ordered(sig.inputs.size());
  absl::InlinedVector<bool, 4> seen(sig.inputs.size(), false);
  for (size_t i = 0; i < inputs.size(); ++i) {
    size_t j = 0;
    while (j < sig.inputs.size() && sig.inputs[j].name != inputs[i].name) ++j;
    if (j == sig.inputs.size()) {
      return absl::InvalidArgumentError(absl::StrCat("inputs[", i, "].name: model '", sig.name,
                                                     "' has no input named ",
                                                     Echo(inputs[i].name)));
    }
    if (seen[j]) {
      return absl::InvalidArgumentError(
          absl::StrCat("inputs[", i, "].name: input ", Echo(inputs[i].name), " given twice"));
    }
    seen[j] = true;
    ordered[j] = inputs[i];
  }
  for (size_t j = 0; j < ordered.size(); ++j) {
    const InferInput& in = ordered[j];
    if (in.desc.shape.size() > static_cast<size_t>(limits.max_dims)) {
      return absl::InvalidArgumentError(absl::StrCat("inputs[", j, "] (", in.name,
                                                     ").shape: rank ", in.desc.shape.size(),
                                                     " exceeds the limit of ", limits.max_dims));
    }
    uint64_t elements = 0;
    if (!ShapeElementCount(in.desc.shape, &elements)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "inputs[", j, "] (", in.name, ").shape: negative dimension or element count overflow"));
    }
    if (in.desc.byte_size > static_cast<uint64_t>(limits.max_tensor_bytes)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "inputs[", j, "] (", in.name, "): ", in.desc.byte_size,
          " bytes exceed limits.max_tensor_bytes (", limits.max_tensor_bytes, ")"));
    }
    if (in.desc.dtype == DataType::kBytes && in.device == nullptr) {
      const absl::Status layout = CheckBytesFraming(
          absl::MakeConstSpan(static_cast<const uint8_t*>(in.data), in.desc.byte_size), elements);
      if (!layout.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("inputs[", j, "] (", in.name, "): ", layout.message()));
      }
    } else if (in.desc.dtype != DataType::kBytes) {
      // (BYTES on a device: the memory engine pins only BYTES tensors
      // whose layout was checked when they were stored.)
      uint64_t expected = 0;
      if (!CheckedMul(elements, DataTypeSize(in.desc.dtype), &expected) ||
          expected != in.desc.byte_size) {
        return absl::InvalidArgumentError(absl::StrCat(
            "inputs[", j, "] (", in.name, "): shape holds ", elements, " ",
            DataTypeName(in.desc.dtype), " elements but ", in.desc.byte_size,
            " bytes were given"));
      }
    }
  }
  inputs = std::move(ordered);
  return absl::OkStatus();
}

}  // namespace inferd
