// Declared signatures: the ModelSignature of a model whose inputs and
// outputs come from its config.yaml (mlp and plugin backends), and the
// request validation every such model shares.
//
// Shape rules: a fixed dim must match exactly; a -1 dim accepts any size,
// except the batch dim (dim 0 when max_batch_size > 0), which must be in
// [1, max_batch_size] and equal across inputs that have one. Each -1 in an
// output's dims takes the same-position dim of the first input.
//
// Thread-safety: pure functions.
#ifndef INFERD_CORE_MODELS_DECLARED_SIGNATURE_H_
#define INFERD_CORE_MODELS_DECLARED_SIGNATURE_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/config/model_config.h"
#include "core/models/model.h"

namespace inferd {

// Builds the signature of `spec` (name = `name`) for `platform`
// ("inferd_mlp", "inferd_plugin", "inferd_builtin"). INVALID_ARGUMENT
// naming the output when an output's -1 dim cannot be derived from the
// first input, or its datatype is BYTES and `bytes_outputs` is false.
absl::StatusOr<ModelSignature> DeclaredSignature(const ModelConfigSpec& spec,
                                                 absl::string_view name,
                                                 absl::string_view platform,
                                                 bool bytes_outputs = false);

// Checks `inputs` against `sig` and fills `outputs` (one per signature
// output). INVALID_ARGUMENT naming the tensor and field.
absl::Status ValidateDeclared(const ModelSignature& sig, absl::Span<const TensorDesc> inputs,
                              absl::Span<TensorDesc> outputs);

}  // namespace inferd

#endif  // INFERD_CORE_MODELS_DECLARED_SIGNATURE_H_
