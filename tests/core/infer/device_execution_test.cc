// ExecuteOnDevice with and without a pinned staging block, on an
// asynchronous host device (its streams run work on their own threads, as
// a GPU's do).
#include "core/infer/device_execution.h"

#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "core/device/device_allocator.h"
#include "core/device/host_device.h"
#include "core/models/model.h"
#include "gtest/gtest.h"
#include "tests/core/infer/staging_test_allocator.h"
#include "tests/core/models/model_test_util.h"

namespace inferd {
namespace {

using testing_models::CollectingResponder;

// Raw device buffers; pinned staging blocks when staging is on.
using StagingAllocator = testing_infer::StagingTestAllocator;

std::shared_ptr<const Model> Builtin(const std::string& name) {
  for (auto& m : BuiltinModels()) {
    if (m->signature().name == name) return m;
  }
  return nullptr;
}

// n values step * i + offset.
std::vector<float> Ramp(size_t n, float step, float offset = 0) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = step * static_cast<float>(i) + offset;
  return v;
}

class DeviceExecutionTest : public ::testing::TestWithParam<bool> {
 protected:
  DeviceExecutionTest() {
    HostDeviceOptions o;
    o.capacity_bytes = 64 << 20;
    o.num_streams = 2;
    o.inline_when_idle = false;
    device_ = std::make_unique<HostDevice>(o);
  }

  // Runs `model` on fp32 inputs of `n` elements each; returns output 0.
  std::vector<float> Run(const std::string& model, const std::vector<std::vector<float>>& xs,
                         DeviceAllocator& allocator) {
    InferRequest request;
    request.model = Builtin(model);
    EXPECT_NE(request.model, nullptr);
    for (size_t i = 0; i < xs.size(); ++i) {
      request.inputs.push_back(
          InferInput{i == 0 ? "INPUT0" : "INPUT1",
                     TensorDesc{DataType::kFp32, {static_cast<int64_t>(xs[i].size())},
                                xs[i].size() * sizeof(float)},
                     xs[i].data()});
    }
    CollectingResponder responder;
    ExecuteOnDevice(std::move(request), device_->stream(0), allocator, &responder);
    responder.done.WaitForNotification();
    EXPECT_TRUE(responder.status.ok()) << responder.status;
    if (!responder.status.ok() || responder.outputs.empty()) return {};
    std::vector<float> y(responder.outputs[0].size() / sizeof(float));
    std::memcpy(y.data(), responder.outputs[0].data(), responder.outputs[0].size());
    return y;
  }

