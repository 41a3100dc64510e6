#include "core/models/plugin_model.h"

#include <dlfcn.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/device/host_device.h"
#include "core/models/declared_signature.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "inferd/plugin_api.h"
#include "tests/core/models/model_test_util.h"

namespace inferd {
namespace {

using ::testing::HasSubstr;

const std::string kScalePlugin =
    std::string(INFERD_BINARY_DIR) + "/examples/plugins/libscale_plugin.so";

std::string TestPlugin(const char* variant) {
  return absl::StrCat(TEST_PLUGIN_DIR, "/libtest_plugin_", variant, ".so");
}

ModelSignature Signature(DataType dtype = DataType::kFp32) {
  ModelConfigSpec spec;
  spec.backend = ModelBackend::kPlugin;
  spec.inputs = {{"INPUT0", dtype, {-1}}};
  spec.outputs = {{"OUTPUT0", dtype, {-1}}};
  return *DeclaredSignature(spec, "scaler", "inferd_plugin");
}

// The scheduling block's limits reach the signature the scheduler reads.
TEST(DeclaredSignatureTest, CarriesTheSchedulingBlock) {
  ModelConfigSpec spec;
  spec.backend = ModelBackend::kPlugin;
  spec.inputs = {{"INPUT0", DataType::kFp32, {-1}}};
  spec.outputs = {{"OUTPUT0", DataType::kFp32, {-1}}};
  EXPECT_EQ(DeclaredSignature(spec, "m", "inferd_plugin")->max_executions_per_device, 0);
  spec.scheduling.max_executions_per_device = 3;
  spec.scheduling.preemptible = true;
  absl::StatusOr<ModelSignature> sig = DeclaredSignature(spec, "m", "inferd_plugin");
  ASSERT_TRUE(sig.ok()) << sig.status();
  EXPECT_EQ(sig->max_executions_per_device, 3);
  EXPECT_TRUE(sig->preemptible);
}

class PluginModelTest : public ::testing::Test {
 protected:
  PluginModelTest() {
    HostDeviceOptions o;
    o.capacity_bytes = 1 << 20;
    o.num_streams = 2;
    o.inline_when_idle = false;
    for (int i = 0; i < 2; ++i) {
      o.index = i;
      devices_.push_back(std::make_unique<HostDevice>(o));
      device_ptrs_.push_back(devices_.back().get());
    }
  }

  absl::StatusOr<std::unique_ptr<PluginModel>> Make(
      const std::string& library, std::vector<std::pair<std::string, std::string>> params = {},
      DataType dtype = DataType::kFp32) {
    PluginModelOptions options;
    options.library_path = library;
    options.model_dir = "/models/scaler";
    options.parameters = std::move(params);
    return PluginModel::Create(Signature(dtype), options, device_ptrs_);
  }

  // Runs `model` on device `d` with `x`; returns the stream's status.
  absl::Status Run(const PluginModel& model, int d, const std::vector<float>& x,
                   std::vector<float>* y, DataType dtype = DataType::kFp32) {
    Device& dev = *devices_[d];
    TensorDesc in{dtype, {static_cast<int64_t>(x.size())}, x.size() * 4};
    TensorDesc out;
    absl::Status st = model.Validate({&in, 1}, {}, {&out, 1});
    if (!st.ok()) return st;
    void* xd = *dev.AllocateRaw(in.byte_size);
    void* yd = *dev.AllocateRaw(out.byte_size);
    Stream& stream = dev.stream(0);
    st = stream.CopyHostToDevice(xd, x.data(), in.byte_size);
    DeviceTensor din{&in, xd};
    DeviceTensor dout{&out, yd};
    if (st.ok()) st = model.Execute(stream, {&din, 1}, {}, {&dout, 1});
    y->assign(x.size(), 0.0f);
    if (st.ok()) st = stream.CopyDeviceToHost(y->data(), yd, out.byte_size);
    absl::Status sync = stream.Synchronize();
    dev.FreeRaw(xd);
    dev.FreeRaw(yd);
    return st.ok() ? sync : st;
  }

