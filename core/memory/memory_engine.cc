#include "core/memory/memory_engine.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/util/checked_math.h"
#include "core/util/logging.h"
#include "core/util/status_macros.h"

namespace inferd {
namespace {

constexpr uint64_t kMiB = 1ull << 20;
constexpr size_t kMaxOwnerBytes = 256;

}  // namespace

// Per-device state. Thread-safe: constant fields, atomics, and `exported`
// under export_mu.
struct MemoryEngine::DeviceState {
  DeviceState(Device* d, uint64_t total, uint64_t cap, Stream* s, std::unique_ptr<CachingPool> p,
              MemoryMetrics::Device m)
      : device(d),
        index(d->index()),
        total_bytes(total),
        pool_cap(cap),
        stream(s),
        pool(std::move(p)),
        metrics(m) {}

  // Constant after construction.
  Device* const device;
  const int index;
  const uint64_t total_bytes;
  const uint64_t pool_cap;
  Stream* const stream;
  const std::unique_ptr<CachingPool> pool;
  const MemoryMetrics::Device metrics;
  // Null for host devices and when staging is off.
  std::unique_ptr<StagingPool> staging;

  std::atomic<uint64_t> gc_runs{0};
  std::atomic<uint64_t> gc_reclaimed_bytes{0};
  std::atomic<uint64_t> compactions{0};
  std::atomic<uint64_t> compaction_moved_bytes{0};
  std::atomic<uint64_t> lease_expirations{0};
  std::atomic<int64_t> last_alloc_unix_ns{0};
  std::atomic<uint64_t> alloc_events{0};
  std::atomic<uint64_t> alloc_events_at_compaction{~0ull};
  // Pool allocations + frees when free blocks were last discarded.
  std::atomic<uint64_t> pool_events_at_discard{0};
  std::atomic<bool> compacting{false};