  std::unique_ptr<HostDevice> device_;
};

TEST_P(DeviceExecutionTest, HostInputsAndOutputsArriveIntact) {
  const bool stage = GetParam();
  StagingAllocator allocator(*device_, stage);
  std::vector<float> a(10000), b(10000), sum(10000);
  for (size_t i = 0; i < a.size(); ++i) {
    a[i] = static_cast<float>(i);
    b[i] = 0.5f * static_cast<float>(i);
    sum[i] = a[i] + b[i];
  }
  EXPECT_EQ(Run("identity", {a}, allocator), a);
  EXPECT_EQ(Run("add", {a, b}, allocator), sum);
  EXPECT_EQ(allocator.staged(), stage ? 2 : 0);
  EXPECT_EQ(allocator.returned(), allocator.staged());
}

TEST_P(DeviceExecutionTest, ManyRequestsInFlightKeepTheirOwnBytes) {
  StagingAllocator allocator(*device_, GetParam());
  constexpr int kRequests = 64;
  std::vector<std::vector<float>> xs(kRequests);
  std::vector<std::unique_ptr<CollectingResponder>> responders;
  for (int r = 0; r < kRequests; ++r) {
    xs[r].assign(257, static_cast<float>(r));
    InferRequest request;
    request.model = Builtin("identity");
    request.inputs.push_back(
        InferInput{"INPUT0", TensorDesc{DataType::kFp32, {257}, 257 * sizeof(float)},
                   xs[r].data()});
    responders.push_back(std::make_unique<CollectingResponder>());
    ExecuteOnDevice(std::move(request), device_->stream(r % 2), allocator,
                    responders.back().get());
  }
  for (int r = 0; r < kRequests; ++r) {
    responders[r]->done.WaitForNotification();
    ASSERT_TRUE(responders[r]->status.ok()) << responders[r]->status;
    std::vector<float> y(257);
    std::memcpy(y.data(), responders[r]->outputs[0].data(), 257 * sizeof(float));
    EXPECT_EQ(y, xs[r]) << "request " << r;
  }
  EXPECT_EQ(allocator.returned(), allocator.staged());
}

// Inputs marked pinned and a responder whose output memory is pinned (a
// merged batch's) are copied directly: no staging block is taken.
TEST_P(DeviceExecutionTest, PinnedInputsAndOutputsTakeNoStagingBlock) {
  StagingAllocator allocator(*device_, GetParam());
  std::vector<float> x = Ramp(4096, 0.25f);
  InferRequest request;
  request.model = Builtin("identity");
  request.inputs.push_back(InferInput{
      "INPUT0", TensorDesc{DataType::kFp32, {4096}, 4096 * sizeof(float)}, x.data()});
  request.inputs[0].pinned = true;
  CollectingResponder responder;
  responder.pinned_outputs = true;
  ExecuteOnDevice(std::move(request), device_->stream(0), allocator, &responder);
  responder.done.WaitForNotification();
  ASSERT_TRUE(responder.status.ok()) << responder.status;
  ASSERT_EQ(responder.outputs[0].size(), x.size() * sizeof(float));
  EXPECT_EQ(std::memcmp(responder.outputs[0].data(), x.data(), x.size() * sizeof(float)), 0);
  EXPECT_EQ(allocator.staged(), 0);
}

// Forwards to a stream and counts the host copies enqueued on it.
class CountingStream final : public Stream {
 public:
  explicit CountingStream(Stream& inner) : inner_(inner) {}
  Device& device() override { return inner_.device(); }
  int id() const override { return inner_.id(); }
  absl::Status CopyHostToDevice(void* dst, const void* src, size_t bytes) override {
    ++to_device;
    return inner_.CopyHostToDevice(dst, src, bytes);
  }
  absl::Status CopyDeviceToHost(void* dst, const void* src, size_t bytes) override {
    ++to_host;
    return inner_.CopyDeviceToHost(dst, src, bytes);
  }
  absl::Status CopyDeviceToDevice(void* dst, const void* src, size_t bytes) override {
    ++within_device;
    return inner_.CopyDeviceToDevice(dst, src, bytes);
  }
  absl::Status CopyFromPeer(void* dst, Device& src_device, const void* src,
                            size_t bytes) override {
    return inner_.CopyFromPeer(dst, src_device, src, bytes);
  }
  absl::Status Memset(void* dst, uint8_t value, size_t bytes) override {
    return inner_.Memset(dst, value, bytes);
  }
  absl::Status ThenCallback(absl::AnyInvocable<void(absl::Status) &&> fn) override {
    ++callbacks;
    return inner_.ThenCallback(std::move(fn));
  }
  absl::Status RecordEvent(Event& event) override { return inner_.RecordEvent(event); }
  absl::Status WaitEvent(Event& event) override { return inner_.WaitEvent(event); }
  absl::Status Synchronize() override { return inner_.Synchronize(); }
  void* native_handle() override { return inner_.native_handle(); }

  std::atomic<int> to_device{0};
  std::atomic<int> to_host{0};
  std::atomic<int> callbacks{0};
  std::atomic<int> within_device{0};

