// The scheduler's batch cap over the real memory engine on host devices.
#include "core/sched/memory_batch_size.h"

#include <memory>
#include <vector>

#include "core/device/host_device.h"
#include "core/memory/memory_engine.h"
#include "core/util/clock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "tests/core/sched/sched_test_util.h"

namespace inferd {
namespace {

ModelSignature Signature(int max_batch, int64_t in_cols, int64_t out_cols) {
  ModelSignature sig;
  sig.name = "m";
  sig.max_batch_size = max_batch;
  sig.inputs = {{"INPUT0", DataType::kFp32, {-1, in_cols}}, {"INPUT1", DataType::kFp16, {-1, 8}}};
  sig.outputs = {{"OUTPUT0", DataType::kFp32, {-1, out_cols}}};
  return sig;
}

class MemoryBatchSizeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    devices_ = testing::MakeHostDevices(2, /*inline_when_idle=*/true, 2, kCapacity);
    for (auto& d : devices_) ptrs_.push_back(d.get());
    MemoryEngineOptions mo;
    mo.pool_size_mb = 4;
    mo.enable_monitoring = false;
    auto engine = MemoryEngine::Create(mo, ptrs_, &clock_, registry_);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = *std::move(engine);
  }

  static constexpr uint64_t kCapacity = 64u << 20;
  std::vector<std::unique_ptr<HostDevice>> devices_;
  std::vector<Device*> ptrs_;
  FakeClock clock_;
  prometheus::Registry registry_;
  std::unique_ptr<MemoryEngine> engine_;
};

TEST_F(MemoryBatchSizeTest, DescribesOneSampleOfEveryInputAndOutput) {
  absl::StatusOr<BatchSizeRequest> r = SampleBatchSizeRequest(Signature(32, 64, 16), 1);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->device, 1);
  EXPECT_EQ(r->dtype, DataType::kUint8);
  EXPECT_EQ(r->input_shape, (std::vector<int64_t>{64 * 4 + 8 * 2}));
  EXPECT_EQ(r->output_bytes_per_sample, 16u * 4);
  EXPECT_EQ(r->max_batch_size, 0);  // the scheduler applies the model's limit
  EXPECT_EQ(r->model_size_mb, 0);

  ModelSignature no_batch = Signature(0, 64, 16);
  EXPECT_EQ(SampleBatchSizeRequest(no_batch, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  ModelSignature bytes = Signature(8, 64, 16);
  bytes.inputs[1].dtype = DataType::kBytes;
  EXPECT_EQ(SampleBatchSizeRequest(bytes, 0).status().code(), absl::StatusCode::kInvalidArgument);
}

// Verifies the answer follows the device's memory: many rows for small
// samples, fewer than fit the device for big ones, and RESOURCE_EXHAUSTED
// when one sample is larger than the device.
TEST_F(MemoryBatchSizeTest, AnswersFromTheDevicesFreeMemory) {
  auto fn = MemoryBatchSizeFn(engine_.get());
  absl::StatusOr<int64_t> small = fn(Signature(32, 64, 16), 0);
  ASSERT_TRUE(small.ok()) << small.status();
  EXPECT_GT(*small, 1000);  // 336 bytes a sample in megabytes of free memory
  EXPECT_LT(*small, static_cast<int64_t>(kCapacity / 336));

  // 1 MiB in + 1 MiB out per sample (plus 16 bytes) on a 64 MiB device.
  const int64_t cols = (1 << 20) / 4;
  absl::StatusOr<int64_t> big = fn(Signature(1 << 20, cols, cols), 0);
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_GE(*big, 1);
  EXPECT_LT(*big, static_cast<int64_t>(kCapacity / (2u << 20)));

  absl::StatusOr<int64_t> huge = fn(Signature(8, int64_t{1} << 26, 1), 0);  // 256 MiB
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(fn(Signature(8, 64, 16), 7).status().code(), absl::StatusCode::kInvalidArgument)
      << "unknown device";
}

}  // namespace
}  // namespace inferd
