// How long a model's executions take on the device, by batch size: what the
// batching stage predicts a running batch's end from (rule 5d,
// batching_stage.h).
//
// One running average per preferred batch size, learned from executions of
// exactly that many rows (compute_infer: on a GPU, the model's own time
// between CUDA events). A GEMM's time is a staircase, flat up to each tile
// boundary, and the preferred sizes name the ends of its steps
// (docs/SCHEDULER.md), so a batch of other rows is predicted to take what
// the smallest preferred size at or above it takes: an upper bound. Rows
// above the largest preferred size have no prediction.
//
// Not thread-safe: its batcher's mutex guards it.
#ifndef INFERD_CORE_SCHED_EXECUTION_ESTIMATE_H_
#define INFERD_CORE_SCHED_EXECUTION_ESTIMATE_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/time/time.h"

namespace inferd {

class ExecutionEstimate {
 public:
  ExecutionEstimate() = default;  // no sizes: predicts nothing
  // `sizes`: ascending, distinct, positive (the preferred batch sizes).
  explicit ExecutionEstimate(std::vector<int> sizes);

  // An execution of `rows` rows took `took` (> 0) on the device. Only one
  // of a preferred size teaches anything.
  void Learn(int64_t rows, absl::Duration took);
  // The predicted time of an execution of `rows` rows; nullopt while
  // unknown (no execution of the size that bounds it yet, or rows above
  // every preferred size).
  std::optional<absl::Duration> For(int64_t rows) const;

 private:
  std::vector<int> sizes_;
  std::vector<int64_t> ns_;  // per size; 0: nothing learned
};

}  // namespace inferd

#endif  // INFERD_CORE_SCHED_EXECUTION_ESTIMATE_H_
