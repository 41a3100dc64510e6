// The torch backend on host devices: TorchScript models made by the
// fixtures script, loaded through the model repository and run through
// ExecuteOnDevice, match what torch computed; every load and run error
// is a clear status that names the model and never a server path.
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/device/device_allocator.h"
#include "core/device/host_device.h"
#include "core/infer/device_execution.h"
#include "core/models/model_repository.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/backends/torch/torch_fixtures.h"
#include "tests/core/models/model_test_util.h"

namespace inferd {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing_models::CollectingResponder;
using torch_testing::CaseTensor;
using torch_testing::FixturesDir;
using torch_testing::ModelCase;
using torch_testing::ReadCase;
using torch_testing::RelativeError;

class TorchModelTest : public ::testing::Test {
 protected:
  TorchModelTest() {
    HostDeviceOptions o;
    o.capacity_bytes = 64 << 20;
    o.num_streams = 3;
    o.inline_when_idle = false;
    device_ = std::make_unique<HostDevice>(o);
  }

  std::unique_ptr<ModelRepository> Open(const std::string& root,
                                        const std::string& library = INFERD_TORCH_BACKEND_LIB) {
    ModelRepositoryOptions options;
    options.devices = {device_.get()};
    options.torch_backend_library = library;
    auto repo = ModelRepository::Open(root, options);
    EXPECT_TRUE(repo.ok()) << repo.status();
    return repo.ok() ? *std::move(repo) : nullptr;
  }

  std::shared_ptr<const Model> Load(const std::string& name) {
    if (repo_ == nullptr) repo_ = Open(FixturesDir() + "/repo");
    auto model = repo_->Load(name);
    EXPECT_TRUE(model.ok()) << model.status();
    return model.ok() ? *model : nullptr;
  }

  // Runs `model` on `inputs` (in signature order) on stream `stream`.
  absl::StatusOr<std::vector<std::string>> Run(std::shared_ptr<const Model> model,
                                               const std::vector<CaseTensor>& inputs,
                                               int stream = 0) {
    InferRequest request;
    request.model = std::move(model);
    for (const CaseTensor& t : inputs) {
      request.inputs.push_back(InferInput{
          t.name, TensorDesc{t.dtype, Shape(t.shape.begin(), t.shape.end()), t.bytes.size()},
          t.bytes.data()});
    }
    CollectingResponder responder;
    ExecuteOnDevice(std::move(request), device_->stream(stream), *allocator_, &responder);
    responder.done.WaitForNotification();
    if (!responder.status.ok()) return responder.status;
    return responder.outputs;
  }

  // Loads `name` from the broken models and expects `code`; returns the
  // message, which must not show the fixtures' path.
  std::string LoadError(const std::string& name, absl::StatusCode code) {
    std::unique_ptr<ModelRepository> repo = Open(FixturesDir() + "/broken");
    absl::StatusOr<std::shared_ptr<const Model>> model = repo->Load(name);
    EXPECT_FALSE(model.ok()) << name;
    EXPECT_EQ(model.status().code(), code) << model.status();
    const std::string message(model.status().message());
    EXPECT_THAT(message, HasSubstr(absl::StrCat("model '", name, "'")));
    EXPECT_THAT(message, Not(HasSubstr(FixturesDir()))) << "leaks a path";
    return message;
  }

