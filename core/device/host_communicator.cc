#include "core/device/host_communicator.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "core/util/checked_math.h"
#include "core/util/status_macros.h"

namespace inferd {
namespace {

Kernels::ReduceOp KernelOp(CollectiveReduceOp op) {
  switch (op) {
    case CollectiveReduceOp::kProd:
      return Kernels::ReduceOp::kProd;
    case CollectiveReduceOp::kMin:
      return Kernels::ReduceOp::kMin;
    case CollectiveReduceOp::kMax:
      return Kernels::ReduceOp::kMax;
    case CollectiveReduceOp::kSum:
    case CollectiveReduceOp::kAvg:
      return Kernels::ReduceOp::kSum;
  }
  return Kernels::ReduceOp::kSum;
}

const char* At(const void* p, size_t offset) { return static_cast<const char*>(p) + offset; }
char* At(void* p, size_t offset) { return static_cast<char*>(p) + offset; }

}  // namespace

// The resources of one collective call: its events and scratch buffers,
// kept alive until every rank's stream has run past the work that uses them
// (a callback on each stream drops its share). Not thread-safe.
class HostCommunicator::Run {
 public:
  Run(const std::vector<Device*>& devices, DeviceAllocator* allocator,
      absl::Span<const CollectiveRank> ranks)
      : devices_(devices), allocator_(allocator), ranks_(ranks), keep_(std::make_shared<Keep>()) {
    keep_->scratch.resize(ranks.size());
  }
  ~Run() { Finish().IgnoreError(); }

  // Makes every rank's later work wait for the work every rank enqueued so far.
  absl::Status Barrier() {
    const size_t n = ranks_.size();
    if (n < 2) return absl::OkStatus();
    std::vector<Event*> marks;
    for (size_t r = 0; r < n; ++r) {
      keep_->events.push_back(devices_[r]->CreateEvent());
      marks.push_back(keep_->events.back().get());
      RETURN_IF_ERROR(ranks_[r].stream->RecordEvent(*marks.back()));
    }
    for (size_t r = 0; r < n; ++r) {
      for (size_t q = 0; q < n; ++q) {
        if (q != r) RETURN_IF_ERROR(ranks_[r].stream->WaitEvent(*marks[q]));
      }
    }
    return absl::OkStatus();
  }

  // Returns a scratch buffer of `bytes` for rank r's stream.
  absl::StatusOr<void*> Scratch(int r, size_t bytes) {
    ASSIGN_OR_RETURN(void* p, allocator_->Allocate(*devices_[r], *ranks_[r].stream, bytes));
    keep_->scratch[r].push_back(p);
    return p;
  }

  // Enqueues the closing barrier and the release of events and scratch.
  absl::Status Finish() {
    if (finished_) return absl::OkStatus();
    finished_ = true;
    absl::Status st = Barrier();
    for (size_t r = 0; r < ranks_.size(); ++r) {
      Stream* stream = ranks_[r].stream;
      Device* device = devices_[r];
      DeviceAllocator* allocator = allocator_;
      std::vector<void*> scratch = std::move(keep_->scratch[r]);
      absl::Status cb = stream->ThenCallback(
          [keep = keep_, stream, device, allocator, scratch](absl::Status) mutable {
            for (void* p : scratch) allocator->Free(*device, *stream, p);
            keep.reset();
          });
      if (!cb.ok()) {
        // No callback will run: wait for the stream, then release here.
        stream->Synchronize().IgnoreError();
        for (void* p : scratch) allocator->Free(*device, *stream, p);
        if (st.ok()) st = cb;
      }
    }
    keep_.reset();
    return st;
  }

 private:
  struct Keep {
    std::vector<std::unique_ptr<Event>> events;
    std::vector<std::vector<void*>> scratch;
  };

