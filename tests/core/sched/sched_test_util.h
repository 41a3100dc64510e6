// Test doubles for scheduler tests: a model whose execution can be gated,
// made to fail or recorded; a responder that keeps its request's input bytes
// and collects outputs; a fake tensor store over host devices.
#ifndef INFERD_TESTS_CORE_SCHED_SCHED_TEST_UTIL_H_
#define INFERD_TESTS_CORE_SCHED_SCHED_TEST_UTIL_H_

#include <atomic>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "core/device/device_allocator.h"
#include "core/device/host_device.h"
#include "core/infer/infer_request.h"
#include "core/models/model.h"
#include "core/sched/tensor_access.h"
#include "gtest/gtest.h"

namespace inferd::testing {

// Hands out heap blocks as if they were pinned staging memory, and counts
// those not given back.
class CountingStagingAllocator final : public DeviceAllocator {
 public:
  absl::StatusOr<void*> Allocate(Device& device, Stream& stream, size_t bytes) override {
    return raw_->Allocate(device, stream, bytes);
  }
  void Free(Device& device, Stream& stream, void* ptr) override { raw_->Free(device, stream, ptr); }
  void* AllocateStaging(Device&, size_t bytes) override {
    ++held;
    ++given;
    return new uint8_t[bytes];
  }
  void FreeStaging(Device&, void* ptr, size_t) override {
    --held;
    delete[] static_cast<uint8_t*>(ptr);
  }
  std::atomic<int> held{0};   // given out, not back yet
  std::atomic<int> given{0};  // ever given out

 private:
  std::unique_ptr<DeviceAllocator> raw_ = NewRawDeviceAllocator();
};

// Blocks device work until opened. Thread-safe.
class Gate {
 public:
  void Open() {
    absl::MutexLock lock(&mu_);
    if (!open_.HasBeenNotified()) open_.Notify();
  }
  void Wait() {
    {
      absl::MutexLock lock(&mu_);
      ++waiters_;
    }
    open_.WaitForNotification();
  }
  // Blocks until some thread waits on the gate (or has waited): the
  // device work behind it has reached it.
  void AwaitWaiter() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](int* n) { return *n > 0; }, &waiters_));
  }

 private:
  absl::Mutex mu_;
  absl::Notification open_;
  int waiters_ ABSL_GUARDED_BY(mu_) = 0;
};

// OUTPUT0 = 2 * INPUT0 (FP32, any shape; batches along dim 0 when
// max_batch_size > 0). Records each execution's tag (params.factor) and
// dim-0 rows. Optional: a gate the stream waits on before the work, and
// devices on which Execute fails with INTERNAL. `preemptible` is the
// signature's (scheduling.preemptible). Thread-safe.
class TestModel final : public Model {
 public:
  explicit TestModel(std::string name = "test", int max_batch_size = 0,
                     bool preemptible = false) {
    sig_.name = std::move(name);
    sig_.platform = "test";
    sig_.inputs.push_back(TensorSpec{"INPUT0", DataType::kFp32, {-1}});
    sig_.outputs.push_back(TensorSpec{"OUTPUT0", DataType::kFp32, {-1}});
    sig_.max_batch_size = max_batch_size;
    sig_.preemptible = preemptible;
  }

  const ModelSignature& signature() const override { return sig_; }
  // Before the model is first used (signatures are read without a lock).
  void set_max_executions_per_device(int n) { sig_.max_executions_per_device = n; }
  void set_overlap_executions(bool overlap) { sig_.overlap_executions = overlap; }
  void set_next_batch_lead_us(int64_t us) { sig_.next_batch_lead_us = us; }
  absl::Status Validate(absl::Span<const TensorDesc> inputs, const ModelParams&,
                        absl::Span<TensorDesc> outputs) const override {
    if (inputs[0].dtype != DataType::kFp32) {
      return absl::InvalidArgumentError("inputs[0] (INPUT0): expected FP32");
    }
    outputs[0] = inputs[0];
    return absl::OkStatus();
  }
  absl::Status Execute(Stream& stream, absl::Span<const DeviceTensor> inputs,
                       const ModelParams& params,
                       absl::Span<const DeviceTensor> outputs) const override {
    std::shared_ptr<Gate> gate;
    {
      absl::MutexLock lock(&mu_);
      if (fail_devices_.contains(stream.device().index())) {
        ++failures_;
        return absl::InternalError(
            absl::StrCat("injected fault on device ", stream.device().index()));
      }
      if (fail_always_) return absl::InvalidArgumentError("injected invalid input");
      tags_.push_back(params.factor);
      devices_.push_back(stream.device().index());
      streams_.push_back(stream.id());
      rows_.push_back(inputs[0].desc->shape.empty() ? 0 : inputs[0].desc->shape[0]);
      auto it = gates_.find(stream.device().index());
      gate = it != gates_.end() ? it->second : gate_;
    }
    if (gate != nullptr) {
      absl::Status st = stream.ThenCallback([gate](absl::Status) { gate->Wait(); });
      if (!st.ok()) return st;
    }
    return stream.device().kernels().Scale(stream, DataType::kFp32, inputs[0].data, 2.0,
                                           outputs[0].data, inputs[0].desc->byte_size / 4);
  }

