#include "core/models/model_repository.h"

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/device/device_allocator.h"
#include "core/device/host_device.h"
#include "core/infer/device_execution.h"
#include "core/models/safetensors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/models/model_test_util.h"

namespace inferd {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using testing_models::CollectingResponder;
using testing_models::Decode;
using testing_models::Encode;
using testing_models::ScratchDir;
using testing_models::WriteFile;

constexpr char kTinyConfig[] = R"(
backend: mlp
max_batch_size: 4
inputs: [{name: INPUT0, datatype: FP32, dims: [-1, 2]}]
outputs: [{name: OUTPUT0, datatype: FP32, dims: [-1, 1]}]
mlp:
  weights: w.safetensors
  layers:
    - {weight: 0.weight, bias: 0.bias, activation: relu}
    - {weight: 2.weight, bias: 2.bias}
)";

// The network of mlp_model_test.cc: y([1, 1]) = 5.75, y([2, -1]) = -7.25.
std::string TinyWeights() {
  const std::string w0 = Encode(DataType::kFp32, {1, 2, 3, -4, 0.5f, 0.5f});
  const std::string b0 = Encode(DataType::kFp32, {0.5f, -1, 0});
  const std::string w1 = Encode(DataType::kFp32, {1, -1, 2});
  const std::string b1 = Encode(DataType::kFp32, {0.25f});
  std::vector<SafetensorsEntry> entries = {{"0.weight", DataType::kFp32, {3, 2}, w0},
                                           {"0.bias", DataType::kFp32, {3}, b0},
                                           {"2.weight", DataType::kFp32, {1, 3}, w1},
                                           {"2.bias", DataType::kFp32, {1}, b1}};
  return *SerializeSafetensors(entries);
}

class ModelRepositoryTest : public ::testing::Test {
 protected:
  ModelRepositoryTest() {
    HostDeviceOptions o;
    o.capacity_bytes = 16 << 20;
    o.num_streams = 2;
    o.inline_when_idle = false;
    device_ = std::make_unique<HostDevice>(o);
    root_ = root_dir_ / "repo";
    std::filesystem::create_directories(root_);
  }

  void AddModel(const std::string& name, const std::string& config = kTinyConfig,
                bool weights = true) {
    WriteFile(absl::StrCat(root_, "/", name, "/config.yaml"), config);
    if (weights) WriteFile(absl::StrCat(root_, "/", name, "/w.safetensors"), TinyWeights());
  }

  std::unique_ptr<ModelRepository> Open(const std::string& root) {
    ModelRepositoryOptions options;
    options.devices = {device_.get()};
    options.mlp_cuda_library = "/nonexistent/libinferd_mlp_cuda.so";  // never needed on hosts
    absl::StatusOr<std::unique_ptr<ModelRepository>> repo = ModelRepository::Open(root, options);
    EXPECT_TRUE(repo.ok()) << repo.status();
    return repo.ok() ? *std::move(repo) : nullptr;
  }

  // Loads `name` and expects `code`; returns the message. Messages must
  // never show a server path.
  std::string LoadError(ModelRepository& repo, absl::string_view name, absl::StatusCode code) {
    absl::StatusOr<std::shared_ptr<const Model>> model = repo.Load(name);
    EXPECT_FALSE(model.ok()) << name;
    EXPECT_EQ(model.status().code(), code) << model.status();
    const std::string message(model.status().message());
    EXPECT_THAT(message, Not(HasSubstr(root_dir_.path()))) << "leaks a path";
    return message;
  }

  // Runs `model` on fp32 `x` of `shape` through ExecuteOnDevice.
  absl::StatusOr<std::vector<float>> Infer(std::shared_ptr<const Model> model,
                                           const std::vector<float>& x, Shape shape) {
    InferRequest request;
    request.model = std::move(model);
    request.inputs.push_back(
        InferInput{"INPUT0", TensorDesc{DataType::kFp32, std::move(shape), x.size() * 4},
                   x.data()});
    CollectingResponder responder;
    ExecuteOnDevice(std::move(request), device_->stream(0), *allocator_, &responder);
    responder.done.WaitForNotification();
    if (!responder.status.ok()) return responder.status;
    const std::string& y = responder.outputs.at(0);
    return Decode(DataType::kFp32, y.data(), y.size() / 4);
  }

  ScratchDir root_dir_;
  std::string root_;
  std::unique_ptr<HostDevice> device_;
  std::unique_ptr<DeviceAllocator> allocator_ = NewRawDeviceAllocator();
};

