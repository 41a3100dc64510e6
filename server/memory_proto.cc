#include "server/memory_proto.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "core/util/echo.h"

namespace inferd {

absl::StatusOr<absl::Duration> LeaseFromProto(double seconds, absl::string_view field) {
  if (seconds < 0) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", seconds, " is negative"));
  }
  return seconds > 0 ? absl::Seconds(seconds) : absl::ZeroDuration();
}

absl::StatusOr<TensorRequest> TensorRequestFromProto(const v1::AllocateTensorRequest& req,
                                                     const std::string& field) {
  TensorRequest tr;
  if (req.has_device()) {
    if (req.device() < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".device: ", req.device(), " is negative (omit it for any device)"));
    }
    tr.device = req.device();
  }
  std::optional<DataType> dtype = ParseDataType(req.datatype());
  if (!dtype) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".datatype: unsupported datatype ", Echo(req.datatype())));
  }
  tr.dtype = *dtype;
  tr.shape.assign(req.shape().begin(), req.shape().end());
  tr.byte_size = req.byte_size();
  tr.owner = req.owner();
  absl::StatusOr<absl::Duration> lease =
      LeaseFromProto(req.lease_seconds(), absl::StrCat(field, ".lease_seconds"));
  if (!lease.ok()) return lease.status();
  tr.lease = *lease;
  return tr;
}

void MemoryStatsToProto(const std::vector<DeviceMemoryStats>& stats, v1::MemoryStats* out) {
  for (const DeviceMemoryStats& s : stats) {
    v1::DeviceMemoryStats* d = out->add_devices();
    d->set_device(s.device);
    d->set_total_bytes(s.total_bytes);
    d->set_reserved_bytes(s.reserved_bytes);
    d->set_allocated_bytes(s.allocated_bytes);
    d->set_free_bytes(s.free_bytes);
    d->set_largest_free_block_bytes(s.largest_free_block);
    d->set_fragmentation(s.fragmentation);
    d->set_overhead_ratio(s.overhead_ratio);
    d->set_active_tensors(s.active_tensors);
    d->set_tensor_bytes(s.tensor_bytes);
    d->set_pinned_tensors(s.pinned_tensors);
    d->set_segments(s.segments);
    d->set_allocations(s.allocations);
    d->set_frees(s.frees);
    d->set_gc_runs(s.gc_runs);
    d->set_gc_reclaimed_bytes(s.gc_reclaimed_bytes);
    d->set_compactions(s.compactions);
    d->set_compaction_moved_bytes(s.compaction_moved_bytes);
    d->set_lease_expirations(s.lease_expirations);
  }
}

absl::StatusOr<TensorListOptions> TensorListOptionsFromProto(const v1::ListTensorsRequest& req) {
  if (req.page_size() < 0 || req.page_size() > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size: ", req.page_size(), " is outside [0, 1000]"));
  }
  TensorListOptions o;
  o.owner = req.owner();
  o.device = req.has_device() ? req.device() : -1;
  o.page_size = req.page_size();
  o.page_token = req.page_token();
  return o;
}

absl::StatusOr<BatchSizeRequest> BatchSizeRequestFromProto(
    const v1::GetOptimalBatchSizeRequest& req) {
  BatchSizeRequest b;
  b.device = req.device();
  b.model_size_mb = req.model_size_mb();
  b.input_shape.assign(req.input_shape().begin(), req.input_shape().end());
  std::optional<DataType> dtype = ParseDataType(req.datatype().empty() ? "FP32" : req.datatype());
  if (!dtype) {
    return absl::InvalidArgumentError(
        absl::StrCat("datatype: unsupported datatype ", Echo(req.datatype())));
  }
  b.dtype = *dtype;
  b.output_bytes_per_sample = req.output_bytes_per_sample();
  b.activation_bytes_per_sample = req.activation_bytes_per_sample();
  b.max_batch_size = req.max_batch_size();
  return b;
}

void CompactionResultToProto(const CompactionResult& r, v1::CompactResponse* out) {
  out->set_moved_tensors(r.moved_tensors);
  out->set_moved_bytes(r.moved_bytes);
  out->set_released_bytes(r.released_bytes);
  out->set_fragmentation_before(r.fragmentation_before);
  out->set_fragmentation_after(r.fragmentation_after);
}

}  // namespace inferd
