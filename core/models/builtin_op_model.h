// BuiltinOpModel: a repository model (config.yaml `backend: builtin`) whose
// computation is one of inferd's own ops, under the signature the config
// declares. It serves Triton's quick-start models so that Triton's example
// clients run unchanged (examples/triton_models/):
//
//   add_sub         OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1, any
//                   numeric type, on the device (simple, simple_int8)
//   string_add_sub  the same on BYTES decimal integers, on the host
//                   (simple_string)
//   identity        OUTPUT0 = INPUT0, any type, on the device (simple_identity)
//   repeat          decoupled: for each element i of IN (INT32) one response
//                   {OUT = IN[i], IDX = i} after DELAY[i] ms, then WAIT[0] ms
//                   before the request ends (repeat_int32)
//
// Thread-safety: thread-safe. A repeat model runs its requests on one
// worker thread of its own, in arrival order.
#ifndef INFERD_CORE_MODELS_BUILTIN_OP_MODEL_H_
#define INFERD_CORE_MODELS_BUILTIN_OP_MODEL_H_

#include <memory>

#include "absl/status/statusor.h"
#include "core/config/model_config.h"
#include "core/models/model.h"

namespace inferd {

// Builds the model of `op` with `signature` (from the config).
// INVALID_ARGUMENT naming the config key when the declared inputs and
// outputs do not fit the op.
absl::StatusOr<std::shared_ptr<const Model>> CreateBuiltinOpModel(BuiltinOp op,
                                                                  ModelSignature signature);

}  // namespace inferd

#endif  // INFERD_CORE_MODELS_BUILTIN_OP_MODEL_H_
