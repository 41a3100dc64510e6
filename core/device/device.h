// Device: what the engines drive. An abstract accelerator with memory,
// a pool of in-order work queues (streams), events, and the handful of
// kernels the daemon itself needs. Two implementations: CudaDevice (real
// GPUs, under core/device/cuda/) and HostDevice (CPU memory with a
// configured capacity and worker threads as streams, standing in for a GPU
// so that every engine is tested without one). Like leveldb's Env.
//
// Addresses returned by a Device ("device pointers") are only meaningful to
// that device's streams and kernels; on a HostDevice they are host pointers.
// Clients never see them: the tensor store hands out opaque handles.
#ifndef INFERD_CORE_DEVICE_DEVICE_H_
#define INFERD_CORE_DEVICE_DEVICE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "core/tensor/dtype.h"

namespace inferd {

class Device;

enum class DeviceKind { kHost, kCuda };

inline const char* DeviceKindName(DeviceKind k) {
  return k == DeviceKind::kCuda ? "cuda" : "host";
}

// Static facts about a device; constant after construction.
struct DeviceInfo {
  int index = 0;             // daemon-wide index, 0..N-1 in discovery order
  DeviceKind kind = DeviceKind::kHost;
  std::string name;          // "NVIDIA H100 80GB HBM3", "host-0"
  int ordinal = 0;           // CUDA device ordinal, or host device number
  uint64_t total_memory_bytes = 0;
  int compute_capability_major = 0;  // 0 on host devices
  int compute_capability_minor = 0;
  int num_streams = 0;
};

struct MemoryInfo {
  uint64_t total_bytes = 0;
  uint64_t free_bytes = 0;  // as the driver (or host capacity) sees it
};

// A completion marker recorded on a stream. Thread-safe. The owner may
// destroy an event while records of it, or waits for it, are still queued on
// streams (as cudaEventDestroy allows): implementations keep what that work
// needs alive until it has run.
class Event {
 public:
  virtual ~Event() = default;
  // Returns true once all work enqueued before the last Record has run.
  // An event never recorded is complete.
  virtual bool IsComplete() = 0;
  // Blocks the calling thread until complete; returns the error of the
  // work it waited for, if any.
  virtual absl::Status Synchronize() = 0;
};

// While one lives on a thread, streams never run work on that thread: work
// an idle HostDevice stream would run inline goes to the stream's own
// thread instead, as on a GPU (CUDA streams never run work inline). For
// threads that must return at once, such as a request thread submitting
// tasks. Nests. Not copyable.
class AsyncOnlyScope {
 public:
  AsyncOnlyScope() : previous_(active_) { active_ = true; }
  ~AsyncOnlyScope() { active_ = previous_; }
  AsyncOnlyScope(const AsyncOnlyScope&) = delete;
  AsyncOnlyScope& operator=(const AsyncOnlyScope&) = delete;

  // True while a scope lives on the calling thread.
  static bool Active() { return active_; }

 private:
  static inline thread_local bool active_ = false;
  const bool previous_;
};

// While one lives on a thread, the work being enqueued is a lone request on
// an idle device, waited for by nobody else: a GPU stream's ThenCallback
// may then wait briefly for the work before it (polling its event, a few
// tens of microseconds at most) and run the callback on this thread,
// instead of waking the stream's callback thread, whose two wake-ups (the
// thread, then the blocking event) cost a lone small request more than the
// wait. Nests: the innermost scope decides (`active` false turns the wait
// off inside it, as around a model's own code). Not copyable.
// (Both scopes are defined in this header: the CUDA streams' library,
// which core_device links, reads them.)
class InlineCompletionScope {
 public:
  explicit InlineCompletionScope(bool active) : previous_(current_) { current_ = active; }
  ~InlineCompletionScope() { current_ = previous_; }
  InlineCompletionScope(const InlineCompletionScope&) = delete;
  InlineCompletionScope& operator=(const InlineCompletionScope&) = delete;