  // Counter values already added to the Prometheus counters.
  struct Exported {
    uint64_t allocations = 0, frees = 0, gc_runs = 0, gc_reclaimed_bytes = 0, compactions = 0,
             compaction_moved_bytes = 0, lease_expirations = 0;
  };
  absl::Mutex export_mu;
  Exported exported ABSL_GUARDED_BY(export_mu);
};

MemoryEngine::MemoryEngine(const MemoryEngineOptions& options, Clock* clock,
                           prometheus::Registry& registry)
    : options_(options), clock_(clock), metrics_(registry) {}

absl::StatusOr<std::unique_ptr<MemoryEngine>> MemoryEngine::Create(
    const MemoryEngineOptions& options, const std::vector<Device*>& devices, Clock* clock,
    prometheus::Registry& registry) {
  auto invalid = [](auto&&... parts) { return absl::InvalidArgumentError(absl::StrCat(parts...)); };
  // The ranges of the thresholds are those of their config keys
  // (memory_gc_threshold [0, 1], memory_defrag_threshold (0, 1]).
  auto in_unit = [](double v) { return v > 0 && v <= 1; };
  if (!(options.gc_threshold >= 0 && options.gc_threshold <= 1)) {
    return invalid("gc_threshold ", options.gc_threshold, " is not in [0, 1]");
  }
  if (!in_unit(options.defrag_threshold)) {
    return invalid("defrag_threshold ", options.defrag_threshold, " is not in (0, 1]");
  }
  if (options.max_pool_mb == 0 && !in_unit(options.max_pool_fraction)) {
    return invalid("max_pool_fraction ", options.max_pool_fraction, " is not in (0, 1]");
  }
  if (!(options.batch_safety_margin >= 0 && options.batch_safety_margin < 1)) {
    return invalid("batch_safety_margin ", options.batch_safety_margin, " is not in [0, 1)");
  }
  if (options.enable_monitoring && options.monitor_interval <= absl::ZeroDuration()) {
    return invalid("monitor_interval ", absl::FormatDuration(options.monitor_interval),
                   " must be positive");
  }
  if (options.default_lease <= absl::ZeroDuration() || options.max_lease < options.default_lease) {
    return invalid("default_lease ", absl::FormatDuration(options.default_lease),
                   " must be positive and at most max_lease ",
                   absl::FormatDuration(options.max_lease));
  }
  if (options.pool_size_mb > (~0ull >> 20) || options.max_pool_mb > (~0ull >> 20)) {
    return invalid("pool_size_mb ", options.pool_size_mb, " or max_pool_mb ", options.max_pool_mb,
                   " is too large");
  }
  if (options.staging_mb > (~0ull >> 20)) {
    return invalid("staging_mb ", options.staging_mb, " is too large");
  }
  if (clock == nullptr) return invalid("clock must not be null");
  std::unique_ptr<MemoryEngine> engine(new MemoryEngine(options, clock, registry));
  for (Device* device : devices) {
    if (device == nullptr) return invalid("device list holds a null device");
    if (engine->Find(device->index()).ok()) {
      return invalid("device index ", device->index(), " appears twice");
    }
    if (options.stream_index < 0 || options.stream_index >= device->num_streams()) {
      return invalid("stream_index ", options.stream_index, " is not a stream of device ",
                     device->index(), " (", device->num_streams(), " streams)");
    }
    uint64_t total = device->info().total_memory_bytes;
    if (auto mem = device->GetMemoryInfo(); mem.ok() && mem->total_bytes > 0) {
      total = mem->total_bytes;
    }
    const uint64_t cap =
        options.max_pool_mb > 0
            ? options.max_pool_mb * kMiB
            : static_cast<uint64_t>(static_cast<double>(total) * options.max_pool_fraction);
    const uint64_t initial = options.pool_size_mb * kMiB;
    if (initial > cap) {
      return invalid("pool_size_mb ", options.pool_size_mb, " exceeds the pool cap of ", cap,
                     " bytes on device ", device->index());
    }
    CachingPoolOptions po;
    po.initial_bytes = initial;
    po.max_reserved_bytes = cap;
    po.release_free_segments_on_grow = options.release_segments_on_grow;
    ASSIGN_OR_RETURN(std::unique_ptr<CachingPool> pool, CachingPool::Create(*device, po));
    auto state =
        std::make_unique<DeviceState>(device, total, cap, &device->stream(options.stream_index),
                                      std::move(pool), engine->metrics_.ForDevice(device->index()));
    state->metrics.total_bytes.Set(static_cast<double>(total));
    if (options.staging_mb > 0 && device->info().kind != DeviceKind::kHost) {
      StagingPoolOptions so;
      so.max_total_bytes = options.staging_mb * kMiB;
      so.max_block_bytes = std::min(so.max_block_bytes, so.max_total_bytes);
      state->staging = std::make_unique<StagingPool>(*device, so);
    }
    engine->devices_.push_back(std::move(state));
  }
  TensorStoreOptions so;
  so.default_lease = options.default_lease;
  so.max_lease = options.max_lease;
  engine->store_ = std::make_unique<TensorStore>(clock, so);
  engine->GetStats();
  if (options.enable_monitoring) {
    engine->monitor_ = std::thread([e = engine.get()] { e->MonitorLoop(); });
  }
  return engine;
}

MemoryEngine::~MemoryEngine() {
  {
    absl::MutexLock lock(&monitor_mu_);
    stop_ = true;
  }
  if (monitor_.joinable()) monitor_.join();
  if (store_ != nullptr) {
    for (RemovedTensor& t : store_->RemoveAll()) {
      bytes_layouts_.Forget(t.info.id);
      if (auto d = Find(t.info.device); d.ok()) ReleaseTensorMemory(**d, t.device_ptr);
    }
  }
}

void MemoryEngine::MonitorLoop() {
  while (true) {
    monitor_mu_.Lock();
    monitor_mu_.AwaitWithTimeout(absl::Condition(&stop_), options_.monitor_interval);
    const bool stop = stop_;
    monitor_mu_.Unlock();
    if (stop) return;
    RunMaintenanceOnce();
  }
}

absl::StatusOr<MemoryEngine::DeviceState*> MemoryEngine::Find(int device) const {
  for (const auto& d : devices_) {
    if (d->index == device) return d.get();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("device ", device, " does not exist (", devices_.size(), " devices)"));
}

uint64_t MemoryEngine::FreeBytes(DeviceState& d, const PoolStats& pool) const {
  uint64_t room = d.pool_cap > pool.reserved_bytes ? d.pool_cap - pool.reserved_bytes : 0;
  if (auto mem = d.device->GetMemoryInfo(); mem.ok()) room = std::min(room, mem->free_bytes);
  return pool.reserved_bytes - pool.allocated_bytes + room;
}

void MemoryEngine::ReleaseTensorMemory(DeviceState& d, void* ptr) {
  absl::Status st = d.pool->Free(ptr, *d.stream);
  if (!st.ok()) INFERD_LOG(kError, "device ", d.index, ": freeing tensor memory: ", st.message());
}

uint64_t MemoryEngine::ReclaimExpired(DeviceState& d, uint64_t* count) {
  uint64_t bytes = 0;
  std::vector<RemovedTensor> expired = store_->RemoveExpired(d.index);
  for (RemovedTensor& t : expired) {
    bytes_layouts_.Forget(t.info.id);
    bytes += t.info.byte_size;
    ReleaseTensorMemory(d, t.device_ptr);
    INFERD_LOG(kDebug, "device ", d.index, ": lease of tensor ", FormatTensorId(t.info.id),
               " (owner ", t.info.owner, ") expired");
  }
  d.lease_expirations += expired.size();
  *count += expired.size();
  return bytes;
}

absl::StatusOr<void*> MemoryEngine::AllocateOnDevice(DeviceState& d, uint64_t bytes,
                                                     Stream& stream) {
  d.last_alloc_unix_ns = absl::ToUnixNanos(clock_->Now());
  d.alloc_events++;
  absl::StatusOr<void*> p = d.pool->Allocate(bytes, stream);
  if (p.ok() || !absl::IsResourceExhausted(p.status())) return p;
  // GC, in order: expired leases, then cached segments (the first one too).
  d.gc_runs++;
  uint64_t expired = 0;
  const uint64_t reclaimed = ReclaimExpired(d, &expired);
  d.gc_reclaimed_bytes += reclaimed;
  if (reclaimed > 0) {
    p = d.pool->Allocate(bytes, stream);
    if (p.ok()) return p;
  }
  ReleaseOptions release;
  release.include_initial_segment = true;
  const uint64_t released = d.pool->ReleaseCached(release);
  d.gc_reclaimed_bytes += released;
  if (released > 0) {
    p = d.pool->Allocate(bytes, stream);
    if (p.ok()) return p;
  }
  if (!absl::IsResourceExhausted(p.status())) return p;
  return absl::ResourceExhaustedError(
      absl::StrCat("device ", d.index, ": cannot allocate ", bytes, " bytes (free ",
                   FreeBytes(d, d.pool->GetStats()), " of ", d.total_bytes, " bytes after GC)"));
}

absl::StatusOr<TensorInfo> MemoryEngine::AllocateTensor(const TensorRequest& request) {
  if (request.dtype == DataType::kInvalid) {
    return absl::InvalidArgumentError("dtype must be set");
  }
  if (options_.max_dims > 0 && request.shape.size() > static_cast<size_t>(options_.max_dims)) {
    return absl::InvalidArgumentError(absl::StrCat("shape: rank ", request.shape.size(),
                                                   " exceeds limits.max_dims (",
                                                   options_.max_dims, ")"));
  }
  uint64_t bytes = request.byte_size;
  uint64_t elements = 0;
  if (!ShapeElementCount(request.shape, &elements)) {
    return absl::InvalidArgumentError("shape has a negative dimension or its size overflows");
  }
  if (request.dtype != DataType::kBytes) {
    if (!CheckedMul(elements, DataTypeSize(request.dtype), &bytes)) {
      return absl::InvalidArgumentError(
          "shape has a negative dimension or its byte size overflows");
    }
    if (request.byte_size != 0 && request.byte_size != bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("byte_size ", request.byte_size, " does not match the ", bytes,
                       " bytes of a ", DataTypeName(request.dtype), " tensor of that shape"));
    }
  } else if (bytes == 0) {
    return absl::InvalidArgumentError("byte_size must be set for a BYTES tensor");
  }
  if (options_.max_tensor_bytes > 0 && bytes > options_.max_tensor_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("byte_size ", bytes, " exceeds the limit of ",
                                                   options_.max_tensor_bytes, " bytes"));
  }
  if (request.owner.size() > kMaxOwnerBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("owner is ", request.owner.size(), " bytes; at most ", kMaxOwnerBytes));
  }
  if (request.lease > options_.max_lease) {
    return absl::InvalidArgumentError(absl::StrCat("lease ", absl::FormatDuration(request.lease),
                                                   " exceeds the maximum of ",
                                                   absl::FormatDuration(options_.max_lease)));
  }
  DeviceState* d = nullptr;
  if (request.device == TensorRequest::kAnyDevice) {
    uint64_t best = 0;
    for (const auto& cand : devices_) {
      const uint64_t free = FreeBytes(*cand, cand->pool->GetStats());
      if (d == nullptr || free > best) {
        d = cand.get();
        best = free;
      }
    }
    if (d == nullptr) return absl::FailedPreconditionError("no devices");
  } else {
    ASSIGN_OR_RETURN(d, Find(request.device));
  }
  ASSIGN_OR_RETURN(void* ptr, AllocateOnDevice(*d, bytes, *d->stream));
  NewTensor t;
  t.dtype = request.dtype;
  t.shape = request.shape;
  t.device = d->index;
  t.byte_size = bytes;
  t.owner = request.owner;
  t.lease = request.lease;
  t.device_ptr = ptr;
  if (options_.zero_new_tensors && bytes > 0) {
    absl::Status st = d->stream->Memset(ptr, 0, bytes);
    if (st.ok()) {
      t.ready = std::shared_ptr<Event>(d->device->CreateEvent());
      st = d->stream->RecordEvent(*t.ready);
      if (!st.ok()) d->stream->Synchronize().IgnoreError();
    }
    if (!st.ok()) {
      ReleaseTensorMemory(*d, ptr);
      return st;
    }
  }
  const bool zeroed = options_.zero_new_tensors;
  absl::StatusOr<TensorInfo> info = store_->Create(std::move(t));
  if (!info.ok()) {
    ReleaseTensorMemory(*d, ptr);
    return info;
  }
  // Zeroed bytes of exactly 4 per element are a valid layout (empty strings).
  if (request.dtype == DataType::kBytes && !request.layout_checked &&
      !(zeroed && elements <= bytes / 4 && bytes == 4 * elements)) {
    bytes_layouts_.Track(info->id, bytes, elements);
  }
  return info;
}