  const std::vector<Device*>& devices_;
  DeviceAllocator* const allocator_;
  const absl::Span<const CollectiveRank> ranks_;
  std::shared_ptr<Keep> keep_;
  bool finished_ = false;
};

absl::StatusOr<std::unique_ptr<HostCommunicator>> HostCommunicator::Create(
    std::vector<Device*> devices, DeviceAllocator* allocator,
    const HostCommunicatorOptions& options) {
  if (devices.empty()) return absl::InvalidArgumentError("communicator: no devices");
  if (allocator == nullptr) return absl::InvalidArgumentError("communicator: null allocator");
  if (options.max_scratch_bytes == 0) {
    return absl::InvalidArgumentError("communicator: max_scratch_bytes must be positive");
  }
  absl::flat_hash_set<int> seen;
  for (Device* d : devices) {
    if (d == nullptr) return absl::InvalidArgumentError("communicator: null device");
    if (!seen.insert(d->index()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("communicator: device ", d->index(), " appears twice"));
    }
  }
  return std::unique_ptr<HostCommunicator>(
      new HostCommunicator(std::move(devices), allocator, options));
}

absl::Status HostCommunicator::Check(const char* op, absl::Span<const CollectiveRank> ranks,
                                     DataType dtype, size_t count, size_t per_rank_factor) const {
  if (ranks.size() != devices_.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": ", ranks.size(), " ranks for ", devices_.size(), " devices"));
  }
  if (!IsCollectiveDataType(dtype)) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": datatype ", DataTypeName(dtype), " is not supported"));
  }
  uint64_t bytes;
  if (!CheckedMul(count, DataTypeSize(dtype), &bytes) ||
      !CheckedMul(bytes, per_rank_factor, &bytes)) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": count ", count, " overflows"));
  }
  for (size_t r = 0; r < ranks.size(); ++r) {
    const CollectiveRank& k = ranks[r];
    if (k.stream == nullptr || &k.stream->device() != devices_[r]) {
      return absl::InvalidArgumentError(
          absl::StrCat(op, ": rank ", r, " needs a stream of device ", devices_[r]->index()));
    }
    if (count > 0 && (k.send == nullptr || k.recv == nullptr)) {
      return absl::InvalidArgumentError(absl::StrCat(op, ": rank ", r, " has a null buffer"));
    }
  }
  return absl::OkStatus();
}

absl::Status HostCommunicator::ReduceSegment(Run& run, int r,
                                             absl::Span<const CollectiveRank> ranks, DataType dtype,
                                             size_t src_offset_elems, size_t n, void* dst,
                                             CollectiveReduceOp op) {
  if (n == 0) return absl::OkStatus();
  const size_t es = DataTypeSize(dtype);
  const size_t piece_elems = std::max<size_t>(1, options_.max_scratch_bytes / es);
  const size_t scratch_bytes = std::min(n, piece_elems) * es;
  Stream& s = *ranks[r].stream;
  Kernels& kernels = devices_[r]->kernels();
  ASSIGN_OR_RETURN(void* acc, run.Scratch(r, scratch_bytes));
  void* tmp = nullptr;
  if (ranks.size() > 1) {
    ASSIGN_OR_RETURN(tmp, run.Scratch(r, scratch_bytes));
  }
  for (size_t done = 0; done < n; done += piece_elems) {
    const size_t m = std::min(piece_elems, n - done);
    const size_t offset = (src_offset_elems + done) * es;
    RETURN_IF_ERROR(s.CopyFromPeer(acc, *devices_[0], At(ranks[0].send, offset), m * es));
    for (size_t q = 1; q < ranks.size(); ++q) {
      RETURN_IF_ERROR(s.CopyFromPeer(tmp, *devices_[q], At(ranks[q].send, offset), m * es));
      RETURN_IF_ERROR(kernels.Reduce(s, dtype, KernelOp(op), tmp, acc, m));
    }
    if (op == CollectiveReduceOp::kAvg && ranks.size() > 1) {
      RETURN_IF_ERROR(kernels.DivideBy(s, dtype, acc, ranks.size(), m));
    }
    RETURN_IF_ERROR(s.CopyDeviceToDevice(At(dst, done * es), acc, m * es));
  }
  return absl::OkStatus();
}

