// Tasks over the real memory engine: tensor-handle inputs and outputs kept
// on the device as tensor-store handles.
#include "core/sched/memory_tensor_access.h"

#include <cstring>
#include <memory>
#include <vector>

#include "absl/synchronization/notification.h"
#include "core/device/host_device.h"
#include "core/memory/memory_engine.h"
#include "core/models/model_registry.h"
#include "core/sched/scheduler.h"
#include "core/util/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "tests/core/sched/sched_test_util.h"

namespace inferd {
namespace {

class MemoryTensorAccessTest : public ::testing::Test {
 protected:
  // Streams run inline when idle, or always on worker threads (as GPU
  // streams do, completions then arrive on those threads).
  void Build(bool inline_streams) {
    devices_ = testing::MakeHostDevices(2, inline_streams, 4, 64 << 20);
    for (auto& d : devices_) ptrs_.push_back(d.get());
    MemoryEngineOptions mo;
    mo.pool_size_mb = 4;
    mo.enable_monitoring = false;
    auto engine = MemoryEngine::Create(mo, ptrs_, &clock_, registry_);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = *std::move(engine);
    access_ = std::make_unique<MemoryTensorAccess>(engine_.get());
    allocator_ = engine_->NewScratchAllocator();
    models_.Add(model_);
    SchedulerOptions so;
    so.start_timer_thread = false;
    so.first_stream = 1;  // stream 0 is the memory engine's, as in the daemon
    auto s =
        Scheduler::Create(so, ptrs_, allocator_.get(), &models_, access_.get(), &clock_, registry_);
    ASSERT_TRUE(s.ok()) << s.status();
    sched_ = *std::move(s);
  }
  void TearDown() override {
    if (sched_ != nullptr) sched_->Shutdown();
  }

  TensorId Upload(int device, const std::vector<float>& v) {
    TensorRequest r;
    r.device = device;
    r.dtype = DataType::kFp32;
    r.shape = {static_cast<int64_t>(v.size())};
    r.owner = "test";
    absl::StatusOr<TensorInfo> info = engine_->AllocateTensor(r);
    EXPECT_TRUE(info.ok()) << info.status();
    EXPECT_TRUE(engine_
                    ->WriteTensor(info->id, 0,
                                  absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(v.data()),
                                                      v.size() * sizeof(float)))
                    .ok());
    return info->id;
  }
  std::vector<float> Download(const std::string& handle) {
    absl::StatusOr<TensorId> id = ParseTensorId(handle);
    EXPECT_TRUE(id.ok());
    absl::StatusOr<TensorInfo> info = engine_->GetTensorInfo(*id);
    EXPECT_TRUE(info.ok()) << info.status();
    std::vector<float> v(info->byte_size / sizeof(float));
    EXPECT_TRUE(engine_
                    ->ReadTensor(*id, 0,
                                 absl::MakeSpan(reinterpret_cast<uint8_t*>(v.data()),
                                                v.size() * sizeof(float)))
                    .ok());
    return v;
  }
  TaskInfo WaitFor(const TaskId& id) {
    absl::Notification done;
    TaskInfo out;
    EXPECT_TRUE(sched_
                    ->WaitTask(id, absl::InfiniteFuture(),
                               [&](absl::StatusOr<TaskInfo> r) {
                                 out = *r;
                                 done.Notify();
                               })
                    .ok());
    if (!done.WaitForNotificationWithTimeout(absl::Seconds(60))) {
      ADD_FAILURE() << "task did not finish (deadlock?)";
      std::abort();
    }
    return out;
  }

  FakeClock clock_;
  prometheus::Registry registry_;
  std::vector<std::unique_ptr<HostDevice>> devices_;
  std::vector<Device*> ptrs_;
  std::unique_ptr<MemoryEngine> engine_;
  std::unique_ptr<MemoryTensorAccess> access_;
  std::unique_ptr<DeviceAllocator> allocator_;
  ModelRegistry models_;
  std::shared_ptr<testing::TestModel> model_ = std::make_shared<testing::TestModel>();
  std::unique_ptr<Scheduler> sched_;
};

class MemoryTensorAccessChainTest : public MemoryTensorAccessTest,
                                    public ::testing::WithParamInterface<bool> {};

// Verifies chaining by handle through the memory engine, also when
// completions run on stream worker threads: the dependent's output tensor is
// zero-filled on the memory engine's stream, which must not be the stream
// whose callback creates it.
TEST_P(MemoryTensorAccessChainTest, HandleInputsAndDeviceOutputsChainThroughTheStore) {
  Build(GetParam());
  const TensorId input = Upload(1, {1, 2, 3});
  TaskSpec first;
  first.key = "first";
  first.model_name = "test";
  first.keep_outputs_on_device = true;
  first.owner = "carol";
  TaskInput in;
  in.name = "INPUT0";
  in.source = TaskInput::Source::kTensor;
  in.tensor_handle = FormatTensorId(input);
  first.inputs.push_back(in);
  TaskSpec second = first;
  second.key = "second";
  second.inputs[0].source = TaskInput::Source::kTaskOutput;
  second.inputs[0].dependency = "first";
  second.inputs[0].output_name = "OUTPUT0";
  absl::StatusOr<std::vector<TaskId>> ids = sched_->SubmitTasks({first, second});
  ASSERT_TRUE(ids.ok()) << ids.status();
  TaskInfo a = WaitFor((*ids)[0]);
  TaskInfo b = WaitFor((*ids)[1]);
  ASSERT_EQ(a.state, TaskState::kSucceeded) << a.status;
  ASSERT_EQ(b.state, TaskState::kSucceeded) << b.status;
  EXPECT_EQ(a.device, 1);  // where its input lives
  EXPECT_EQ(Download(a.outputs[0].tensor_handle), (std::vector<float>{2, 4, 6}));
  EXPECT_EQ(Download(b.outputs[0].tensor_handle), (std::vector<float>{4, 8, 12}));
  absl::StatusOr<TensorInfo> out =
      engine_->GetTensorInfo(*ParseTensorId(b.outputs[0].tensor_handle));
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->owner, "carol");
  EXPECT_EQ(out->pin_count, 0);
  // Nothing is left pinned: the input can be freed.
  EXPECT_TRUE(engine_->FreeTensor(input).ok());
}

INSTANTIATE_TEST_SUITE_P(InlineAndWorkerStreams, MemoryTensorAccessChainTest, ::testing::Bool());

TEST_F(MemoryTensorAccessTest, UnknownHandlesAreNotFound) {
  Build(true);
  EXPECT_EQ(access_->Describe(FormatTensorId(NewTensorId())).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(access_->Pin("xyz").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace inferd
