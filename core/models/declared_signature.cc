#include "core/models/declared_signature.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/util/checked_math.h"

namespace inferd {
namespace {

std::string Where(const char* list, size_t i, const TensorSpec& spec) {
  return absl::StrCat(list, "[", i, "] (", spec.name, ")");
}

std::string ShapeText(absl::Span<const int64_t> shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

}  // namespace

absl::StatusOr<ModelSignature> DeclaredSignature(const ModelConfigSpec& spec,
                                                 absl::string_view name,
                                                 absl::string_view platform,
                                                 bool bytes_outputs) {
  ModelSignature sig;
  sig.name = std::string(name);
  sig.version = spec.version;
  sig.platform = std::string(platform);
  sig.max_batch_size = spec.max_batch_size;
  sig.preemptible = spec.scheduling.preemptible;
  sig.max_executions_per_device = spec.scheduling.max_executions_per_device;
  sig.overlap_executions = spec.scheduling.overlap_executions;
  sig.next_batch_lead_us = spec.scheduling.next_batch_lead_us;
  sig.decoupled = spec.decoupled;
  for (const ModelTensorConfig& t : spec.inputs) sig.inputs.push_back({t.name, t.dtype, t.dims});
  for (size_t i = 0; i < spec.outputs.size(); ++i) {
    const ModelTensorConfig& t = spec.outputs[i];
    if (t.dtype == DataType::kBytes && !bytes_outputs) {
      return absl::InvalidArgumentError(
          absl::StrCat("outputs[", i, "].datatype: BYTES outputs are not supported"));
    }
    for (size_t d = 0; d < t.dims.size(); ++d) {
      if (t.dims[d] == -1 && d >= spec.inputs[0].dims.size()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "outputs[", i, "].dims[", d, "]: -1 takes the same dim of inputs[0], which has only ",
            spec.inputs[0].dims.size(), " dims"));
      }
    }
    sig.outputs.push_back({t.name, t.dtype, t.dims});
  }
  return sig;
}

absl::Status ValidateDeclared(const ModelSignature& sig, absl::Span<const TensorDesc> inputs,
                              absl::Span<TensorDesc> outputs) {
  if (inputs.size() != sig.inputs.size() || outputs.size() != sig.outputs.size()) {
    return absl::InvalidArgumentError(absl::StrCat("inputs: model '", sig.name, "' expects ",
                                                   sig.inputs.size(), " input(s), got ",
                                                   inputs.size()));
  }
  const bool batched = sig.max_batch_size > 0;
  int64_t batch = -1;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const TensorSpec& spec = sig.inputs[i];
    const TensorDesc& in = inputs[i];
    if (in.dtype != spec.dtype) {
      return absl::InvalidArgumentError(absl::StrCat(Where("inputs", i, spec), ": datatype ",
                                                     DataTypeName(in.dtype), " but model '",
                                                     sig.name, "' takes ",
                                                     DataTypeName(spec.dtype)));
    }
    bool shape_ok = in.shape.size() == spec.shape.size();
    for (size_t d = 0; shape_ok && d < spec.shape.size(); ++d) {
      shape_ok = spec.shape[d] == -1 ? in.shape[d] >= 0 : in.shape[d] == spec.shape[d];
    }
    if (!shape_ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          Where("inputs", i, spec), ".shape: ", ShapeText(in.shape), " does not match ",
          ShapeText(spec.shape), " of model '", sig.name, "'"));
    }
    if (batched && spec.shape[0] == -1) {
      const int64_t b = in.shape[0];
      if (b < 1 || b > sig.max_batch_size) {
        return absl::InvalidArgumentError(absl::StrCat(Where("inputs", i, spec),
                                                       ".shape[0]: batch ", b,
                                                       " is out of range [1, ", sig.max_batch_size,
                                                       "] of model '", sig.name, "'"));
      }
      if (batch >= 0 && b != batch) {
        return absl::InvalidArgumentError(absl::StrCat(Where("inputs", i, spec),
                                                       ".shape[0]: batch ", b,
                                                       " differs from inputs[0]'s ", batch));
      }
      batch = b;
    }
    uint64_t elements = 0;
    uint64_t bytes = 0;
    if (in.dtype != DataType::kBytes &&
        (!ShapeElementCount(in.shape, &elements) ||
         !CheckedMul(elements, DataTypeSize(in.dtype), &bytes) || bytes != in.byte_size)) {
      return absl::InvalidArgumentError(absl::StrCat(Where("inputs", i, spec), ": ",
                                                     in.byte_size, " bytes do not match shape ",
                                                     ShapeText(in.shape)));
    }
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    const TensorSpec& spec = sig.outputs[i];
    TensorDesc& out = outputs[i];
    out.dtype = spec.dtype;
    out.shape.clear();
    for (size_t d = 0; d < spec.shape.size(); ++d) {
      out.shape.push_back(spec.shape[d] == -1 ? inputs[0].shape[d] : spec.shape[d]);
    }
    uint64_t elements = 0;
    if (!ShapeElementCount(out.shape, &elements) ||
        !CheckedMul(elements, DataTypeSize(out.dtype), &out.byte_size)) {
      return absl::InvalidArgumentError(absl::StrCat(Where("outputs", i, spec),
                                                     ": element count overflows"));
    }
  }
  return absl::OkStatus();
}

}  // namespace inferd
