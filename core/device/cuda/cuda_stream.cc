#include "core/device/cuda/cuda_stream.h"

#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/device/cuda/cuda_device.h"
#include "core/device/cuda/cuda_status.h"
#include "core/util/logging.h"
#include "core/util/status_macros.h"

namespace inferd {
namespace {

// How long ThenCallback polls a lone request's event before it leaves the
// wait to the stream's callback thread: a small request's copies and a
// small model take 10-40 us on an H200.
constexpr absl::Duration kInlineCompletionWait = absl::Microseconds(50);

// A token for the calling thread, unique among live threads: MarkTime's
// marks belong to the thread that recorded them.
const void* ThisThread() {
  static thread_local const char token = 0;
  return &token;
}

}  // namespace

// CudaEventHandle

absl::StatusOr<std::shared_ptr<CudaEventHandle>> CudaEventHandle::Create(int device_index,
                                                                         int ordinal) {
  ScopedCudaDevice guard(ordinal);
  RETURN_IF_ERROR(guard.status(device_index));
  cudaEvent_t event = nullptr;
  RETURN_IF_ERROR(CudaStatus(cudaEventCreateWithFlags(&event, cudaEventDisableTiming),
                             "cudaEventCreateWithFlags", device_index));
  return std::shared_ptr<CudaEventHandle>(new CudaEventHandle(event, device_index, ordinal));
}

CudaEventHandle::~CudaEventHandle() {
  ScopedCudaDevice guard(ordinal_);
  // Safe while work still waits on the event: CUDA releases it afterwards.
  if (cudaEventDestroy(event_) != cudaSuccess) (void)cudaGetLastError();
}

// CudaEvent

absl::StatusOr<std::shared_ptr<CudaEventHandle>> CudaEvent::HandleFor(int device_index,
                                                                      int ordinal) {
  absl::MutexLock lock(&mu_);
  if (handle_ == nullptr || handle_->ordinal() != ordinal) {
    ASSIGN_OR_RETURN(handle_, CudaEventHandle::Create(device_index, ordinal));
  }
  return handle_;
}

std::shared_ptr<CudaEventHandle> CudaEvent::latest() {
  absl::MutexLock lock(&mu_);
  return handle_;
}

bool CudaEvent::IsComplete() {
  std::shared_ptr<CudaEventHandle> h = latest();
  if (h == nullptr) return true;
  ScopedCudaDevice guard(h->ordinal());
  const cudaError_t err = cudaEventQuery(h->get());
  if (err == cudaErrorNotReady) return false;
  // A failure means the work is over (with an error Synchronize returns).
  if (err != cudaSuccess) (void)cudaGetLastError();
  return true;
}

absl::Status CudaEvent::Synchronize() {
  std::shared_ptr<CudaEventHandle> h = latest();
  if (h == nullptr) return absl::OkStatus();
  ScopedCudaDevice guard(h->ordinal());
  RETURN_IF_ERROR(guard.status(h->device_index()));
  return CudaStatus(cudaEventSynchronize(h->get()), "cudaEventSynchronize", h->device_index());
}

// CudaStream

absl::StatusOr<std::unique_ptr<CudaStream>> CudaStream::Create(CudaDevice* device, int id) {
  const int ordinal = device->ordinal();
  ScopedCudaDevice guard(ordinal);
  RETURN_IF_ERROR(guard.status(device->index()));
  cudaStream_t stream = nullptr;
  RETURN_IF_ERROR(CudaStatus(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking),
                             "cudaStreamCreateWithFlags", device->index()));
  return std::unique_ptr<CudaStream>(new CudaStream(device, id, stream));
}

CudaStream::CudaStream(CudaDevice* device, int id, cudaStream_t stream)
    : device_(device),
      id_(id),
      ordinal_(device->ordinal()),
      device_index_(device->index()),
      stream_(stream),
      callbacks_(std::make_unique<CallbackRunner>()) {}