absl::Status MemoryEngine::WriteTensor(const TensorId& id, uint64_t offset,
                                       absl::Span<const uint8_t> data) {
  ASSIGN_OR_RETURN(TensorPin pin, store_->Pin(id));
  uint64_t end;
  if (!CheckedAdd(offset, data.size(), &end) || end > pin.byte_size()) {
    return absl::OutOfRangeError(absl::StrCat("offset ", offset, " + ", data.size(),
                                              " bytes passes the end of the tensor (",
                                              pin.byte_size(), " bytes)"));
  }
  if (data.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(const bool seals, bytes_layouts_.CheckWrite(id, offset, data));
  ASSIGN_OR_RETURN(DeviceState * d, Find(pin.device()));
  RETURN_IF_ERROR(d->stream->CopyHostToDevice(static_cast<char*>(pin.device_ptr()) + offset,
                                              data.data(), data.size()));
  std::unique_ptr<Event> done = d->device->CreateEvent();
  if (absl::Status st = d->stream->RecordEvent(*done); !st.ok()) {
    d->stream->Synchronize().IgnoreError();  // `data` must outlive the copy
    return st;
  }
  RETURN_IF_ERROR(done->Synchronize());
  if (seals) bytes_layouts_.Seal(id);
  return absl::OkStatus();
}

absl::Status MemoryEngine::ReadTensor(const TensorId& id, uint64_t offset,
                                      absl::Span<uint8_t> out) {
  ASSIGN_OR_RETURN(TensorPin pin, store_->Pin(id));
  uint64_t end;
  if (!CheckedAdd(offset, out.size(), &end) || end > pin.byte_size()) {
    return absl::OutOfRangeError(absl::StrCat("offset ", offset, " + ", out.size(),
                                              " bytes passes the end of the tensor (",
                                              pin.byte_size(), " bytes)"));
  }
  if (out.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(DeviceState * d, Find(pin.device()));
  RETURN_IF_ERROR(d->stream->CopyDeviceToHost(
      out.data(), static_cast<const char*>(pin.device_ptr()) + offset, out.size()));
  std::unique_ptr<Event> done = d->device->CreateEvent();
  if (absl::Status st = d->stream->RecordEvent(*done); !st.ok()) {
    d->stream->Synchronize().IgnoreError();
    return st;
  }
  return done->Synchronize();
}

absl::Status MemoryEngine::FreeTensor(const TensorId& id) {
  ASSIGN_OR_RETURN(RemovedTensor t, store_->Remove(id));
  bytes_layouts_.Forget(id);
  ASSIGN_OR_RETURN(DeviceState * d, Find(t.info.device));
  ReleaseTensorMemory(*d, t.device_ptr);
  return absl::OkStatus();
}

absl::StatusOr<absl::Time> MemoryEngine::RenewLease(const TensorId& id, absl::Duration lease) {
  return store_->RenewLease(id, lease);
}

absl::StatusOr<TensorPage> MemoryEngine::ListTensors(const TensorListOptions& options) const {
  if (options.device < -1 || (options.device >= 0 && !Find(options.device).ok())) {
    return absl::InvalidArgumentError(
        absl::StrCat("device filter ", options.device, " does not name a device"));
  }
  return store_->List(options);
}

absl::StatusOr<TensorInfo> MemoryEngine::GetTensorInfo(const TensorId& id) const {
  return store_->Lookup(id);
}

absl::StatusOr<TensorPin> MemoryEngine::Pin(const TensorId& id) {
  RETURN_IF_ERROR(bytes_layouts_.CheckUsable(id));
  return store_->Pin(id);
}

absl::StatusOr<void*> MemoryEngine::AllocateScratch(int device, uint64_t bytes, Stream& stream) {
  ASSIGN_OR_RETURN(DeviceState * d, Find(device));
  return AllocateOnDevice(*d, bytes, stream);
}

absl::Status MemoryEngine::FreeScratch(int device, void* ptr, Stream& stream) {
  ASSIGN_OR_RETURN(DeviceState * d, Find(device));
  return d->pool->Free(ptr, stream);
}

namespace {

// DeviceAllocator over the engine's scratch buffers. Thread-safe.
class ScratchAllocator final : public DeviceAllocator {
 public:
  explicit ScratchAllocator(MemoryEngine* engine) : engine_(engine) {}

  // inferd::DeviceAllocator
  absl::StatusOr<void*> Allocate(Device& device, Stream& stream, size_t bytes) override {
    return engine_->AllocateScratch(device.index(), bytes, stream);
  }
  void Free(Device& device, Stream& stream, void* ptr) override {
    absl::Status st = engine_->FreeScratch(device.index(), ptr, stream);
    if (!st.ok()) INFERD_LOG(kError, "scratch free: ", st.message());
  }
  void* AllocateStaging(Device& device, size_t bytes) override {
    StagingPool* pool = engine_->Staging(device.index());
    return pool == nullptr ? nullptr : pool->Allocate(bytes);
  }
  void FreeStaging(Device& device, void* ptr, size_t bytes) override {
    if (StagingPool* pool = engine_->Staging(device.index()); pool != nullptr) {
      pool->Free(ptr, bytes);
    }
  }

 private:
  MemoryEngine* const engine_;
};

}  // namespace

StagingPool* MemoryEngine::Staging(int device) const {
  absl::StatusOr<DeviceState*> d = Find(device);
  return d.ok() ? (*d)->staging.get() : nullptr;
}

std::unique_ptr<DeviceAllocator> MemoryEngine::NewScratchAllocator() {
  return std::make_unique<ScratchAllocator>(this);
}

bool MemoryEngine::IdleForCompaction(DeviceState& d) const {
  if (store_->DeviceUsage(d.index).pinned > 0) return false;
  if (d.alloc_events.load() == d.alloc_events_at_compaction.load()) return false;  // no change
  const absl::Time last = absl::FromUnixNanos(d.last_alloc_unix_ns.load());
  return clock_->Now() - last >= options_.compaction_idle_time;
}

bool MemoryEngine::IdleForDiscard(const DeviceState& d) const {
  const absl::Time last = absl::FromUnixNanos(d.last_alloc_unix_ns.load());
  return clock_->Now() - last >= options_.compaction_idle_time;
}

absl::StatusOr<CompactionResult> MemoryEngine::Compact(int device) {
  ASSIGN_OR_RETURN(DeviceState * d, Find(device));
  bool idle = false;
  if (!d->compacting.compare_exchange_strong(idle, true)) {
    return absl::AbortedError(absl::StrCat("device ", device, ": a compaction is already running"));
  }
  d->alloc_events_at_compaction = d->alloc_events.load();
  CompactionResult result;
  result.fragmentation_before = d->pool->GetStats().fragmentation;
  auto ready = std::shared_ptr<Event>(d->device->CreateEvent());
  absl::Status status;
  PoolCompaction moved;
  store_->Relocate(
      d->index, ready,
      [&](absl::FunctionRef<bool(void*)> movable, absl::FunctionRef<void(void*, void*)> on_moved) {
        absl::StatusOr<PoolCompaction> r = d->pool->Compact(*d->stream, movable, on_moved);
        if (r.ok()) {
          moved = *r;
        } else {
          status = r.status();
        }
        if (absl::Status rec = d->stream->RecordEvent(*ready); !rec.ok()) {
          // Without the event a moved tensor could be read before its copy:
          // finish the copies before anyone can pin it.
          d->stream->Synchronize().IgnoreError();
          if (status.ok()) status = rec;
        }
      });
  ReleaseOptions release;  // waits for the copies before releasing
  result.released_bytes = d->pool->ReleaseCached(release);
  d->pool->DiscardFree();
  result.moved_tensors = moved.moved_blocks;
  result.moved_bytes = moved.moved_bytes;
  result.fragmentation_after = d->pool->GetStats().fragmentation;
  d->compactions++;
  d->compaction_moved_bytes += moved.moved_bytes;
  d->compacting = false;
  if (!status.ok()) return status;
  INFERD_LOG(kInfo, "device ", device, ": compaction moved ", result.moved_tensors, " tensors (",
             result.moved_bytes, " bytes), released ", result.released_bytes,
             " bytes, fragmentation ", result.fragmentation_before, " -> ",
             result.fragmentation_after);
  return result;
}

namespace {

// A byte count held in a double (>= 0) as an integer, saturating where the
// double passes uint64's range (a cast there is undefined behaviour).
uint64_t SaturatedBytes(double bytes) {
  if (!(bytes > 0)) return 0;
  if (bytes >= 18446744073709551615.0) return UINT64_MAX;
  return static_cast<uint64_t>(bytes);
}

}  // namespace

absl::StatusOr<int64_t> MemoryEngine::GetOptimalBatchSize(const BatchSizeRequest& request) {
  ASSIGN_OR_RETURN(DeviceState * d, Find(request.device));
  const size_t element = DataTypeSize(request.dtype);
  if (element == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("dtype ", DataTypeName(request.dtype), " has no fixed size"));
  }
  if (!(request.model_size_mb >= 0) || !std::isfinite(request.model_size_mb)) {
    return absl::InvalidArgumentError(
        absl::StrCat("model_size_mb ", request.model_size_mb, " must be >= 0"));
  }
  if (request.max_batch_size < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_batch_size ", request.max_batch_size, " must be >= 0"));
  }
  uint64_t elements, input_bytes, per_sample;
  if (!ShapeElementCount(request.input_shape, &elements) ||
      !CheckedMul(elements, element, &input_bytes) ||
      !CheckedAdd(input_bytes, request.output_bytes_per_sample, &per_sample) ||
      !CheckedAdd(per_sample, request.activation_bytes_per_sample, &per_sample)) {
    return absl::InvalidArgumentError(
        "input_shape has a negative dimension or the per-sample size overflows");
  }
  if (per_sample == 0) {
    return absl::InvalidArgumentError("a sample needs 0 bytes; give input_shape or sizes");
  }
  uint64_t expired = 0;
  ReclaimExpired(*d, &expired);
  const uint64_t free = FreeBytes(*d, d->pool->GetStats());
  const double model_bytes = request.model_size_mb * static_cast<double>(kMiB);
  const double usable =
      std::max(0.0, static_cast<double>(free) - model_bytes) * (1.0 - options_.batch_safety_margin);
  const double fit = std::floor(usable / static_cast<double>(per_sample));
  if (fit < 1) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "device ", d->index, ": one sample needs ", per_sample, " bytes but only ",
        static_cast<uint64_t>(usable), " of ", free, " free bytes remain after the model (",
        SaturatedBytes(model_bytes), " bytes) and the safety margin"));
  }
  int64_t batch = fit >= 9.0e18 ? INT64_MAX : static_cast<int64_t>(fit);
  if (request.max_batch_size > 0) batch = std::min(batch, request.max_batch_size);
  return batch;
}