 private:
  Stream& inner_;
};

// Two inputs and two outputs of any length: OUTPUT0 = INPUT1 and
// OUTPUT1 = INPUT0, by stream copies (so a CountingStream can run it).
class SwapModel final : public Model {
 public:
  SwapModel() {
    sig_.name = "swap";
    sig_.inputs = {{"INPUT0", DataType::kFp32, {-1}}, {"INPUT1", DataType::kFp32, {-1}}};
    sig_.outputs = {{"OUTPUT0", DataType::kFp32, {-1}}, {"OUTPUT1", DataType::kFp32, {-1}}};
  }
  const ModelSignature& signature() const override { return sig_; }
  absl::Status Validate(absl::Span<const TensorDesc> inputs, const ModelParams&,
                        absl::Span<TensorDesc> outputs) const override {
    outputs[0] = inputs[1];
    outputs[1] = inputs[0];
    return absl::OkStatus();
  }
  absl::Status Execute(Stream& stream, absl::Span<const DeviceTensor> inputs, const ModelParams&,
                       absl::Span<const DeviceTensor> outputs) const override {
    if (gate_ != nullptr) {
      // The stream holds here until the gate opens.
      absl::Status st = stream.ThenCallback([gate = gate_](absl::Status) {
        gate->WaitForNotification();
      });
      if (!st.ok()) return st;
    }
    for (int i = 0; i < 2; ++i) {
      absl::Status st = stream.CopyDeviceToDevice(outputs[i].data, inputs[1 - i].data,
                                                  inputs[1 - i].desc->byte_size);
      if (!st.ok()) return st;
    }
    return absl::OkStatus();
  }
  // Its executions hold their stream until `gate` opens.
  void set_gate(absl::Notification* gate) { gate_ = gate; }

 private:
  ModelSignature sig_;
  absl::Notification* gate_ = nullptr;
};

// A request of `model` (SwapModel) with INPUT0 = a and INPUT1 = b.
InferRequest SwapRequest(std::shared_ptr<const Model> model, const std::vector<float>& a,
                         const std::vector<float>& b) {
  InferRequest request;
  request.model = std::move(model);
  for (const auto* x : {&a, &b}) {
    const int64_t n = static_cast<int64_t>(x->size());
    request.inputs.push_back(InferInput{request.inputs.empty() ? "INPUT0" : "INPUT1",
                                        TensorDesc{DataType::kFp32, {n}, x->size() * sizeof(float)},
                                        x->data()});
  }
  return request;
}

// Checks that `responder` succeeded with OUTPUT0 = b and OUTPUT1 = a.
void ExpectSwapped(const CollectingResponder& responder, const std::vector<float>& a,
                   const std::vector<float>& b) {
  ASSERT_TRUE(responder.status.ok()) << responder.status;
  ASSERT_EQ(responder.outputs.size(), 2u);
  std::vector<float> out0(b.size()), out1(a.size());
  ASSERT_EQ(responder.outputs[0].size(), out0.size() * sizeof(float));
  ASSERT_EQ(responder.outputs[1].size(), out1.size() * sizeof(float));
  std::memcpy(out0.data(), responder.outputs[0].data(), responder.outputs[0].size());
  std::memcpy(out1.data(), responder.outputs[1].data(), responder.outputs[1].size());
  EXPECT_EQ(out0, b);
  EXPECT_EQ(out1, a);
}

// Staged inputs lie in the staging block as in the device buffer, and so
// do staged outputs: each direction takes one copy call, whatever the
// number of tensors, and every tensor still arrives intact (sizes that are
// not multiples of the 256-byte alignment leave gaps between them).
TEST_P(DeviceExecutionTest, StagedTensorsCrossInOneCopyEachWay) {
  const bool stage = GetParam();
  StagingAllocator allocator(*device_, stage);
  const std::vector<float> a = Ramp(1001, 1), b = Ramp(77, 3, 0.5f);
  InferRequest request = SwapRequest(std::make_shared<SwapModel>(), a, b);
  CountingStream stream(device_->stream(0));
  CollectingResponder responder;
  ExecuteOnDevice(std::move(request), stream, allocator, &responder);
  responder.done.WaitForNotification();
  ExpectSwapped(responder, a, b);
  EXPECT_EQ(stream.to_device.load(), stage ? 1 : 2);
  EXPECT_EQ(stream.to_host.load(), stage ? 1 : 2);
}

// With a model stream (ModelStream: a model whose executions queue on one
// stream), the model's work goes there and only the copies and the
// completion on the execution's own stream; the output copies wait for the
// model: with the model stream held, the call does not complete, and once
// it is let go the outputs are the model's.
TEST_P(DeviceExecutionTest, TheModelRunsOnTheModelStreamAndTheCopiesOnTheirOwn) {
  const bool stage = GetParam();
  StagingAllocator allocator(*device_, stage);
  const std::vector<float> a = Ramp(300, 1), b = Ramp(40, 7, 0.25f);
  // The model holds its stream until the gate opens.
  absl::Notification gate;
  auto swap = std::make_shared<SwapModel>();
  swap->set_gate(&gate);
  InferRequest request = SwapRequest(swap, a, b);
  CountingStream copies(device_->stream(0));
  CountingStream model(device_->stream(1));
  std::unique_ptr<Event> events[3] = {device_->CreateEvent(), device_->CreateEvent(),
                                      device_->CreateEvent()};
  const ModelStream split{&model, events[0].get(), events[1].get(), events[2].get()};
  CollectingResponder responder;
  ExecuteOnDevice(std::move(request), copies, allocator, &responder, &split);
  EXPECT_FALSE(responder.done.WaitForNotificationWithTimeout(absl::Milliseconds(50)))
      << "completed before its model ran";
  gate.Notify();
  responder.done.WaitForNotification();
  ExpectSwapped(responder, a, b);
  EXPECT_EQ(model.within_device.load(), 2);  // the model's two copies
  EXPECT_EQ(copies.within_device.load(), 0);
  EXPECT_EQ(model.to_device.load() + model.to_host.load(), 0);
  EXPECT_EQ(model.callbacks.load(), 1);  // the gate's
  EXPECT_GT(copies.to_device.load(), 0);
  EXPECT_GT(copies.to_host.load(), 0);
  EXPECT_EQ(copies.callbacks.load(), 1);
}

// A model whose launch always fails.
class FailingModel final : public Model {
 public:
  FailingModel() {
    sig_.name = "failing";
    sig_.inputs = {{"INPUT0", DataType::kFp32, {-1}}};
    sig_.outputs = {{"OUTPUT0", DataType::kFp32, {-1}}};
  }
  const ModelSignature& signature() const override { return sig_; }
  absl::Status Validate(absl::Span<const TensorDesc> inputs, const ModelParams&,
                        absl::Span<TensorDesc> outputs) const override {
    outputs[0] = inputs[0];
    return absl::OkStatus();
  }
  absl::Status Execute(Stream&, absl::Span<const DeviceTensor>, const ModelParams&,
                       absl::Span<const DeviceTensor>) const override {
    return absl::InternalError("failing: launch refused");
  }