  // True while an active scope is the innermost on the calling thread and
  // no AsyncOnlyScope lives there.
  static bool Active() { return current_ && !AsyncOnlyScope::Active(); }

 private:
  static inline thread_local bool current_ = false;
  const bool previous_;
};

// An in-order queue of asynchronous work on one device. Thread-safe: any
// thread may enqueue; work runs in enqueue order. Enqueue calls return at
// once; their status reports only a synchronous failure (bad arguments, a
// launch error). Host buffers passed to copies must stay valid, and device
// buffers allocated, until the work has run (use ThenCallback or an Event).
class Stream {
 public:
  virtual ~Stream() = default;

  virtual Device& device() = 0;
  virtual int id() const = 0;

  virtual absl::Status CopyHostToDevice(void* dst, const void* src, size_t bytes) = 0;
  virtual absl::Status CopyDeviceToHost(void* dst, const void* src, size_t bytes) = 0;
  // Copies within this stream's device.
  virtual absl::Status CopyDeviceToDevice(void* dst, const void* src, size_t bytes) = 0;
  // Copies from `src` on `src_device` to `dst` on this stream's device (peer
  // access where the hardware allows it, else staged by the implementation).
  virtual absl::Status CopyFromPeer(void* dst, Device& src_device, const void* src,
                                    size_t bytes) = 0;
  virtual absl::Status Memset(void* dst, uint8_t value, size_t bytes) = 0;

  // Runs `fn` on a host thread after all work enqueued before it. `fn`
  // receives the first asynchronous error seen on the stream (OK if none).
  // A CUDA fault is sticky (every later callback sees it); a host stream
  // reports an op's error once, to the next callback or Synchronize.
  // `fn` must not block for long nor call back into device APIs that wait
  // on this stream. Takes ownership of `fn`.
  virtual absl::Status ThenCallback(absl::AnyInvocable<void(absl::Status) &&> fn) = 0;

  // Marks `event` so it completes after the work enqueued so far.
  virtual absl::Status RecordEvent(Event& event) = 0;
  // Makes later work on this stream wait for `event` (recorded on any
  // stream of any device).
  virtual absl::Status WaitEvent(Event& event) = 0;

  // Blocks until all enqueued work has run; returns the first async error.
  virtual absl::Status Synchronize() = 0;

  // Stores into `*ns` the absl::GetCurrentTimeNanos() time at which the
  // stream reaches this point, readable once a later ThenCallback called on
  // the same thread has run, or a Synchronize on that thread has returned
  // (execution statistics). `ns` must stay valid until then; work that
  // other threads enqueue on the stream meanwhile never touches it. The default
  // stores the time of the call, which on an asynchronous device is when
  // the work was enqueued, not when it ran.
  virtual absl::Status MarkTime(int64_t* ns) {
    *ns = absl::GetCurrentTimeNanos();
    return absl::OkStatus();
  }

  // The implementation's native handle (cudaStream_t on CUDA, null on host),
  // for backends that launch their own kernels.
  virtual void* native_handle() = 0;
};

// Elementwise kernels that builtin models and engines run on device data.
// Each enqueues on `stream` and returns at once; `n` is the element count.
// Returns INVALID_ARGUMENT for a dtype the kernel does not support.
class Kernels {
 public:
  virtual ~Kernels() = default;
  // out[i] = a[i] + b[i]. All numeric dtypes and BOOL (logical or).
  virtual absl::Status Add(Stream& stream, DataType dtype, const void* a, const void* b,
                           void* out, size_t n) = 0;
  // out[i] = in[i] * factor, computed in double (float for fp16/bf16) and
  // converted back with saturation for integers. All numeric dtypes.
  virtual absl::Status Scale(Stream& stream, DataType dtype, const void* in, double factor,
                             void* out, size_t n) = 0;
  // Reduction used by collectives: inout[i] = op(inout[i], in[i]).
  enum class ReduceOp { kSum, kProd, kMin, kMax };
  virtual absl::Status Reduce(Stream& stream, DataType dtype, ReduceOp op, const void* in,
                              void* inout, size_t n) = 0;
  // inout[i] /= divisor (for average reductions). Numeric dtypes.
  virtual absl::Status DivideBy(Stream& stream, DataType dtype, void* inout, uint64_t divisor,
                                size_t n) = 0;
};

// Device memory another process exported (CUDA IPC), mapped for this
// device. Closed when destroyed; the exporting process still owns it.
class ImportedMemory {
 public:
  virtual ~ImportedMemory() = default;
  // A device pointer of the importing device.
  virtual void* data() const = 0;
};

// A GPU or a stand-in for one. Thread-safe unless a method says otherwise.
class Device {
 public:
  virtual ~Device() = default;