DeviceMemoryStats MemoryEngine::Snapshot(DeviceState& d) {
  const PoolStats ps = d.pool->GetStats();
  const TensorStore::Usage usage = store_->DeviceUsage(d.index);
  DeviceMemoryStats s;
  s.device = d.index;
  s.total_bytes = d.total_bytes;
  s.reserved_bytes = ps.reserved_bytes;
  s.allocated_bytes = ps.allocated_bytes;
  s.requested_bytes = ps.requested_bytes;
  s.free_bytes = FreeBytes(d, ps);
  s.largest_free_block = ps.largest_free_block;
  s.fragmentation = ps.fragmentation;
  s.overhead_ratio = ps.allocated_bytes == 0 ? 0
                                             : static_cast<double>(ps.reserved_bytes) /
                                                   static_cast<double>(ps.allocated_bytes);
  s.active_tensors = usage.tensors;
  s.tensor_bytes = usage.bytes;
  s.pinned_tensors = usage.pinned;
  s.active_blocks = ps.active_blocks;
  s.segments = ps.segments;
  s.allocations = ps.alloc_count;
  s.frees = ps.free_count;
  s.gc_runs = d.gc_runs.load();
  s.gc_reclaimed_bytes = d.gc_reclaimed_bytes.load();
  s.compactions = d.compactions.load();
  s.compaction_moved_bytes = d.compaction_moved_bytes.load();
  s.lease_expirations = d.lease_expirations.load();

  const MemoryMetrics::Device& m = d.metrics;
  m.total_bytes.Set(static_cast<double>(s.total_bytes));
  m.reserved_bytes.Set(static_cast<double>(s.reserved_bytes));
  m.allocated_bytes.Set(static_cast<double>(s.allocated_bytes));
  m.active_tensors.Set(static_cast<double>(s.active_tensors));
  m.fragmentation_ratio.Set(s.fragmentation);
  m.largest_free_block_bytes.Set(static_cast<double>(s.largest_free_block));
  absl::MutexLock lock(&d.export_mu);
  auto bump = [](prometheus::Counter& c, uint64_t now, uint64_t& done) {
    if (now > done) c.Increment(static_cast<double>(now - done));
    done = std::max(done, now);
  };
  DeviceState::Exported& e = d.exported;
  bump(m.allocations_total, s.allocations, e.allocations);
  bump(m.frees_total, s.frees, e.frees);
  bump(m.gc_runs_total, s.gc_runs, e.gc_runs);
  bump(m.gc_reclaimed_bytes_total, s.gc_reclaimed_bytes, e.gc_reclaimed_bytes);
  bump(m.compactions_total, s.compactions, e.compactions);
  bump(m.compaction_moved_bytes_total, s.compaction_moved_bytes, e.compaction_moved_bytes);
  bump(m.lease_expirations_total, s.lease_expirations, e.lease_expirations);
  return s;
}

