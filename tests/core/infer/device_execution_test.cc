// ExecuteOnDevice with and without a pinned staging block, on an
// asynchronous host device (its streams run work on their own threads, as
// a GPU's do).
#include "core/infer/device_execution.h"

#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/device/device_allocator.h"
#include "core/device/host_device.h"
#include "core/memory/staging_pool.h"
#include "core/models/model.h"
#include "gtest/gtest.h"
#include "tests/core/models/model_test_util.h"

namespace inferd {
namespace {

using testing_models::CollectingResponder;

// Raw device buffers, and staging blocks from a StagingPool when enabled.
class StagingAllocator final : public DeviceAllocator {
 public:
  StagingAllocator(Device& device, bool stage) : pool_(device, {}), stage_(stage) {}

  absl::StatusOr<void*> Allocate(Device& device, Stream& stream, size_t bytes) override {
    return raw_->Allocate(device, stream, bytes);
  }
  void Free(Device& device, Stream& stream, void* ptr) override {
    raw_->Free(device, stream, ptr);
  }
  void* AllocateStaging(Device&, size_t bytes) override {
    if (!stage_) return nullptr;
    void* p = pool_.Allocate(bytes);
    if (p != nullptr) {
      ++staged_;
      // Garbage, so a result read from a block nobody copied into shows.
      std::memset(p, 0xAB, bytes);
    }
    return p;
  }
  void FreeStaging(Device&, void* ptr, size_t bytes) override {
    ++returned_;
    pool_.Free(ptr, bytes);
  }

  int staged() const { return staged_.load(); }
  int returned() const { return returned_.load(); }

 private:
  std::unique_ptr<DeviceAllocator> raw_ = NewRawDeviceAllocator();
  StagingPool pool_;
  const bool stage_;
  std::atomic<int> staged_{0};
  std::atomic<int> returned_{0};
};

std::shared_ptr<const Model> Builtin(const std::string& name) {
  for (auto& m : BuiltinModels()) {
    if (m->signature().name == name) return m;
  }
  return nullptr;
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
  std::vector<float> x(4096);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) * 0.25f;
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

INSTANTIATE_TEST_SUITE_P(StagedAndDirect, DeviceExecutionTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Staged" : "Direct"; });

}  // namespace
}  // namespace inferd
