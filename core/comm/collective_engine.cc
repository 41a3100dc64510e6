#include "core/comm/collective_engine.h"

#include <algorithm>
#include <numeric>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "core/util/checked_math.h"
#include "core/util/logging.h"
#include "core/util/status_macros.h"

namespace inferd {
namespace {

const char* KindName(CollectiveKind kind) {
  switch (kind) {
    case CollectiveKind::kBroadcast:
      return "broadcast";
    case CollectiveKind::kAllReduce:
      return "all-reduce";
    case CollectiveKind::kAllGather:
      return "all-gather";
    case CollectiveKind::kReduceScatter:
      return "reduce-scatter";
  }
  return "collective";
}

}  // namespace

CommOp CommOpOf(CollectiveKind kind) {
  switch (kind) {
    case CollectiveKind::kBroadcast:
      return CommOp::kBroadcast;
    case CollectiveKind::kAllReduce:
      return CommOp::kAllReduce;
    case CollectiveKind::kAllGather:
      return CommOp::kAllGather;
    case CollectiveKind::kReduceScatter:
      return CommOp::kReduceScatter;
  }
  return CommOp::kAllReduce;
}

CollectiveEngine::CollectiveEngine(const CollectiveEngineOptions& options,
                                   std::vector<Device*> devices, MemoryEngine* memory, Clock* clock,
                                   CommMetrics* metrics, CommunicatorFactory factory)
    : options_(options),
      devices_(std::move(devices)),
      memory_(memory),
      clock_(clock),
      metrics_(metrics),
      scratch_(memory->NewScratchAllocator()),
      factory_(std::move(factory)) {
  const bool all_cuda = !devices_.empty() &&
                        std::all_of(devices_.begin(), devices_.end(),
                                    [](Device* d) { return d->info().kind == DeviceKind::kCuda; });
  nccl_enabled_ = options_.enable_nccl && all_cuda && BuiltWithNccl();
  if (!factory_) {
    factory_ = [this](std::vector<Device*> ds) -> absl::StatusOr<std::unique_ptr<Communicator>> {
      if (nccl_enabled_) return NewNcclCommunicator(std::move(ds));
      ASSIGN_OR_RETURN(std::unique_ptr<HostCommunicator> c,
                       HostCommunicator::Create(std::move(ds), scratch_.get(), options_.copy));
      return std::unique_ptr<Communicator>(std::move(c));
    };
  }
  for (int i = 0; i < kNumCommOps; ++i) totals_[i].op = static_cast<CommOp>(i);
}

absl::StatusOr<std::unique_ptr<CollectiveEngine>> CollectiveEngine::Create(
    const CollectiveEngineOptions& options, std::vector<Device*> devices, MemoryEngine* memory,
    Clock* clock, CommMetrics* metrics, CommunicatorFactory factory) {
  if (memory == nullptr || clock == nullptr || metrics == nullptr) {
    return absl::InvalidArgumentError("memory engine, clock and metrics must not be null");
  }
  if (options.stream_index < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("stream_index ", options.stream_index, " is negative"));
  }
  for (size_t i = 0; i < devices.size(); ++i) {
    if (devices[i] == nullptr || devices[i]->index() != static_cast<int>(i)) {
      return absl::InvalidArgumentError(
          absl::StrCat("device list entry ", i, " is null or has another index"));
    }
  }
  std::unique_ptr<CollectiveEngine> engine(new CollectiveEngine(
      options, std::move(devices), memory, clock, metrics, std::move(factory)));
  engine->worker_ = std::thread([e = engine.get()] { e->Loop(); });
  return engine;
}

CollectiveEngine::~CollectiveEngine() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  worker_.join();
  communicators_.clear();
}

void CollectiveEngine::Submit(CollectiveRequest request, Callback done) {
  {
    absl::MutexLock lock(&mu_);
    if (!stop_) {
      queue_.push_back(Job{std::move(request), std::move(done)});
      return;
    }
  }
  std::move(done)(absl::UnavailableError("the collective engine is shutting down"));
}

absl::StatusOr<CollectiveResult> CollectiveEngine::Run(CollectiveRequest request) {
  absl::Notification finished;
  std::optional<absl::StatusOr<CollectiveResult>> out;
  Submit(std::move(request), [&](absl::StatusOr<CollectiveResult> r) {
    out = std::move(r);
    finished.Notify();
  });
  finished.WaitForNotification();
  return *std::move(out);
}