  std::vector<std::unique_ptr<HostDevice>> devices_;
  std::vector<Device*> device_ptrs_;
};

TEST_F(PluginModelTest, ScalePluginExecutesOnEveryHostDevice) {
  auto model = Make(kScalePlugin, {{"factor", "3"}});
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->signature().platform, "inferd_plugin");
  for (int d = 0; d < 2; ++d) {
    std::vector<float> y;
    ASSERT_TRUE(Run(**model, d, {1, -2, 0.5f}, &y).ok());
    EXPECT_EQ(y, (std::vector<float>{3, -6, 1.5f}));
  }
}

TEST_F(PluginModelTest, ScalePluginDefaultsToFactorTwo) {
  auto model = Make(kScalePlugin);
  ASSERT_TRUE(model.ok()) << model.status();
  std::vector<float> y;
  ASSERT_TRUE(Run(**model, 0, {4}, &y).ok());
  EXPECT_EQ(y, (std::vector<float>{8}));
}

TEST_F(PluginModelTest, CreateErrorCarriesThePluginMessage) {
  auto model = Make(kScalePlugin, {{"factor", "lots"}});
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(model.status().message()),
              HasSubstr("model 'scaler' on device 0: plugin.parameters.factor: expected a finite "
                        "number"));
}

// Verifies that an error returned by the plugin while running on a host
// stream surfaces as the stream's error, in stream order.
TEST_F(PluginModelTest, ExecuteErrorSurfacesOnTheStream) {
  auto model = Make(kScalePlugin, {}, DataType::kInt32);  // the plugin only takes FP32
  ASSERT_TRUE(model.ok()) << model.status();
  std::vector<float> y;
  absl::Status st = Run(**model, 1, {1, 2}, &y, DataType::kInt32);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(st.message()), HasSubstr("model 'scaler': only FP32 tensors"));
}

TEST_F(PluginModelTest, RejectsOtherApiVersion) {
  auto model = Make(TestPlugin("v99"));
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(model.status().message()),
              HasSubstr(absl::StrCat("plugin API version 99; this inferd speaks version ",
                                     INFERD_PLUGIN_API_VERSION)));
}

TEST_F(PluginModelTest, RejectsMissingFunctions) {
  auto model = Make(TestPlugin("noexec"));
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(model.status().message()), HasSubstr("does not export"));
}

TEST_F(PluginModelTest, RejectsUnloadableLibrary) {
  testing_models::ScratchDir dir;
  testing_models::WriteFile(dir / "junk.so", "not an ELF file");
  auto model = Make(dir / "junk.so");
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(model.status().message()), HasSubstr("cannot be loaded"));
}

// Verifies that states are created per device and destroyed with the
// model, also when creation fails part way.
TEST_F(PluginModelTest, StatesLiveAsLongAsTheModel) {
  const std::string path = TestPlugin("ok");
  // Keep the library loaded across models to read its counter.
  void* dl = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(dl, nullptr);
  auto live = reinterpret_cast<int (*)()>(dlsym(dl, "test_plugin_live_states"));
  ASSERT_NE(live, nullptr);
  {
    auto model = Make(path);
    ASSERT_TRUE(model.ok()) << model.status();
    EXPECT_EQ(live(), 2);
    std::vector<float> y;
    ASSERT_TRUE(Run(**model, 1, {7, 8}, &y).ok());
    EXPECT_EQ(y, (std::vector<float>{7, 8}));
  }
  EXPECT_EQ(live(), 0);
  auto failed = Make(path, {{"fail_create", "1"}});
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(failed.status().message()), HasSubstr("asked to fail"));
  EXPECT_EQ(live(), 0);
  dlclose(dl);
}

}  // namespace
}  // namespace inferd