CudaStream::~CudaStream() {
  callbacks_.reset();
  ScopedCudaDevice guard(ordinal_);
  absl::MutexLock lock(&mu_);
  for (cudaEvent_t e : idle_events_) {
    if (cudaEventDestroy(e) != cudaSuccess) (void)cudaGetLastError();
  }
  for (const Mark& m : new_marks_) idle_timing_events_.push_back(m.event);
  for (cudaEvent_t e : idle_timing_events_) {
    if (cudaEventDestroy(e) != cudaSuccess) (void)cudaGetLastError();
  }
  if (cudaStreamDestroy(stream_) != cudaSuccess) (void)cudaGetLastError();
}

Device& CudaStream::device() { return *device_; }

absl::Status CudaStream::CheckWait(cudaError_t err, absl::string_view op) {
  if (err == cudaSuccess) return absl::OkStatus();
  (void)cudaGetLastError();
  absl::Status st = CudaStatus(err, op, device_index_);
  if (IsStickyCudaError(err)) {
    device_->OnStickyError(st);
  } else {
    OnAsyncError(st, /*sticky=*/false);
  }
  return st;
}

absl::Status CudaStream::CheckEnqueue(cudaError_t err, absl::string_view op) {
  if (err == cudaSuccess) return absl::OkStatus();
  (void)cudaGetLastError();
  absl::Status st = CudaStatus(err, op, device_index_);
  if (IsStickyCudaError(err)) device_->OnStickyError(st);
  return st;
}

absl::Status CudaStream::Copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                              absl::string_view op) {
  if (bytes == 0) return absl::OkStatus();
  if (dst == nullptr || src == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(op, " on device ", device_index_,
                                                   ": null pointer for ", bytes, " bytes"));
  }
  ScopedCudaDevice guard(ordinal_);
  RETURN_IF_ERROR(guard.status(device_index_));
  return CheckEnqueue(cudaMemcpyAsync(dst, src, bytes, kind, stream_), op);
}

absl::Status CudaStream::CopyHostToDevice(void* dst, const void* src, size_t bytes) {
  return Copy(dst, src, bytes, cudaMemcpyHostToDevice, "cudaMemcpyAsync (host to device)");
}

absl::Status CudaStream::CopyDeviceToHost(void* dst, const void* src, size_t bytes) {
  return Copy(dst, src, bytes, cudaMemcpyDeviceToHost, "cudaMemcpyAsync (device to host)");
}

absl::Status CudaStream::CopyDeviceToDevice(void* dst, const void* src, size_t bytes) {
  return Copy(dst, src, bytes, cudaMemcpyDeviceToDevice, "cudaMemcpyAsync (device to device)");
}

absl::Status CudaStream::CopyFromPeer(void* dst, Device& src_device, const void* src,
                                      size_t bytes) {
  if (src_device.info().kind == DeviceKind::kHost) {
    // A host device's memory is ordinary host memory.
    return CopyHostToDevice(dst, src, bytes);
  }
  auto* peer = dynamic_cast<CudaDevice*>(&src_device);
  if (peer == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("copy from device ", src_device.index(),
                                                   " to device ", device_index_,
                                                   ": unsupported source device"));
  }
  if (peer->ordinal() == ordinal_) return CopyDeviceToDevice(dst, src, bytes);
  if (bytes == 0) return absl::OkStatus();
  if (dst == nullptr || src == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("copy from device ", peer->index(),
                                                   " to device ", device_index_,
                                                   ": null pointer for ", bytes, " bytes"));
  }
  ScopedCudaDevice guard(ordinal_);
  RETURN_IF_ERROR(guard.status(device_index_));
  // Direct over NVLink/PCIe with peer access, else staged by the driver.
  return CheckEnqueue(cudaMemcpyPeerAsync(dst, ordinal_, src, peer->ordinal(), bytes, stream_),
                      absl::StrCat("cudaMemcpyPeerAsync (from device ", peer->index(), ")"));
}

absl::Status CudaStream::Memset(void* dst, uint8_t value, size_t bytes) {
  if (bytes == 0) return absl::OkStatus();
  if (dst == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("memset on device ", device_index_, ": null pointer for ", bytes, " bytes"));
  }
  ScopedCudaDevice guard(ordinal_);
  RETURN_IF_ERROR(guard.status(device_index_));
  return CheckEnqueue(cudaMemsetAsync(dst, value, bytes, stream_), "cudaMemsetAsync");
}