TEST_F(ModelRepositoryTest, OpenRejectsMissingFolder) {
  auto repo = ModelRepository::Open(root_ + "/nope", {});
  EXPECT_EQ(repo.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ModelRepositoryTest, ListsFoldersWithAConfig) {
  AddModel("b");
  AddModel("a");
  AddModel(".hidden");
  AddModel("bad name");
  std::filesystem::create_directories(root_ + "/no_config");
  WriteFile(root_ + "/stray_file", "x");
  auto repo = Open(root_);
  absl::StatusOr<std::vector<std::string>> names = repo->List();
  ASSERT_TRUE(names.ok()) << names.status();
  EXPECT_THAT(*names, ElementsAre("a", "b"));
}

TEST_F(ModelRepositoryTest, LoadsAndInfersThroughTheRunner) {
  AddModel("tiny");
  auto repo = Open(root_);
  absl::StatusOr<std::shared_ptr<const Model>> model = repo->Load("tiny");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->signature().name, "tiny");
  EXPECT_EQ((*model)->signature().platform, "inferd_mlp");
  absl::StatusOr<std::vector<float>> y = Infer(*model, {1, 1, 2, -1}, {2, 2});
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(*y, (std::vector<float>{5.75f, -7.25f}));
}

TEST_F(ModelRepositoryTest, RunnerReportsValidationErrors) {
  AddModel("tiny");
  auto repo = Open(root_);
  auto model = repo->Load("tiny");
  ASSERT_TRUE(model.ok());
  absl::StatusOr<std::vector<float>> y = Infer(*model, std::vector<float>(10, 1.0f), {5, 2});
  EXPECT_EQ(y.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(y.status().message()), HasSubstr("batch 5 is out of range [1, 4]"));
}

TEST_F(ModelRepositoryTest, UnknownModelIsNotFound) {
  auto repo = Open(root_);
  EXPECT_THAT(LoadError(*repo, "ghost", absl::StatusCode::kNotFound),
              HasSubstr("model 'ghost' is not in the model repository"));
}

TEST_F(ModelRepositoryTest, RejectsNamesThatAreNotPlainFolderNames) {
  AddModel("tiny");
  auto repo = Open(root_);
  for (const std::string& name : std::vector<std::string>{"", ".", "..", "../repo/tiny", "tiny/", "a/b", "/etc", ".hidden", "ti ny",
        std::string("tiny\0x", 6)}) {
    EXPECT_THAT(LoadError(*repo, name, absl::StatusCode::kInvalidArgument),
                HasSubstr("is not a valid model name"))
        << name;
  }
}

TEST_F(ModelRepositoryTest, RejectsConfigPathsThatClimbOut) {
  WriteFile(root_dir_ / "secret.safetensors", TinyWeights());
  for (const auto& [name, weights, message] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"up", "../../secret.safetensors", "must not contain '..'"},
           {"sneaky", "sub/../../../secret.safetensors", "must not contain '..'"},
           {"absolute", root_dir_ / "secret.safetensors", "must be a path relative"}}) {
    AddModel(name, absl::StrReplaceAll(kTinyConfig, {{"w.safetensors", weights}}));
    auto repo = Open(root_);
    EXPECT_THAT(LoadError(*repo, name, absl::StatusCode::kInvalidArgument),
                HasSubstr(absl::StrCat("model '", name, "': mlp.weights: ")))
        << name;
    EXPECT_THAT(LoadError(*repo, name, absl::StatusCode::kInvalidArgument), HasSubstr(message));
  }
}

TEST_F(ModelRepositoryTest, RejectsSymlinksThatEscapeTheModelFolder) {
  WriteFile(root_dir_ / "secret.safetensors", TinyWeights());
  AddModel("linked", kTinyConfig, /*weights=*/false);
  std::filesystem::create_symlink(root_dir_ / "secret.safetensors",
                                  root_ + "/linked/w.safetensors");
  // A sibling model's file is outside this model's folder too.
  AddModel("other");
  AddModel("borrower", kTinyConfig, /*weights=*/false);
  std::filesystem::create_symlink("../other/w.safetensors", root_ + "/borrower/w.safetensors");
  auto repo = Open(root_);
  EXPECT_THAT(LoadError(*repo, "linked", absl::StatusCode::kPermissionDenied),
              HasSubstr("mlp.weights: 'w.safetensors' resolves outside the model folder"));
  EXPECT_THAT(LoadError(*repo, "borrower", absl::StatusCode::kPermissionDenied),
              HasSubstr("resolves outside the model folder"));
}

TEST_F(ModelRepositoryTest, AcceptsSymlinksInsideTheModelFolder) {
  AddModel("inside", absl::StrReplaceAll(kTinyConfig, {{"w.safetensors", "current"}}));
  std::filesystem::create_directories(root_ + "/inside/v1");
  std::filesystem::rename(root_ + "/inside/w.safetensors", root_ + "/inside/v1/w.safetensors");
  std::filesystem::create_symlink("v1/w.safetensors", root_ + "/inside/current");
  auto repo = Open(root_);
  EXPECT_TRUE(repo->Load("inside").ok());
}

TEST_F(ModelRepositoryTest, RejectsModelFolderLinkedFromOutside) {
  const std::string outside = root_dir_ / "elsewhere";
  WriteFile(outside + "/config.yaml", kTinyConfig);
  WriteFile(outside + "/w.safetensors", TinyWeights());
  std::filesystem::create_symlink(outside, root_ + "/escapee");
  auto repo = Open(root_);
  EXPECT_THAT(LoadError(*repo, "escapee", absl::StatusCode::kPermissionDenied),
              HasSubstr("model 'escapee': its folder resolves outside the model repository"));
}