 private:
  ModelSignature sig_;
};

// A group runs each request as ExecuteOnDevice would (identity and swap
// side by side, sizes off the 256-byte alignment), with one copy each way
// for all their staged tensors and one stream callback; a request that
// fails validation fails alone.
TEST_P(DeviceExecutionTest, AGroupSharesItsCopiesAndOneCallback) {
  const bool stage = GetParam();
  StagingAllocator allocator(*device_, stage);
  constexpr int kIdentity = 6;
  std::vector<std::vector<float>> xs(kIdentity);
  std::vector<InferRequest> requests(kIdentity + 2);
  const std::shared_ptr<const Model> identity = Builtin("identity");  // one model, as served
  for (int r = 0; r < kIdentity; ++r) {
    xs[r].resize(100 + 37 * r);
    for (size_t i = 0; i < xs[r].size(); ++i) xs[r][i] = static_cast<float>(r * 1000 + i);
    requests[r].model = identity;
    requests[r].inputs.push_back(
        InferInput{"INPUT0",
                   TensorDesc{DataType::kFp32, {static_cast<int64_t>(xs[r].size())},
                              xs[r].size() * sizeof(float)},
                   xs[r].data()});
  }
  // Swap: two inputs, two outputs.
  InferRequest& swap = requests[kIdentity];
  swap.model = std::make_shared<SwapModel>();
  for (int i = 0; i < 2; ++i) {
    swap.inputs.push_back(InferInput{i == 0 ? "INPUT0" : "INPUT1",
                                     TensorDesc{DataType::kFp32, {static_cast<int64_t>(
                                                                     xs[i].size())},
                                                xs[i].size() * sizeof(float)},
                                     xs[i].data()});
  }
  // add with inputs of different types: fails validation.
  InferRequest& bad = requests[kIdentity + 1];
  bad.model = Builtin("add");
  std::vector<int32_t> ints(xs[0].size());
  bad.inputs.push_back(InferInput{
      "INPUT0", TensorDesc{DataType::kFp32, {static_cast<int64_t>(xs[0].size())},
                           xs[0].size() * sizeof(float)},
      xs[0].data()});
  bad.inputs.push_back(InferInput{
      "INPUT1", TensorDesc{DataType::kInt32, {static_cast<int64_t>(ints.size())},
                           ints.size() * sizeof(int32_t)},
      ints.data()});

  std::vector<std::unique_ptr<CollectingResponder>> responders;
  std::vector<GroupedRequest> group(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    responders.push_back(std::make_unique<CollectingResponder>());
    group[i].request = &requests[i];
    group[i].responder = responders.back().get();
  }
  CountingStream stream(device_->stream(0));
  absl::Notification done;
  absl::Status shared = absl::UnknownError("not called");
  int calls = 0;
  ExecuteGroupOnDevice(absl::MakeSpan(group), stream, allocator, [&](absl::Status st) {
    shared = std::move(st);
    ++calls;
    done.Notify();
  });
  done.WaitForNotification();
  ASSERT_TRUE(shared.ok()) << shared;
  EXPECT_EQ(calls, 1);
  for (int r = 0; r < kIdentity; ++r) {
    ASSERT_TRUE(group[r].status.ok()) << "request " << r << ": " << group[r].status;
    ASSERT_EQ(responders[r]->outputs.size(), 1u);
    ASSERT_EQ(responders[r]->outputs[0].size(), xs[r].size() * sizeof(float));
    EXPECT_EQ(std::memcmp(responders[r]->outputs[0].data(), xs[r].data(),
                          xs[r].size() * sizeof(float)),
              0)
        << "request " << r;
    EXPECT_FALSE(responders[r]->done.HasBeenNotified()) << "Complete is the caller's";
  }
  ASSERT_TRUE(group[kIdentity].status.ok()) << group[kIdentity].status;
  ASSERT_EQ(responders[kIdentity]->outputs.size(), 2u);
  EXPECT_EQ(responders[kIdentity]->outputs[0].size(), xs[1].size() * sizeof(float));
  EXPECT_EQ(std::memcmp(responders[kIdentity]->outputs[0].data(), xs[1].data(),
                        xs[1].size() * sizeof(float)),
            0);
  EXPECT_EQ(std::memcmp(responders[kIdentity]->outputs[1].data(), xs[0].data(),
                        xs[0].size() * sizeof(float)),
            0);
  EXPECT_EQ(group[kIdentity + 1].status.code(), absl::StatusCode::kInvalidArgument)
      << group[kIdentity + 1].status;
  EXPECT_TRUE(responders[kIdentity + 1]->outputs.empty());
  // Staged: one copy each way for all; direct: one per tensor.
  EXPECT_EQ(stream.to_device.load(), stage ? 1 : kIdentity + 2);
  EXPECT_EQ(stream.to_host.load(), stage ? 1 : kIdentity + 2);
  EXPECT_EQ(stream.callbacks.load(), 1);
  // The six identity requests lie side by side: one copy for all of them
  // (Model::ExecuteMany); swap copies its two tensors.
  EXPECT_EQ(stream.within_device.load(), 1 + 2);
  EXPECT_EQ(allocator.returned(), allocator.staged());
}

// A request whose model's launch fails fails alone; the others' results
// arrive.
TEST_P(DeviceExecutionTest, ALaunchThatFailsFailsAlone) {
  StagingAllocator allocator(*device_, GetParam());
  std::vector<float> x(300, 1.5f);
  const std::shared_ptr<const Model> identity = Builtin("identity");
  const auto failing_model = std::make_shared<FailingModel>();
  InferRequest requests[3];
  for (int i = 0; i < 3; ++i) {
    requests[i].model = i == 1 ? std::shared_ptr<const Model>(failing_model) : identity;
    requests[i].inputs.push_back(
        InferInput{"INPUT0", TensorDesc{DataType::kFp32, {300}, 1200}, x.data()});
  }
  CollectingResponder responders[3];
  GroupedRequest group[3];
  for (int i = 0; i < 3; ++i) group[i] = {&requests[i], &responders[i], absl::OkStatus()};
  absl::Notification done;
  ExecuteGroupOnDevice(absl::MakeSpan(group), device_->stream(0), allocator,
                       [&](absl::Status st) {
                         EXPECT_TRUE(st.ok()) << st;
                         done.Notify();
                       });
  done.WaitForNotification();
  EXPECT_EQ(group[1].status.code(), absl::StatusCode::kInternal);
  EXPECT_NE(group[1].status.message().find("launch refused"), std::string::npos);
  EXPECT_TRUE(responders[1].outputs.empty());
  for (int i : {0, 2}) {
    ASSERT_TRUE(group[i].status.ok()) << group[i].status;
    ASSERT_EQ(responders[i].outputs.size(), 1u);
    EXPECT_EQ(std::memcmp(responders[i].outputs[0].data(), x.data(), 1200), 0);
  }
  EXPECT_EQ(allocator.returned(), allocator.staged());
}

// A request whose status is not OK on entry (the scheduler found it
// cancelled) is skipped and keeps its status; the others run.
TEST_P(DeviceExecutionTest, AGroupSkipsRequestsThatFailedBefore) {
  StagingAllocator allocator(*device_, GetParam());
  std::vector<float> x(300, 1.5f), y(200, 2.5f);
  InferRequest a, b;
  a.model = b.model = Builtin("identity");
  a.inputs.push_back(InferInput{"INPUT0", TensorDesc{DataType::kFp32, {300}, 1200}, x.data()});
  b.inputs.push_back(InferInput{"INPUT0", TensorDesc{DataType::kFp32, {200}, 800}, y.data()});
  CollectingResponder ra, rb;
  GroupedRequest group[2] = {{&a, &ra, absl::CancelledError("cancelled while queued")},
                             {&b, &rb, absl::OkStatus()}};
  absl::Notification done;
  ExecuteGroupOnDevice(absl::MakeSpan(group), device_->stream(0), allocator,
                       [&](absl::Status) { done.Notify(); });
  done.WaitForNotification();
  EXPECT_EQ(group[0].status.code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(ra.outputs.empty());
  ASSERT_TRUE(group[1].status.ok()) << group[1].status;
  ASSERT_EQ(rb.outputs.size(), 1u);
  EXPECT_EQ(std::memcmp(rb.outputs[0].data(), y.data(), 800), 0);
}

// A group of requests that all fail validation enqueues nothing and
// reports at once.
TEST_P(DeviceExecutionTest, AGroupWithNothingToRunReportsAtOnce) {
  StagingAllocator allocator(*device_, GetParam());
  std::vector<float> x(8);
  std::vector<int32_t> y(8);
  InferRequest bad;
  bad.model = Builtin("add");
  bad.inputs.push_back(InferInput{"INPUT0", TensorDesc{DataType::kFp32, {8}, 32}, x.data()});
  bad.inputs.push_back(InferInput{"INPUT1", TensorDesc{DataType::kInt32, {8}, 32}, y.data()});
  CollectingResponder responder;
  GroupedRequest one{&bad, &responder, absl::OkStatus()};
  CountingStream stream(device_->stream(0));
  bool called = false;
  ExecuteGroupOnDevice(absl::MakeSpan(&one, 1), stream, allocator, [&](absl::Status st) {
    EXPECT_TRUE(st.ok()) << st;
    called = true;
  });
  EXPECT_TRUE(called);
  EXPECT_EQ(one.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(stream.callbacks.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(StagedAndDirect, DeviceExecutionTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Staged" : "Direct"; });

}  // namespace
}  // namespace inferd