absl::Status CudaStream::ThenCallback(absl::AnyInvocable<void(absl::Status) &&> fn) {
  ScopedCudaDevice guard(ordinal_);
  RETURN_IF_ERROR(guard.status(device_index_));
  cudaEvent_t event = nullptr;
  {
    absl::MutexLock lock(&mu_);
    if (poisoned_) {
      // The work before it can never complete normally; its marks keep the
      // calls' times.
      for (const Mark& m : TakeMarks()) idle_timing_events_.push_back(m.event);
      callbacks_->Post([fn = std::move(fn), status = error_]() mutable {
        std::move(fn)(std::move(status));
      });
      return absl::OkStatus();
    }
    if (!idle_events_.empty()) {
      event = idle_events_.back();
      idle_events_.pop_back();
    }
  }
  if (event == nullptr) {
    RETURN_IF_ERROR(CudaStatus(
        cudaEventCreateWithFlags(&event, cudaEventDisableTiming | cudaEventBlockingSync),
        "cudaEventCreateWithFlags", device_index_));
  }
  if (cudaError_t err = cudaEventRecord(event, stream_); err != cudaSuccess) {
    ReturnEvent(event);
    return CheckEnqueue(err, "cudaEventRecord (callback)");
  }
  // The marks this thread recorded before it are this callback's to
  // resolve (without one, the caller synchronizes and Synchronize resolves
  // them). Another thread's marks are its own callback's: that execution
  // may end, and its marks' memory go, before this callback runs.
  Marks marks;
  {
    absl::MutexLock lock(&mu_);
    marks = TakeMarks();
  }
  // A lone request on an idle device (InlineCompletionScope), with no
  // earlier callback of this stream pending: poll the event for a little
  // while and, when the work is done, run `fn` here.
  if (InlineCompletionScope::Active() && callbacks_->Idle()) {
    const absl::Time give_up = absl::Now() + kInlineCompletionWait;
    cudaError_t done = cudaErrorNotReady;
    while ((done = cudaEventQuery(event)) == cudaErrorNotReady && absl::Now() < give_up) {
    }
    if (done != cudaErrorNotReady) {
      RunCallback(event, std::move(marks), CheckWait(done, "cudaEventQuery (callback)"),
                  std::move(fn));
      return absl::OkStatus();
    }
  }
  // The runner thread waits for the event (sleeping: a blocking-sync event)
  // and then runs `fn`. Unlike a CUDA host function this never stalls the
  // stream and takes one thread hop instead of two.
  callbacks_->Post([this, event, marks = std::move(marks), fn = std::move(fn)]() mutable {
    absl::Status waited;
    {
      ScopedCudaDevice guard(ordinal_);
      waited = CheckWait(cudaEventSynchronize(event), "cudaEventSynchronize (callback)");
    }
    RunCallback(event, std::move(marks), std::move(waited), std::move(fn));
  });
  return absl::OkStatus();
}

void CudaStream::RunCallback(cudaEvent_t event, Marks marks, absl::Status waited,
                             absl::AnyInvocable<void(absl::Status) &&> fn) {
  ReturnEvent(event);
  {
    absl::MutexLock lock(&mu_);
    if (!error_.ok()) waited = error_;
  }
  if (!marks.empty()) ResolveMarks(marks, waited.ok());
  std::move(fn)(std::move(waited));
}