void CollectiveEngine::Loop() {
  while (true) {
    Job job;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !queue_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (stop_) break;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    const CommOp op = CommOpOf(job.request.kind);
    absl::StatusOr<CollectiveResult> result = Execute(job.request);
    {
      absl::MutexLock lock(&mu_);
      OpStats& s = totals_[static_cast<int>(op)];
      if (result.ok()) {
        s.operations++;
        s.bytes += result->bytes;
        s.total_seconds += absl::ToDoubleSeconds(result->duration);
      } else {
        s.errors++;
      }
    }
    if (!result.ok()) metrics_->Errors(op).Increment();
    std::move(job.done)(std::move(result));
  }
  std::deque<Job> left;
  {
    absl::MutexLock lock(&mu_);
    left.swap(queue_);
  }
  for (Job& job : left) {
    std::move(job.done)(absl::CancelledError("the collective engine shut down"));
  }
}

absl::StatusOr<Communicator*> CollectiveEngine::GetCommunicator(const std::vector<int>& devices) {
  auto it = communicators_.find(devices);
  if (it != communicators_.end()) return it->second.get();
  std::vector<Device*> ds;
  for (int d : devices) ds.push_back(devices_[d]);
  ASSIGN_OR_RETURN(std::unique_ptr<Communicator> c, factory_(std::move(ds)));
  Communicator* raw = c.get();
  communicators_.emplace(devices, std::move(c));
  absl::MutexLock lock(&mu_);
  ++created_;
  communicators_cached_ = communicators_.size();
  return raw;
}

void CollectiveEngine::DropCommunicator(const std::vector<int>& devices) {
  if (communicators_.erase(devices) == 0) return;
  INFERD_LOG(kWarning, "dropping the communicator of devices [", absl::StrJoin(devices, ","),
             "] after an error; the next collective rebuilds it");
  absl::MutexLock lock(&mu_);
  ++rebuilds_;
  communicators_cached_ = communicators_.size();
}

