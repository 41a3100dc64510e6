// MemoryBatchSizeFn: SchedulerOptions::optimal_batch_size over the memory
// engine's GetOptimalBatchSize, so the scheduler caps dynamic batches at
// what fits a device's free memory (issues 3 and 4). In core_sched_memory
// so that core_sched itself needs no memory engine.
#ifndef INFERD_CORE_SCHED_MEMORY_BATCH_SIZE_H_
#define INFERD_CORE_SCHED_MEMORY_BATCH_SIZE_H_

#include <cstdint>
#include <functional>

#include "absl/status/statusor.h"
#include "core/memory/memory_engine.h"
#include "core/memory/memory_types.h"
#include "core/models/model.h"

namespace inferd {

// Describes one sample of `model` for GetOptimalBatchSize: every input's and
// output's bytes past the batch dim (a variable dim counts as 1), no model
// bytes (the weights are resident already, so free memory excludes them),
// and no row limit: the scheduler divides the answer among a device's
// slots before applying the model's max_batch_size. INVALID_ARGUMENT when
// the model does not batch or a tensor has no fixed element size (BYTES).
absl::StatusOr<BatchSizeRequest> SampleBatchSizeRequest(const ModelSignature& model, int device);

// Returns a function that asks `engine` (borrowed; must outlive the
// function) for the rows of a model that fit a device now.
std::function<absl::StatusOr<int64_t>(const ModelSignature&, int)> MemoryBatchSizeFn(
    MemoryEngine* engine);

}  // namespace inferd

#endif  // INFERD_CORE_SCHED_MEMORY_BATCH_SIZE_H_