TEST_F(ModelRepositoryTest, MissingFilesAreNotFound) {
  AddModel("noweights", kTinyConfig, /*weights=*/false);
  std::filesystem::create_directories(root_ + "/noconfig");
  auto repo = Open(root_);
  EXPECT_THAT(LoadError(*repo, "noweights", absl::StatusCode::kNotFound),
              HasSubstr("mlp.weights: file 'w.safetensors' not found in the model folder"));
  EXPECT_THAT(LoadError(*repo, "noconfig", absl::StatusCode::kNotFound),
              HasSubstr("model 'noconfig': config.yaml: file 'config.yaml' not found"));
}

TEST_F(ModelRepositoryTest, ConfigErrorsNameModelFileAndKey) {
  AddModel("typo", absl::StrReplaceAll(kTinyConfig, {{"activation: relu", "activation: rleu"}}));
  AddModel("renamed", std::string("name: other\n") + kTinyConfig);
  AddModel("corrupt");
  WriteFile(root_ + "/corrupt/w.safetensors", "short");
  auto repo = Open(root_);
  EXPECT_THAT(LoadError(*repo, "typo", absl::StatusCode::kInvalidArgument),
              HasSubstr("model 'typo': config.yaml: mlp.layers[0].activation: \"rleu\""));
  EXPECT_THAT(LoadError(*repo, "renamed", absl::StatusCode::kInvalidArgument),
              HasSubstr("model 'renamed': config.yaml: name: 'other' differs from the folder name"));
  EXPECT_THAT(LoadError(*repo, "corrupt", absl::StatusCode::kInvalidArgument),
              HasSubstr("model 'corrupt': mlp.weights: safetensors: file of 5 bytes"));
}

// Computes the demo mlp in double precision straight from its file.
std::vector<double> NaiveMlp(const SafetensorsFile& file, std::vector<double> x, int64_t batch) {
  for (int layer = 0; layer < 3; ++layer) {
    const SafetensorsTensor* w = file.Find(absl::StrCat(2 * layer, ".weight"));
    const SafetensorsTensor* b = file.Find(absl::StrCat(2 * layer, ".bias"));
    const int64_t out = w->shape[0], in = w->shape[1];
    std::vector<float> wf = Decode(DataType::kFp32, w->data.data(), out * in);
    std::vector<float> bf = Decode(DataType::kFp32, b->data.data(), out);
    std::vector<double> y(batch * out);
    for (int64_t r = 0; r < batch; ++r) {
      for (int64_t o = 0; o < out; ++o) {
        double acc = bf[o];
        for (int64_t i = 0; i < in; ++i) acc += x[r * in + i] * wf[o * in + i];
        y[r * out + o] = layer < 2 ? std::max(0.0, acc) : acc;
      }
    }
    x = std::move(y);
  }
  return x;
}

TEST_F(ModelRepositoryTest, BuildTimeRepositoryServesTheDemoModels) {
  const std::string built = std::string(INFERD_BINARY_DIR) + "/model_repository";
  auto repo = Open(built);
  ASSERT_NE(repo, nullptr);
  absl::StatusOr<std::vector<std::string>> names = repo->List();
  ASSERT_TRUE(names.ok());
  EXPECT_THAT(*names, ::testing::IsSupersetOf({"demo_mlp", "scale_plugin"}));

  absl::StatusOr<ModelConfigSpec> spec = repo->ReadConfig("demo_mlp");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(spec->has_dynamic_batching);

  auto demo = repo->Load("demo_mlp");
  ASSERT_TRUE(demo.ok()) << demo.status();
  const int64_t batch = 3;
  std::vector<float> x(batch * 64);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37 * static_cast<double>(i));
  absl::StatusOr<std::vector<float>> y = Infer(*demo, x, {batch, 64});
  ASSERT_TRUE(y.ok()) << y.status();
  ASSERT_EQ(y->size(), static_cast<size_t>(batch * 16));
  auto file = SafetensorsFile::ReadFile(built + "/demo_mlp/model.safetensors", 1 << 30);
  ASSERT_TRUE(file.ok());
  std::vector<double> want = NaiveMlp(**file, std::vector<double>(x.begin(), x.end()), batch);
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR((*y)[i], want[i], 1e-5 * std::max(1.0, std::abs(want[i]))) << i;
  }

  auto scale = repo->Load("scale_plugin");
  ASSERT_TRUE(scale.ok()) << scale.status();
  absl::StatusOr<std::vector<float>> scaled = Infer(*scale, {1, 2, -3}, {3});
  ASSERT_TRUE(scaled.ok()) << scaled.status();
  EXPECT_EQ(*scaled, (std::vector<float>{3, 6, -9}));
}

}  // namespace
}  // namespace inferd