  virtual const DeviceInfo& info() const = 0;
  int index() const { return info().index; }

  // Returns total and free memory as the driver reports it now.
  virtual absl::StatusOr<MemoryInfo> GetMemoryInfo() = 0;
  // Returns the recent busy fraction (0..1). UNAVAILABLE where the driver
  // offers no counter (no NVML).
  virtual absl::StatusOr<double> GetUtilization() = 0;
  // Board power draw in watts and energy used since the driver loaded in
  // joules (NVML on GPUs). UNAVAILABLE where there is no such reading
  // (host devices, no NVML, a GPU without the counter).
  virtual absl::StatusOr<double> GetPowerWatts() {
    return absl::UnavailableError("no power reading on this device");
  }
  virtual absl::StatusOr<double> GetEnergyJoules() {
    return absl::UnavailableError("no energy counter on this device");
  }

  // Takes `bytes` from the driver (cudaMalloc, or host memory within the
  // configured capacity). Slow: the memory engine pools on top of it.
  // RESOURCE_EXHAUSTED when the device has no room. Alignment >= 256.
  virtual absl::StatusOr<void*> AllocateRaw(size_t bytes) = 0;
  // Returns memory from AllocateRaw to the driver. Synchronizes the device
  // with respect to that memory (callers make sure no work uses it).
  virtual void FreeRaw(void* ptr) = 0;
  // Tells the device that the contents of [ptr, ptr + bytes), inside memory
  // from AllocateRaw and unused, are no longer needed: host devices give
  // its whole pages back to the system (they read as zeros when next
  // touched); GPUs ignore it. The range stays valid to use.
  virtual void DiscardMemory(void* ptr, size_t bytes) {}

  // Page-locked host memory for staging copies to/from this device.
  virtual absl::StatusOr<void*> AllocatePinnedHost(size_t bytes) = 0;
  virtual void FreePinnedHost(void* ptr) = 0;

  // Streams are owned by the device and live as long as it does.
  virtual int num_streams() const = 0;
  virtual Stream& stream(int i) = 0;

  virtual std::unique_ptr<Event> CreateEvent() = 0;
  virtual Kernels& kernels() = 0;

  // True when this device can read/write `other`'s memory directly.
  virtual bool CanAccessPeer(const Device& other) const = 0;

  // Blocks until all streams of the device are idle.
  virtual absl::Status Synchronize() = 0;

  // Size of the opaque handle OpenIpcMemory takes (a cudaIpcMemHandle_t).
  static constexpr size_t kIpcHandleBytes = 64;
  // Maps `byte_size` bytes of memory another process exported with an IPC
  // handle (`handle`, kIpcHandleBytes bytes). On CUDA devices the handle is
  // a cudaIpcMemHandle_t of this GPU; host devices take a stand-in handle
  // naming a POSIX shared-memory object (docs/SHARED_MEMORY.md), so the
  // path is testable without a GPU. INVALID_ARGUMENT for a malformed
  // handle; the driver's error otherwise; UNIMPLEMENTED where unsupported.
  virtual absl::StatusOr<std::unique_ptr<ImportedMemory>> OpenIpcMemory(absl::string_view handle,
                                                                      uint64_t byte_size) {
    return absl::UnimplementedError("this device cannot import IPC memory");
  }
};

}  // namespace inferd

#endif  // INFERD_CORE_DEVICE_DEVICE_H_