absl::Status HostCommunicator::Broadcast(absl::Span<const CollectiveRank> ranks, int root,
                                         DataType dtype, size_t count) {
  RETURN_IF_ERROR(Check("broadcast", ranks, dtype, count, 1));
  if (root < 0 || root >= static_cast<int>(ranks.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("broadcast: root ", root, " is not a rank (", ranks.size(), " ranks)"));
  }
  const size_t bytes = count * DataTypeSize(dtype);
  if (bytes == 0) return absl::OkStatus();
  Run run(devices_, allocator_, ranks);
  RETURN_IF_ERROR(run.Barrier());
  for (size_t r = 0; r < ranks.size(); ++r) {
    if (ranks[r].recv == ranks[root].send) continue;
    RETURN_IF_ERROR(
        ranks[r].stream->CopyFromPeer(ranks[r].recv, *devices_[root], ranks[root].send, bytes));
  }
  return run.Finish();
}

absl::Status HostCommunicator::AllReduce(absl::Span<const CollectiveRank> ranks, DataType dtype,
                                         size_t count, CollectiveReduceOp op) {
  RETURN_IF_ERROR(Check("all-reduce", ranks, dtype, count, 1));
  if (count == 0) return absl::OkStatus();
  const size_t n = ranks.size();
  const size_t es = DataTypeSize(dtype);
  auto begin = [&](size_t r) { return count * r / n; };  // segment r = [begin(r), begin(r+1))
  Run run(devices_, allocator_, ranks);
  RETURN_IF_ERROR(run.Barrier());
  for (size_t r = 0; r < n; ++r) {
    const size_t b = begin(r), e = begin(r + 1);
    RETURN_IF_ERROR(ReduceSegment(run, static_cast<int>(r), ranks, dtype, b, e - b,
                                  At(ranks[r].recv, b * es), op));
  }
  RETURN_IF_ERROR(run.Barrier());
  for (size_t r = 0; r < n; ++r) {
    for (size_t q = 0; q < n; ++q) {
      const size_t b = begin(q), e = begin(q + 1);
      if (q == r || e == b) continue;
      RETURN_IF_ERROR(ranks[r].stream->CopyFromPeer(At(ranks[r].recv, b * es), *devices_[q],
                                                    At(ranks[q].recv, b * es), (e - b) * es));
    }
  }
  return run.Finish();
}

absl::Status HostCommunicator::AllGather(absl::Span<const CollectiveRank> ranks, DataType dtype,
                                         size_t count) {
  RETURN_IF_ERROR(Check("all-gather", ranks, dtype, count, ranks.size()));
  const size_t bytes = count * DataTypeSize(dtype);
  if (bytes == 0) return absl::OkStatus();
  Run run(devices_, allocator_, ranks);
  RETURN_IF_ERROR(run.Barrier());
  for (size_t r = 0; r < ranks.size(); ++r) {
    for (size_t q = 0; q < ranks.size(); ++q) {
      void* dst = At(ranks[r].recv, q * bytes);
      if (dst == ranks[q].send) continue;
      RETURN_IF_ERROR(ranks[r].stream->CopyFromPeer(dst, *devices_[q], ranks[q].send, bytes));
    }
  }
  return run.Finish();
}

absl::Status HostCommunicator::ReduceScatter(absl::Span<const CollectiveRank> ranks, DataType dtype,
                                             size_t count, CollectiveReduceOp op) {
  RETURN_IF_ERROR(Check("reduce-scatter", ranks, dtype, count, ranks.size()));
  if (count == 0) return absl::OkStatus();
  Run run(devices_, allocator_, ranks);
  RETURN_IF_ERROR(run.Barrier());
  for (size_t r = 0; r < ranks.size(); ++r) {
    RETURN_IF_ERROR(
        ReduceSegment(run, static_cast<int>(r), ranks, dtype, r * count, count, ranks[r].recv, op));
  }
  return run.Finish();
}

}  // namespace inferd