std::vector<DeviceMemoryStats> MemoryEngine::GetStats() {
  std::vector<DeviceMemoryStats> out;
  out.reserve(devices_.size());
  for (const auto& d : devices_) out.push_back(Snapshot(*d));
  return out;
}

absl::StatusOr<DeviceMemoryStats> MemoryEngine::GetDeviceStats(int device) {
  ASSIGN_OR_RETURN(DeviceState * d, Find(device));
  return Snapshot(*d);
}

MaintenanceReport MemoryEngine::RunMaintenanceOnce() {
  MaintenanceReport report;
  for (const auto& dp : devices_) {
    DeviceState& d = *dp;
    ReclaimExpired(d, &report.expired_tensors);
    if (auto mem = d.device->GetMemoryInfo(); mem.ok() && mem->total_bytes > 0) {
      const double used =
          1.0 - static_cast<double>(mem->free_bytes) / static_cast<double>(mem->total_bytes);
      if (used > options_.gc_threshold) {
        d.gc_runs++;
        report.gc_runs++;
        const uint64_t released = d.pool->ReleaseCached();
        d.gc_reclaimed_bytes += released;
        report.released_bytes += released;
      }
    }
    if (d.pool->GetStats().fragmentation > options_.defrag_threshold && IdleForCompaction(d)) {
      absl::StatusOr<CompactionResult> c = Compact(d.index);
      if (c.ok()) {
        report.compactions++;
        report.moved_bytes += c->moved_bytes;
        report.released_bytes += c->released_bytes;
      } else if (!absl::IsAborted(c.status())) {
        INFERD_LOG(kWarning, "device ", d.index, ": compaction failed: ", c.status().message());
      }
    }
    // An idle device's cached free blocks keep their addresses but give
    // their memory back (host devices: the process shrinks after a burst),
    // once per change of the pool.
    if (IdleForDiscard(d)) {
      const PoolStats ps = d.pool->GetStats();
      const uint64_t events = ps.alloc_count + ps.free_count;
      if (events != d.pool_events_at_discard) {
        d.pool_events_at_discard = events;
        report.discarded_bytes += d.pool->DiscardFree();
      }
    }
    Snapshot(d);
  }
  return report;
}

}  // namespace inferd