  // Gates later executions (on `device` only, when >= 0); null removes.
  void SetGate(std::shared_ptr<Gate> gate, int device = -1) {
    absl::MutexLock lock(&mu_);
    if (device >= 0) {
      if (gate == nullptr) {
        gates_.erase(device);
      } else {
        gates_[device] = std::move(gate);
      }
    } else {
      gate_ = std::move(gate);
    }
  }
  void FailOn(int device) {
    absl::MutexLock lock(&mu_);
    fail_devices_.insert(device);
  }
  void HealDevice(int device) {
    absl::MutexLock lock(&mu_);
    fail_devices_.erase(device);
  }
  void FailAlways(bool fail) {
    absl::MutexLock lock(&mu_);
    fail_always_ = fail;
  }
  std::vector<double> tags() const {
    absl::MutexLock lock(&mu_);
    return tags_;
  }
  std::vector<int> devices() const {
    absl::MutexLock lock(&mu_);
    return devices_;
  }
  // The id of the stream each execution was enqueued on.
  std::vector<int> streams() const {
    absl::MutexLock lock(&mu_);
    return streams_;
  }
  std::vector<int64_t> rows() const {
    absl::MutexLock lock(&mu_);
    return rows_;
  }
  int failures() const {
    absl::MutexLock lock(&mu_);
    return failures_;
  }

 private:
  ModelSignature sig_;
  mutable absl::Mutex mu_;
  std::shared_ptr<Gate> gate_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<int, std::shared_ptr<Gate>> gates_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<int> fail_devices_ ABSL_GUARDED_BY(mu_);
  bool fail_always_ ABSL_GUARDED_BY(mu_) = false;
  mutable std::vector<double> tags_ ABSL_GUARDED_BY(mu_);
  mutable std::vector<int> devices_ ABSL_GUARDED_BY(mu_);
  mutable std::vector<int> streams_ ABSL_GUARDED_BY(mu_);
  mutable std::vector<int64_t> rows_ ABSL_GUARDED_BY(mu_);
  mutable int failures_ ABSL_GUARDED_BY(mu_) = 0;
};

// One ModelInfer-style request: owns its input bytes, collects its output.
class TestCall final : public InferResponder {
 public:
  // A [rows, cols] FP32 input of value base + i at element i.
  TestCall(std::shared_ptr<const Model> model, int64_t rows, int64_t cols, float base,
           Priority priority = Priority::kNormal, double tag = 0) {
    input_.resize(static_cast<size_t>(rows * cols));
    for (size_t i = 0; i < input_.size(); ++i) input_[i] = base + static_cast<float>(i);
    request_.model = std::move(model);
    request_.priority = priority;
    request_.params.factor = tag;
    InferInput in;
    in.name = "INPUT0";
    in.desc.dtype = DataType::kFp32;
    in.desc.shape = {rows, cols};
    in.desc.byte_size = input_.size() * sizeof(float);
    in.data = input_.data();
    request_.inputs.push_back(in);
  }

  ~TestCall() override {
    if (own_thread_.joinable()) own_thread_.join();
  }

  InferRequest request() const { return request_; }
  const std::vector<float>& input() const { return input_; }