absl::Status CudaStream::MarkTime(int64_t* ns) {
  *ns = absl::GetCurrentTimeNanos();
  ScopedCudaDevice guard(ordinal_);
  RETURN_IF_ERROR(guard.status(device_index_));
  cudaEvent_t event = nullptr;
  {
    absl::MutexLock lock(&mu_);
    if (!idle_timing_events_.empty()) {
      event = idle_timing_events_.back();
      idle_timing_events_.pop_back();
    }
  }
  if (event == nullptr) {
    RETURN_IF_ERROR(CudaStatus(cudaEventCreateWithFlags(&event, cudaEventDefault),
                               "cudaEventCreateWithFlags (timing)", device_index_));
  }
  cudaError_t err = cudaSuccess;
  {
    // Recorded under the lock, so that the marks keep the stream's order.
    absl::MutexLock lock(&mu_);
    err = cudaEventRecord(event, stream_);
    if (err == cudaSuccess) {
      new_marks_.push_back({event, ns, ThisThread()});
    } else {
      idle_timing_events_.push_back(event);
    }
  }
  return CheckEnqueue(err, "cudaEventRecord (mark)");
}

CudaStream::Marks CudaStream::TakeMarks() {
  Marks taken;
  const void* self = ThisThread();
  auto kept = new_marks_.begin();
  for (auto it = new_marks_.begin(); it != new_marks_.end(); ++it) {
    if (it->owner == self) {
      taken.push_back(*it);
    } else {
      *kept++ = *it;
    }
  }
  new_marks_.erase(kept, new_marks_.end());
  return taken;
}

void CudaStream::ResolveMarks(const Marks& marks, bool ok) {
  if (ok && !marks.empty()) {
    ScopedCudaDevice guard(ordinal_);
    const int64_t now = absl::GetCurrentTimeNanos();
    const Mark& last = marks.back();
    for (size_t i = 0; i + 1 < marks.size(); ++i) {
      float ms = 0;
      if (cudaEventElapsedTime(&ms, marks[i].event, last.event) == cudaSuccess) {
        *marks[i].ns = now - static_cast<int64_t>(static_cast<double>(ms) * 1e6);
      } else {
        (void)cudaGetLastError();
      }
    }
    *last.ns = now;
  }
  absl::MutexLock lock(&mu_);
  for (const Mark& m : marks) idle_timing_events_.push_back(m.event);
}

void CudaStream::ReturnEvent(cudaEvent_t event) {
  absl::MutexLock lock(&mu_);
  idle_events_.push_back(event);
}

void CudaStream::OnAsyncError(const absl::Status& error, bool sticky) {
  absl::MutexLock lock(&mu_);
  if (error_.ok()) error_ = error;
  if (sticky) poisoned_ = true;
}

absl::Status CudaStream::RecordEvent(Event& event) {
  auto* cuda_event = dynamic_cast<CudaEvent*>(&event);
  if (cuda_event == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("record event on device ", device_index_, ": not a CUDA event"));
  }
  ASSIGN_OR_RETURN(std::shared_ptr<CudaEventHandle> handle,
                   cuda_event->HandleFor(device_index_, ordinal_));
  ScopedCudaDevice guard(ordinal_);
  RETURN_IF_ERROR(guard.status(device_index_));
  return CheckEnqueue(cudaEventRecord(handle->get(), stream_), "cudaEventRecord");
}

absl::Status CudaStream::WaitEvent(Event& event) {
  auto* cuda_event = dynamic_cast<CudaEvent*>(&event);
  if (cuda_event == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("wait for event on device ", device_index_, ": not a CUDA event"));
  }
  std::shared_ptr<CudaEventHandle> handle = cuda_event->latest();
  if (handle == nullptr) return absl::OkStatus();  // never recorded: complete
  ScopedCudaDevice guard(ordinal_);
  RETURN_IF_ERROR(guard.status(device_index_));
  return CheckEnqueue(cudaStreamWaitEvent(stream_, handle->get(), 0), "cudaStreamWaitEvent");
}

absl::Status CudaStream::Synchronize() {
  {
    ScopedCudaDevice guard(ordinal_);
    RETURN_IF_ERROR(guard.status(device_index_));
    (void)CheckWait(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  }
  callbacks_->WaitIdle();
  // This thread's marks no callback took are complete now.
  Marks marks;
  absl::Status error;
  {
    absl::MutexLock lock(&mu_);
    marks = TakeMarks();
    error = error_;
  }
  if (!marks.empty()) ResolveMarks(marks, error.ok());
  return error;
}

}  // namespace inferd