  std::unique_ptr<HostDevice> device_;
  std::unique_ptr<DeviceAllocator> allocator_ = NewRawDeviceAllocator();
  std::unique_ptr<ModelRepository> repo_;
};

class TorchModelMatchesTorch : public TorchModelTest,
                               public ::testing::WithParamInterface<const char*> {};

// Verifies the outputs of the MLP, the conv net with batch norm and the
// two-input, two-output model of mixed datatypes against torch's.
TEST_P(TorchModelMatchesTorch, OnEveryStream) {
  const std::string name = GetParam();
  std::shared_ptr<const Model> model = Load(name);
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(model->signature().platform, "pytorch_libtorch");
  const ModelCase c = ReadCase(name);
  for (int stream = 0; stream < device_->num_streams(); ++stream) {
    absl::StatusOr<std::vector<std::string>> got = Run(model, c.inputs, stream);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->size(), c.outputs.size());
    for (size_t i = 0; i < c.outputs.size(); ++i) {
      EXPECT_LE(RelativeError(c.outputs[i], (*got)[i]), 1e-5) << name << " " << c.outputs[i].name;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, TorchModelMatchesTorch,
                         ::testing::Values("torch_mlp", "torch_convbn", "torch_two_io"));

// Verifies that an exception inside the model fails that request with
// INTERNAL naming the model and carrying the model's message, marked as
// the model's error (not the device's), and that the stream serves the
// next request.
TEST_F(TorchModelTest, ModelExceptionFailsOnlyItsRequest) {
  std::shared_ptr<const Model> model = Load("torch_raises");
  ASSERT_NE(model, nullptr);
  auto tensor = [](float v) {
    std::string bytes(8, '\0');
    std::memcpy(bytes.data(), &v, 4);
    std::memcpy(bytes.data() + 4, &v, 4);
    return CaseTensor{"x", DataType::kFp32, {1, 2}, bytes};
  };
  absl::StatusOr<std::vector<std::string>> bad = Run(model, {tensor(5000)});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(IsModelError(bad.status())) << bad.status();
  EXPECT_THAT(bad.status().message(), HasSubstr("model 'torch_raises'"));
  EXPECT_THAT(bad.status().message(), HasSubstr("input values must stay below 1000"));
  EXPECT_THAT(bad.status().message(), Not(HasSubstr(FixturesDir())));

  absl::StatusOr<std::vector<std::string>> good = Run(model, {tensor(1)});
  ASSERT_TRUE(good.ok()) << good.status();
  float y = 0;
  std::memcpy(&y, good->at(0).data(), 4);
  EXPECT_EQ(y, 2.0f);
}

TEST_F(TorchModelTest, FileThatIsNoModelIsInvalidArgument) {
  EXPECT_THAT(LoadError("not_a_model", absl::StatusCode::kInvalidArgument),
              HasSubstr("torch.file: not a model file"));
}

TEST_F(TorchModelTest, TruncatedFileIsInvalidArgument) {
  EXPECT_THAT(LoadError("truncated", absl::StatusCode::kInvalidArgument), HasSubstr("torch.file"));
}

TEST_F(TorchModelTest, InputCountTheModelDoesNotTakeIsInvalidArgument) {
  EXPECT_THAT(LoadError("wrong_inputs", absl::StatusCode::kInvalidArgument),
              HasSubstr("inputs: config.yaml declares 2 input(s); the model's forward takes 1 (x)"));
}

// Verifies that warmup checks the model's outputs against the config.
TEST_F(TorchModelTest, OutputShapeOtherThanDeclaredFailsTheWarmup) {
  const std::string message = LoadError("wrong_output_shape", absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(message, HasSubstr("torch.warmup: batch 1"));
  EXPECT_THAT(message, HasSubstr("outputs[0] (y): the model returned FP32 [1, 8]; config.yaml "
                                 "gives FP32 [1, 5]"));
}

// Verifies that an input shape the model rejects at run time (16 features
// expected, 12 declared) fails the load through the warmup.
TEST_F(TorchModelTest, InputShapeTheModelRejectsFailsTheWarmup) {
  EXPECT_THAT(LoadError("wrong_feature_count", absl::StatusCode::kInvalidArgument),
              HasSubstr("torch.warmup: batch 1"));
}

// Verifies that a .pt2 is refused clearly by a backend built against a
// libtorch without AOTInductor, and judged a bad file by one with it.
TEST_F(TorchModelTest, AotiPackageNeedsABackendThatLoadsThem) {
  absl::StatusOr<std::shared_ptr<const TorchLibrary>> lib =
      TorchLibrary::Load(torch_testing::EnvOr("INFERD_TORCH_LIB", INFERD_TORCH_BACKEND_LIB));
  ASSERT_TRUE(lib.ok()) << lib.status();
  if ((*lib)->supports_aoti()) {
    EXPECT_THAT(LoadError("aoti_package", absl::StatusCode::kInvalidArgument),
                HasSubstr("torch.file"));
  } else {
    EXPECT_THAT(LoadError("aoti_package", absl::StatusCode::kUnimplemented),
                HasSubstr("torch.format: aoti needs a torch backend built against libtorch"));
  }
}

TEST_F(TorchModelTest, MissingBackendLibraryIsFailedPrecondition) {
  // $INFERD_TORCH_LIB (set where the test runs against another build of
  // the backend) would take precedence over the configured path.
  const std::string saved = torch_testing::EnvOr("INFERD_TORCH_LIB", "");
  ::unsetenv("INFERD_TORCH_LIB");
  std::unique_ptr<ModelRepository> repo =
      Open(FixturesDir() + "/repo", "/nonexistent/lib/libinferd_torch.so");
  absl::StatusOr<std::shared_ptr<const Model>> model = repo->Load("torch_mlp");
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kFailedPrecondition) << model.status();
  EXPECT_THAT(model.status().message(), HasSubstr("backend: torch needs libinferd_torch.so"));
  EXPECT_THAT(model.status().message(), Not(HasSubstr("/nonexistent")));
  if (!saved.empty()) ::setenv("INFERD_TORCH_LIB", saved.c_str(), 1);
}

}  // namespace
}  // namespace inferd