  // From now on the call has a thread of its own, as a front end's call
  // does (InferResponder::RunOnOwnThread): work handed to it runs there,
  // once `gate` (if any) opens. Call before submitting.
  void UseOwnThread(std::shared_ptr<Gate> gate = nullptr) {
    own_thread_wanted_ = true;
    own_gate_ = std::move(gate);
  }
  bool RunOnOwnThread(ResponderWork* work) override {
    if (!own_thread_wanted_ || own_thread_.joinable()) return false;
    own_thread_ = std::thread([this, work] {
      if (own_gate_ != nullptr) own_gate_->Wait();
      running_own_ = this;
      work->Run();
      running_own_ = nullptr;
    });
    return true;
  }
  // Whether Complete ran on the call's own thread (UseOwnThread).
  bool completed_on_own_thread() const {
    absl::MutexLock lock(&mu_);
    return completed_on_own_thread_;
  }

  void* AllocateOutput(int index, const TensorSpec&, const TensorDesc& desc) override {
    absl::MutexLock lock(&mu_);
    inline_completion_ = InlineCompletionScope::Active();
    output_desc_ = desc;
    output_.resize(desc.byte_size / sizeof(float));
    ++allocations_;
    return output_.data();
  }
  // Runs inside Complete, before the call counts as done.
  void OnComplete(std::function<void()> fn) { on_complete_ = std::move(fn); }
  void Complete(absl::Status status) override {
    if (on_complete_) on_complete_();
    {
      absl::MutexLock lock(&mu_);
      status_ = std::move(status);
      completed_on_own_thread_ = running_own_ == this;
      ++completions_;
      if (completions_ > 1) ADD_FAILURE() << "responder completed twice";
    }
    done_.Notify();
  }

  // Blocks until Complete (tests give it a generous gtest timeout).
  absl::Status Wait() {
    done_.WaitForNotification();
    absl::MutexLock lock(&mu_);
    return status_;
  }
  bool done() const { return done_.HasBeenNotified(); }
  std::vector<float> output() const {
    absl::MutexLock lock(&mu_);
    return output_;
  }
  TensorDesc output_desc() const {
    absl::MutexLock lock(&mu_);
    return output_desc_;
  }
  int allocations() const {
    absl::MutexLock lock(&mu_);
    return allocations_;
  }
  // Whether the execution asked for the output inside an active
  // InlineCompletionScope (its stream may complete it on that thread).
  bool inline_completion() const {
    absl::MutexLock lock(&mu_);
    return inline_completion_;
  }
  int completions() const {
    absl::MutexLock lock(&mu_);
    return completions_;
  }

 private:
  std::vector<float> input_;
  InferRequest request_;
  std::function<void()> on_complete_;  // set before the call is submitted
  bool own_thread_wanted_ = false;     // likewise
  std::shared_ptr<Gate> own_gate_;     // likewise
  std::thread own_thread_;             // started by RunOnOwnThread
  static inline thread_local const TestCall* running_own_ = nullptr;
  absl::Notification done_;
  mutable absl::Mutex mu_;
  std::vector<float> output_ ABSL_GUARDED_BY(mu_);
  TensorDesc output_desc_ ABSL_GUARDED_BY(mu_);
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  int allocations_ ABSL_GUARDED_BY(mu_) = 0;
  bool inline_completion_ ABSL_GUARDED_BY(mu_) = false;
  int completions_ ABSL_GUARDED_BY(mu_) = 0;
  bool completed_on_own_thread_ ABSL_GUARDED_BY(mu_) = false;
};

// What TestModel answers: each input value doubled.
inline std::vector<float> Doubled(const std::vector<float>& v) {
  std::vector<float> out;
  for (float x : v) out.push_back(2 * x);
  return out;
}

// Waits for each call and expects it answered OK with its own rows doubled.
inline void ExpectEachAnsweredDoubled(std::initializer_list<TestCall*> calls) {
  for (TestCall* t : calls) {
    const absl::Status st = t->Wait();
    EXPECT_TRUE(st.ok()) << st;
    if (st.ok()) {
      EXPECT_EQ(t->output(), Doubled(t->input()));
    }
  }
}

