// ExecuteOnDevice and ExecuteGroupOnDevice on a CUDA device: builtin models'
// results through pinned staging blocks and without them, many groups in
// flight on two streams at once. Skips without a GPU.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "core/infer/device_execution.h"
#include "core/models/model.h"
#include "gtest/gtest.h"
#include "tests/core/infer/staging_test_allocator.h"
#include "tests/gpu/gpu_fixture.h"

namespace inferd {
namespace {

// Raw device buffers; pinned staging blocks when staging is on.
using GpuAllocator = testing_infer::StagingTestAllocator;

class Outputs final : public InferResponder {
 public:
  void* AllocateOutput(int index, const TensorSpec&, const TensorDesc& desc) override {
    if (outputs.size() <= static_cast<size_t>(index)) outputs.resize(index + 1);
    outputs[index].assign(desc.byte_size, '\0');
    return outputs[index].data();
  }
  void Complete(absl::Status) override { ADD_FAILURE() << "a group never completes its members"; }
  std::vector<std::string> outputs;
};

std::shared_ptr<const Model> Builtin(const std::string& name) {
  for (auto& m : BuiltinModels()) {
    if (m->signature().name == name) return m;
  }
  return nullptr;
}

class DeviceExecutionGpuTest : public testing_gpu::GpuTest,
                               public ::testing::WithParamInterface<bool> {};

// 24 groups of 1 to 24 requests (identity and add, sizes off the 256-byte
// alignment, 64 B to 96 KB), on two streams at once: every request gets
// its own bytes back.
TEST_P(DeviceExecutionGpuTest, GroupsOfBuiltinRequestsKeepTheirOwnResults) {
  GpuAllocator allocator(gpu(), GetParam());
  constexpr int kGroups = 24;
  struct Group {
    std::vector<std::vector<float>> xs;
    std::vector<InferRequest> requests;
    std::vector<std::unique_ptr<Outputs>> outputs;
    std::vector<GroupedRequest> grouped;
    absl::Notification done;
    absl::Status shared;
  };
  std::vector<std::unique_ptr<Group>> groups;
  // One instance each, as the daemon serves them: a group's identity
  // requests then go over in one joined device-to-device copy.
  const std::shared_ptr<const Model> identity = Builtin("identity"), add_model = Builtin("add");
  for (int g = 0; g < kGroups; ++g) {
    auto group = std::make_unique<Group>();
    const int n = g + 1;
    group->xs.resize(n);
    group->requests.resize(n);
    for (int r = 0; r < n; ++r) {
      std::vector<float>& x = group->xs[r];
      x.resize(16 + (g * 997 + r * 131) % 24000);
      for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(g * 100000 + r * 1000 + i);
      InferRequest& req = group->requests[r];
      const bool add = r % 3 == 2;
      req.model = add ? add_model : identity;
      const TensorDesc desc{DataType::kFp32, {static_cast<int64_t>(x.size())},
                            x.size() * sizeof(float)};
      req.inputs.push_back(InferInput{"INPUT0", desc, x.data()});
      if (add) req.inputs.push_back(InferInput{"INPUT1", desc, x.data()});
      group->outputs.push_back(std::make_unique<Outputs>());
    }
    group->grouped.resize(n);
    for (int r = 0; r < n; ++r) {
      group->grouped[r].request = &group->requests[r];
      group->grouped[r].responder = group->outputs[r].get();
    }
    Group* raw = group.get();
    ExecuteGroupOnDevice(absl::MakeSpan(raw->grouped), gpu().stream(g % 2), allocator,
                         [raw](absl::Status st) {
                           raw->shared = std::move(st);
                           raw->done.Notify();
                         });
    groups.push_back(std::move(group));
  }
  for (int g = 0; g < kGroups; ++g) {
    Group& group = *groups[g];
    group.done.WaitForNotification();
    ASSERT_TRUE(group.shared.ok()) << group.shared;
    for (size_t r = 0; r < group.requests.size(); ++r) {
      ASSERT_TRUE(group.grouped[r].status.ok()) << group.grouped[r].status;
      const std::vector<float>& x = group.xs[r];
      std::vector<float> want = x;
      if (r % 3 == 2) {
        for (float& v : want) v *= 2;
      }
      ASSERT_EQ(group.outputs[r]->outputs.size(), 1u);
      ASSERT_EQ(group.outputs[r]->outputs[0].size(), want.size() * sizeof(float));
      EXPECT_EQ(std::memcmp(group.outputs[r]->outputs[0].data(), want.data(),
                            want.size() * sizeof(float)),
                0)
          << "group " << g << " request " << r;
    }
  }
  EXPECT_EQ(allocator.staged(), GetParam() ? kGroups : 0);
  EXPECT_EQ(allocator.returned(), allocator.staged());
}

INSTANTIATE_TEST_SUITE_P(StagedAndDirect, DeviceExecutionGpuTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Staged" : "Direct"; });

}  // namespace
}  // namespace inferd