absl::StatusOr<CollectiveResult> CollectiveEngine::Execute(const CollectiveRequest& request) {
  const char* name = KindName(request.kind);
  const size_t n = request.tensors.size();
  if (n == 0) return absl::InvalidArgumentError(absl::StrCat(name, ": tensors must not be empty"));
  if (request.kind == CollectiveKind::kBroadcast &&
      (request.root < 0 || request.root >= static_cast<int>(n))) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": root ", request.root, " is not an index into the ", n, " tensors"));
  }
  std::vector<TensorPin> pins;
  std::vector<TensorInfo> infos;
  absl::flat_hash_set<int> seen;
  for (size_t i = 0; i < n; ++i) {
    ASSIGN_OR_RETURN(TensorPin pin, memory_->Pin(request.tensors[i]));
    ASSIGN_OR_RETURN(TensorInfo info, memory_->GetTensorInfo(request.tensors[i]));
    const std::string field =
        absl::StrCat(name, ": tensors[", i, "] (", FormatTensorId(info.id), ")");
    if (!IsCollectiveDataType(info.dtype)) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, " has datatype ", DataTypeName(info.dtype), ", which collectives do not support"));
    }
    if (i > 0 && (info.dtype != infos[0].dtype || info.shape != infos[0].shape)) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, " differs from tensors[0] in datatype or shape"));
    }
    if (!seen.insert(info.device).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, " is on device ", info.device, ", like an earlier tensor"));
    }
    pins.push_back(std::move(pin));
    infos.push_back(std::move(info));
  }
  const DataType dtype = infos[0].dtype;
  const std::vector<int64_t>& shape = infos[0].shape;
  const uint64_t elements = infos[0].byte_size / DataTypeSize(dtype);
  // Ranks in ascending device order; order[r] is the request index of rank r.
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return infos[a].device < infos[b].device; });
  std::vector<int> device_set;
  for (size_t r = 0; r < n; ++r) device_set.push_back(infos[order[r]].device);

  std::vector<int64_t> out_shape;
  if (request.kind == CollectiveKind::kAllGather) {
    out_shape = shape.empty() ? std::vector<int64_t>{static_cast<int64_t>(n)} : shape;
    if (!shape.empty()) {
      uint64_t d0;
      if (!CheckedMul(static_cast<uint64_t>(shape[0]), n, &d0) || d0 > INT64_MAX) {
        return absl::InvalidArgumentError(absl::StrCat(name, ": output shape overflows"));
      }
      out_shape[0] = static_cast<int64_t>(d0);
    }
  } else if (request.kind == CollectiveKind::kReduceScatter) {
    if (shape.empty() || shape[0] % static_cast<int64_t>(n) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": the first dimension (", shape.empty() ? 0 : shape[0],
                       ") must be divisible by the number of tensors (", n, ")"));
    }
    out_shape = shape;
    out_shape[0] /= static_cast<int64_t>(n);
  }
  // New outputs, freed again unless the collective succeeds.
  std::vector<TensorId> outputs;
  std::vector<TensorPin> out_pins;
  auto free_outputs = [&] {
    out_pins.clear();
    for (const TensorId& id : outputs) memory_->FreeTensor(id).IgnoreError();
  };
  if (!out_shape.empty()) {
    for (size_t i = 0; i < n; ++i) {
      TensorRequest alloc;
      alloc.device = infos[i].device;
      alloc.dtype = dtype;
      alloc.shape = out_shape;
      alloc.owner = infos[i].owner;
      alloc.lease = request.lease > absl::ZeroDuration() ? request.lease : infos[i].lease;
      absl::StatusOr<TensorInfo> out = memory_->AllocateTensor(alloc);
      absl::StatusOr<TensorPin> pin =
          out.ok() ? memory_->Pin(out->id) : absl::StatusOr<TensorPin>(out.status());
      if (out.ok()) outputs.push_back(out->id);
      if (!pin.ok()) {
        free_outputs();
        return pin.status();
      }
      out_pins.push_back(*std::move(pin));
    }
  }

  absl::StatusOr<Communicator*> comm = GetCommunicator(device_set);
  if (!comm.ok()) {
    free_outputs();
    return comm.status();
  }
  std::vector<CollectiveRank> ranks(n);
  for (size_t r = 0; r < n; ++r) {
    const size_t i = order[r];
    Device& d = *devices_[infos[i].device];
    ranks[r].stream = &d.stream(options_.stream_index % d.num_streams());
    ranks[r].send = pins[i].device_ptr();
    ranks[r].recv = out_pins.empty() ? pins[i].device_ptr() : out_pins[i].device_ptr();
  }
  const absl::Time start = clock_->Now();
  absl::Status st;
  switch (request.kind) {
    case CollectiveKind::kBroadcast: {
      int root_rank = 0;
      for (size_t r = 0; r < n; ++r) {
        if (order[r] == static_cast<size_t>(request.root)) root_rank = static_cast<int>(r);
      }
      st = (*comm)->Broadcast(ranks, root_rank, dtype, elements);
      break;
    }
    case CollectiveKind::kAllReduce:
      st = (*comm)->AllReduce(ranks, dtype, elements, request.op);
      break;
    case CollectiveKind::kAllGather:
      st = (*comm)->AllGather(ranks, dtype, elements);
      break;
    case CollectiveKind::kReduceScatter:
      st = (*comm)->ReduceScatter(ranks, dtype, elements / n, request.op);
      break;
  }
  const std::string implementation = (*comm)->kind();
  // Wait for every rank (also after a failure: part of the work may run).
  for (size_t r = 0; r < n; ++r) {
    std::unique_ptr<Event> done = ranks[r].stream->device().CreateEvent();
    absl::Status wait = ranks[r].stream->RecordEvent(*done);
    if (wait.ok()) wait = done->Synchronize();
    if (!wait.ok()) {
      ranks[r].stream->Synchronize().IgnoreError();
      if (st.ok()) st = wait;
    }
  }
  if (!st.ok()) {
    DropCommunicator(device_set);
    free_outputs();
    return st;
  }
  const absl::Duration duration = clock_->Now() - start;
  out_pins.clear();
  pins.clear();

  CollectiveResult result;
  result.kind = request.kind;
  result.devices = device_set;
  result.bytes = infos[0].byte_size * n;
  result.duration = duration;
  result.implementation = implementation;
  for (size_t i = 0; i < n; ++i) {
    const TensorId& id = outputs.empty() ? request.tensors[i] : outputs[i];
    absl::StatusOr<TensorInfo> info = memory_->GetTensorInfo(id);
    result.outputs.push_back(info.ok() ? *std::move(info) : infos[i]);
  }
  const CommOp op = CommOpOf(request.kind);
  CommMetrics::LinkOp series = metrics_->ForLinkOp(absl::StrJoin(device_set, ","), op);
  series.bytes_total.Increment(static_cast<double>(result.bytes));
  series.operations_total.Increment();
  metrics_->Duration(op).Observe(absl::ToDoubleSeconds(duration));
  return result;
}

void CollectiveEngine::FillStats(CommStats* stats) {
  absl::MutexLock lock(&mu_);
  for (int i = 1; i < kNumCommOps; ++i) stats->ops[i] = totals_[i];
  stats->nccl_enabled = nccl_enabled_;
  stats->communicators = communicators_cached_;
  stats->communicators_created = created_;
  stats->communicator_rebuilds = rebuilds_;
}

}  // namespace inferd