inline std::vector<std::unique_ptr<HostDevice>> MakeHostDevices(int n, bool inline_when_idle,
                                                                int streams = 4,
                                                                uint64_t capacity = 64 << 20) {
  std::vector<std::unique_ptr<HostDevice>> out;
  for (int i = 0; i < n; ++i) {
    HostDeviceOptions o;
    o.index = i;
    o.ordinal = i;
    o.capacity_bytes = capacity;
    o.num_streams = streams;
    o.inline_when_idle = inline_when_idle;
    out.push_back(std::make_unique<HostDevice>(o));
  }
  return out;
}

// A tensor store over host devices: handles are "t<N>". Thread-safe.
class FakeTensorAccess final : public TensorAccess {
 public:
  explicit FakeTensorAccess(std::vector<Device*> devices) : devices_(std::move(devices)) {}
  ~FakeTensorAccess() override {
    for (auto& [handle, t] : tensors_) devices_[t.device]->FreeRaw(t.data);
  }

  // Stores `values` (FP32, shape {n}) on `device`; returns the handle.
  std::string Put(int device, const std::vector<float>& values) {
    TensorDesc desc;
    desc.dtype = DataType::kFp32;
    desc.shape = {static_cast<int64_t>(values.size())};
    desc.byte_size = values.size() * sizeof(float);
    std::string handle;
    absl::StatusOr<AccessedTensor> t = CreateOutput(device, desc, "test", &handle);
    std::memcpy(t->data, values.data(), desc.byte_size);
    Release(*t);
    return handle;
  }
  std::vector<float> Get(const std::string& handle) {
    absl::MutexLock lock(&mu_);
    const Entry& e = tensors_.at(handle);
    std::vector<float> out(e.desc.byte_size / sizeof(float));
    std::memcpy(out.data(), e.data, e.desc.byte_size);
    return out;
  }
  int pins() const {
    absl::MutexLock lock(&mu_);
    int n = 0;
    for (const auto& [handle, e] : tensors_) n += e.pins;
    return n;
  }
  size_t count() const {
    absl::MutexLock lock(&mu_);
    return tensors_.size();
  }

  // inferd::TensorAccess
  absl::StatusOr<StoredTensor> Describe(absl::string_view handle) override {
    absl::MutexLock lock(&mu_);
    auto it = tensors_.find(handle);
    if (it == tensors_.end()) return absl::NotFoundError(absl::StrCat("no tensor ", handle));
    return StoredTensor{it->second.device, it->second.desc};
  }
  absl::StatusOr<AccessedTensor> Pin(absl::string_view handle) override {
    absl::MutexLock lock(&mu_);
    auto it = tensors_.find(handle);
    if (it == tensors_.end()) return absl::NotFoundError(absl::StrCat("no tensor ", handle));
    ++it->second.pins;
    return AccessedTensor{it->second.device, it->second.data, it->second.desc, it->second.token};
  }
  absl::StatusOr<AccessedTensor> CreateOutput(int device, const TensorDesc& desc,
                                              absl::string_view owner,
                                              std::string* handle) override {
    absl::StatusOr<void*> mem =
        devices_[device]->AllocateRaw(std::max<uint64_t>(desc.byte_size, 1));
    if (!mem.ok()) return mem.status();
    absl::MutexLock lock(&mu_);
    *handle = absl::StrCat("t", next_++);
    Entry e{device, *mem, desc, 1, next_};
    tokens_[e.token] = *handle;
    tensors_[*handle] = e;
    return AccessedTensor{device, *mem, desc, e.token};
  }
  void Release(const AccessedTensor& tensor) override {
    absl::MutexLock lock(&mu_);
    auto it = tokens_.find(tensor.token);
    if (it != tokens_.end()) --tensors_.at(it->second).pins;
  }
  void Free(absl::string_view handle) override {
    absl::MutexLock lock(&mu_);
    auto it = tensors_.find(handle);
    if (it == tensors_.end() || it->second.pins > 0) return;
    devices_[it->second.device]->FreeRaw(it->second.data);
    tokens_.erase(it->second.token);
    tensors_.erase(it);
  }

 private:
  struct Entry {
    int device = 0;
    void* data = nullptr;
    TensorDesc desc;
    int pins = 0;
    uint64_t token = 0;
  };
  const std::vector<Device*> devices_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> tensors_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, std::string> tokens_ ABSL_GUARDED_BY(mu_);
  uint64_t next_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace inferd::testing

#endif  // INFERD_TESTS_CORE_SCHED_SCHED_TEST_UTIL_H_
