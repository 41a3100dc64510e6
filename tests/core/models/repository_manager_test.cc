#include "core/models/repository_manager.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/device/host_device.h"
#include "core/models/safetensors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/models/model_test_util.h"

namespace inferd {
namespace {

using ::testing::HasSubstr;
using testing_models::Encode;
using testing_models::ScratchDir;
using testing_models::WriteFile;

constexpr char kConfig[] = R"(
version: "1"
backend: mlp
max_batch_size: 2
inputs: [{name: INPUT0, datatype: FP32, dims: [-1, 1]}]
outputs: [{name: OUTPUT0, datatype: FP32, dims: [-1, 1]}]
mlp: {weights: w.safetensors, layers: [{weight: w}]}
)";

class RepositoryManagerTest : public ::testing::Test {
 protected:
  RepositoryManagerTest() {
    HostDeviceOptions o;
    o.capacity_bytes = 1 << 20;
    device_ = std::make_unique<HostDevice>(o);
    for (const char* name : {"m1", "m2"}) Write(name, kConfig);
    ModelRepositoryOptions options;
    options.devices = {device_.get()};
    repository_ = *ModelRepository::Open(dir_.path(), options);
    manager_ = std::make_unique<RepositoryManager>(repository_.get(), &registry_);
  }

  void Write(const std::string& name, const std::string& config) {
    WriteFile(dir_ / (name + "/config.yaml"), config);
    const std::string w = Encode(DataType::kFp32, {2.0f});
    std::vector<SafetensorsEntry> entries = {{"w", DataType::kFp32, {1, 1}, w}};
    WriteFile(dir_ / (name + "/w.safetensors"), *SerializeSafetensors(entries));
  }

  std::vector<std::string> Describe() const {
    std::vector<std::string> out;
    for (const RepositoryIndexEntry& e : manager_->Index()) {
      out.push_back(absl::StrCat(e.name, ":", e.version, ":", e.state, ":", e.reason));
    }
    return out;
  }

  ScratchDir dir_;
  std::unique_ptr<HostDevice> device_;
  std::unique_ptr<ModelRepository> repository_;
  ModelRegistry registry_;
  std::unique_ptr<RepositoryManager> manager_;
};

TEST_F(RepositoryManagerTest, LoadAllThenUnloadAndReload) {
  EXPECT_THAT(Describe(), ::testing::ElementsAre("m1::UNAVAILABLE:unloaded",
                                                 "m2::UNAVAILABLE:unloaded"));
  ASSERT_TRUE(manager_->LoadAll().ok());
  EXPECT_THAT(Describe(), ::testing::ElementsAre("m1:1:READY:", "m2:1:READY:"));

  ASSERT_TRUE(manager_->Unload("m1").ok());
  EXPECT_EQ(registry_.Find("m1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Describe(), ::testing::ElementsAre("m1::UNAVAILABLE:unloaded", "m2:1:READY:"));
  EXPECT_EQ(manager_->Unload("m1").code(), absl::StatusCode::kNotFound);

  Write("m1", absl::StrReplaceAll(kConfig, {{"version: \"1\"", "version: \"7\""}}));
  ASSERT_TRUE(manager_->Load("m1").ok());
  auto m1 = registry_.Find("m1");
  ASSERT_TRUE(m1.ok());
  EXPECT_EQ((*m1)->signature().version, "7");
}

// Verifies that a failed reload keeps serving the loaded model, and that
// a model that never loaded shows its error in the index.
TEST_F(RepositoryManagerTest, FailedLoadLeavesTheRegistryAlone) {
  ASSERT_TRUE(manager_->Load("m1").ok());
  auto before = registry_.Find("m1");
  Write("m1", absl::StrReplaceAll(kConfig, {{"weight: w", "weight: nope"}}));
  absl::Status st = manager_->Load("m1");
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  auto after = registry_.Find("m1");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->get(), before->get());

  Write("m2", "backend: mlp\n");
  EXPECT_FALSE(manager_->Load("m2").ok());
  std::vector<std::string> index = Describe();
  ASSERT_EQ(index.size(), 2u);
  EXPECT_THAT(index[1], HasSubstr("m2::UNAVAILABLE:model 'm2': config.yaml: inputs: required"));
}

TEST_F(RepositoryManagerTest, UnknownNamesLeaveNoTrace) {
  EXPECT_EQ(manager_->Load("ghost").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(manager_->Load("../m1").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(manager_->Unload("ghost").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Describe().size(), 2u);
}

}  // namespace
}  // namespace inferd
