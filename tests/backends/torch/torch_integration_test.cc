// The torch backend in the real daemon on host devices: TorchScript models
// served through ModelInfer match torch, batch-1 requests are merged by
// dynamic batching, a model's exception fails only its request and leaves
// the device healthy, and a model that fails to load leaves the others
// serving (RepositoryModelLoad) or stops the start with exit code 2.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "clients/cpp/inferd_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "inferd/v1/report.grpc.pb.h"
#include "tests/backends/torch/torch_fixtures.h"
#include "tests/integration/daemon_process.h"

namespace inferd {
namespace {

using ::testing::HasSubstr;
using torch_testing::CaseTensor;
using torch_testing::FixturesDir;
using torch_testing::ModelCase;
using torch_testing::ReadCase;
using torch_testing::RelativeError;

// A copy of the fixtures' repository the daemon may be changed under.
std::string MakeRepository() {
  const std::string dir = testing::WriteTempFile("", ".d");
  std::filesystem::remove(dir);
  torch_testing::CopyFolder(FixturesDir() + "/repo", dir);
  return dir;
}

// Batches form by the delay alone (batch_dispatch_when_idle off): the
// batching test sends requests together to a host device that is never
// busy long enough to make them wait for a slot.
std::string Config(const std::string& repository) {
  return absl::StrCat("models:\n  repository: \"", repository,
                      "\"\n  torch_backend_library: \"", INFERD_TORCH_BACKEND_LIB, "\"\n",
                      "scheduler:\n  batch_dispatch_when_idle: false\n");
}

inference::ModelInferRequest Request(const std::string& model,
                                     const std::vector<CaseTensor>& inputs) {
  inference::ModelInferRequest r;
  r.set_model_name(model);
  for (const CaseTensor& t : inputs) {
    auto* in = r.add_inputs();
    in->set_name(t.name);
    in->set_datatype(std::string(DataTypeName(t.dtype)));
    for (int64_t d : t.shape) in->add_shape(d);
    r.add_raw_input_contents(t.bytes);
  }
  return r;
}

// Reads a sample of `name` from a Prometheus text scrape.
double Sample(const std::string& scrape, const std::string& name) {
  for (absl::string_view line : absl::StrSplit(scrape, '\n')) {
    if (absl::StartsWith(line, name + " ")) {
      double v = 0;
      if (absl::SimpleAtod(line.substr(name.size() + 1), &v)) return v;
    }
  }
  return -1;
}

class TorchIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    repository_ = new std::string(MakeRepository());
    daemon_ = new testing::ConfiguredDaemon(Config(*repository_), 2);
    ASSERT_TRUE(daemon_->process().started()) << daemon_->process().Stderr();
  }
  static void TearDownTestSuite() {
    EXPECT_EQ(daemon_->Stop(), 0) << daemon_->process().Stderr();
    delete daemon_;
    std::filesystem::remove_all(*repository_);
    delete repository_;
  }
  void SetUp() override {
    ClientOptions o;
    o.target = daemon_->process().target();
    o.timeout = absl::Seconds(30);
    client_ = std::make_unique<InferdClient>(o);
  }

  static testing::ConfiguredDaemon* daemon_;
  static std::string* repository_;
  std::unique_ptr<InferdClient> client_;
};

testing::ConfiguredDaemon* TorchIntegrationTest::daemon_ = nullptr;
std::string* TorchIntegrationTest::repository_ = nullptr;

TEST_F(TorchIntegrationTest, ServesTorchScriptModelsAsTorchComputesThem) {
  for (const char* name : {"torch_mlp", "torch_convbn", "torch_two_io"}) {
    const ModelCase c = ReadCase(name);
    absl::StatusOr<inference::ModelInferResponse> r = client_->Infer(Request(name, c.inputs));
    ASSERT_TRUE(r.ok()) << name << ": " << r.status();
    ASSERT_EQ(r->outputs_size(), static_cast<int>(c.outputs.size())) << name;
    ASSERT_EQ(r->raw_output_contents_size(), r->outputs_size()) << name;
    for (int i = 0; i < r->outputs_size(); ++i) {
      const CaseTensor& want = c.outputs[i];
      EXPECT_EQ(r->outputs(i).name(), want.name);
      EXPECT_EQ(r->outputs(i).datatype(), DataTypeName(want.dtype));
      EXPECT_THAT(std::vector<int64_t>(r->outputs(i).shape().begin(), r->outputs(i).shape().end()),
                  ::testing::ElementsAreArray(want.shape));
      EXPECT_LE(RelativeError(want, r->raw_output_contents(i)), 1e-5) << name << " " << want.name;
    }
  }
  absl::StatusOr<inference::ModelMetadataResponse> meta = client_->ModelMetadata("torch_two_io");
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_EQ(meta->platform(), "pytorch_libtorch");
  ASSERT_EQ(meta->inputs_size(), 2);
  EXPECT_EQ(meta->inputs(1).datatype(), "INT64");
}

// Verifies that batch-1 requests sent together run in merged batches
// (torch_mlp waits up to 100 ms for company), each answered with its own
// row, as the batch-size histogram shows.
TEST_F(TorchIntegrationTest, DynamicBatchingMergesBatchOneRequests) {
  const ModelCase c = ReadCase("torch_mlp");
  const CaseTensor& x = c.inputs[0];
  const CaseTensor& y = c.outputs[0];
  const int64_t rows = x.shape[0];
  const size_t in_row = x.bytes.size() / rows;
  const size_t out_row = y.bytes.size() / rows;
  std::vector<std::thread> clients;
  std::vector<absl::Status> status(rows * 4);
  for (int k = 0; k < rows * 4; ++k) {
    clients.emplace_back([&, k] {
      const int64_t row = k % rows;
      CaseTensor one{x.name, x.dtype, {1, x.shape[1]}, x.bytes.substr(row * in_row, in_row)};
      CaseTensor want{y.name, y.dtype, {1, y.shape[1]}, y.bytes.substr(row * out_row, out_row)};
      absl::StatusOr<inference::ModelInferResponse> r =
          client_->Infer(Request("torch_mlp", {one}));
      if (!r.ok()) {
        status[k] = r.status();
      } else if (RelativeError(want, r->raw_output_contents(0)) > 1e-5) {
        status[k] = absl::DataLossError(absl::StrCat("row ", row, " differs"));
      }
    });
  }
  for (std::thread& t : clients) t.join();
  for (const absl::Status& s : status) EXPECT_TRUE(s.ok()) << s;
  const std::string scrape = testing::HttpGet(daemon_->process().metrics_port(), "/metrics");
  const double batches = Sample(scrape, "inferd_scheduler_batch_size_count{model=\"torch_mlp\"}");
  const double requests = Sample(scrape, "inferd_scheduler_batch_size_sum{model=\"torch_mlp\"}");
  ASSERT_GT(batches, 0) << scrape;
  EXPECT_GT(requests, batches) << "no batch held more than one request";
}

// Verifies that an exception raised inside the model answers INTERNAL with
// the model's message, is not retried, and leaves every device healthy
// and serving.
TEST_F(TorchIntegrationTest, ModelExceptionFailsOnlyItsRequest) {
  auto request = [](float v) {
    std::string bytes(8, '\0');
    std::memcpy(bytes.data(), &v, 4);
    std::memcpy(bytes.data() + 4, &v, 4);
    return Request("torch_raises", {CaseTensor{"x", DataType::kFp32, {1, 2}, bytes}});
  };
  for (int i = 0; i < 8; ++i) {
    absl::StatusOr<inference::ModelInferResponse> bad = client_->Infer(request(5000));
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.status().code(), absl::StatusCode::kInternal);
    EXPECT_THAT(bad.status().message(), HasSubstr("model 'torch_raises'"));
    EXPECT_THAT(bad.status().message(), HasSubstr("input values must stay below 1000"));
  }
  absl::StatusOr<inference::ModelInferResponse> good = client_->Infer(request(1));
  ASSERT_TRUE(good.ok()) << good.status();

  auto report = inferd::v1::Report::NewStub(client_->channel());
  grpc::ClientContext ctx;
  inferd::v1::PerformanceReport out;
  ASSERT_TRUE(report->GetPerformanceReport(&ctx, {}, &out).ok());
  ASSERT_GE(out.devices_size(), 1);
  for (const auto& d : out.devices()) EXPECT_TRUE(d.healthy()) << d.DebugString();
  const std::string scrape = testing::HttpGet(daemon_->process().metrics_port(), "/metrics");
  EXPECT_EQ(Sample(scrape, "inferd_scheduler_retries_total"), 0) << "a model error was retried";
}

// Verifies that RepositoryModelLoad of a broken model answers its error
// and leaves the loaded models serving.
TEST_F(TorchIntegrationTest, FailedLoadLeavesTheOthersServing) {
  torch_testing::CopyFolder(FixturesDir() + "/broken/not_a_model",
                            *repository_ + "/not_a_model");
  inference::RepositoryModelLoadRequest load;
  load.set_model_name("not_a_model");
  inference::RepositoryModelLoadResponse loaded;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  grpc::Status st = client_->kserve().RepositoryModelLoad(&ctx, load, &loaded);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("torch.file: not a model file"));
  EXPECT_THAT(st.error_message(), ::testing::Not(HasSubstr(*repository_)));
  const ModelCase c = ReadCase("torch_mlp");
  EXPECT_TRUE(client_->Infer(Request("torch_mlp", c.inputs)).ok());
  std::filesystem::remove_all(*repository_ + "/not_a_model");
}

// Verifies torch.cuda_graphs: batches of a recorded size (1, 2, 4) and of
// the others (3, 5) answer as torch computed them, also from many clients
// at once; a model whose run waits for the device (torch_raises turns a
// device tensor into a bool) cannot be recorded and fails to load with
// INVALID_ARGUMENT naming the key. On host devices the key changes
// nothing: every model loads and answers the same.
TEST(TorchGraphTest, RecordedSizesAnswerAsTorch) {
  const bool gpu = std::getenv("INFERD_TEST_USE_GPU") != nullptr &&
                   std::string(std::getenv("INFERD_TEST_USE_GPU")) == "1";
  const std::string repository = testing::WriteTempFile("", ".d");
  std::filesystem::remove(repository);
  std::filesystem::create_directories(repository);
  for (const char* name : {"torch_mlp", "torch_raises"}) {
    torch_testing::CopyFolder(FixturesDir() + "/repo/" + name, repository + "/" + name);
    const std::string config = repository + "/" + name + "/config.yaml";
    std::ifstream in(config);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t at = text.find("torch: {file: model.pt}");
    ASSERT_NE(at, std::string::npos) << text;
    text.replace(at, std::strlen("torch: {file: model.pt}"),
                 "torch: {file: model.pt, cuda_graphs: true, warmup: [1, 2, 4]}");
    const size_t delay = text.find("max_queue_delay_us: 100000");
    if (delay != std::string::npos) text.replace(delay + 20, 6, "1000");
    std::ofstream(config) << text;
  }
  // torch_raises is loaded on request below.
  std::filesystem::rename(repository + "/torch_raises", repository + ".raises");
  // Lone requests run at once (the default batch_dispatch_when_idle).
  testing::ConfiguredDaemon daemon(
      absl::StrCat("models:\n  repository: \"", repository, "\"\n  torch_backend_library: \"",
                   INFERD_TORCH_BACKEND_LIB, "\"\n"),
      1);
  ASSERT_TRUE(daemon.process().started()) << daemon.process().Stderr();
  ClientOptions o;
  o.target = daemon.process().target();
  o.timeout = absl::Seconds(30);
  auto owned_client = std::make_unique<InferdClient>(o);
  InferdClient& client = *owned_client;

  const ModelCase c = ReadCase("torch_mlp");
  const CaseTensor& x = c.inputs[0];
  const CaseTensor& y = c.outputs[0];
  const int64_t rows = x.shape[0];
  ASSERT_GE(rows, 5);
  const size_t in_row = x.bytes.size() / rows;
  const size_t out_row = y.bytes.size() / rows;
  // Rows [first, first + n) of the case.
  auto check = [&](int64_t first, int64_t n) -> absl::Status {
    CaseTensor part{x.name, x.dtype, {n, x.shape[1]}, x.bytes.substr(first * in_row, n * in_row)};
    CaseTensor want{y.name, y.dtype, {n, y.shape[1]},
                    y.bytes.substr(first * out_row, n * out_row)};
    absl::StatusOr<inference::ModelInferResponse> r = client.Infer(Request("torch_mlp", {part}));
    if (!r.ok()) return r.status();
    const double err = RelativeError(want, r->raw_output_contents(0));
    if (err > 1e-5) {
      return absl::DataLossError(absl::StrCat("rows ", first, "+", n, ": error ", err));
    }
    return absl::OkStatus();
  };
  for (int round = 0; round < 3; ++round) {
    for (int64_t n = 1; n <= 5; ++n) {
      for (int64_t first = 0; first + n <= rows; ++first) {
        EXPECT_TRUE(check(first, n).ok()) << check(first, n);
      }
    }
  }
  std::vector<std::thread> clients;
  std::vector<absl::Status> status(64);
  for (int k = 0; k < 64; ++k) {
    clients.emplace_back([&, k] {
      for (int i = 0; i < 10 && status[k].ok(); ++i) status[k] = check((k + i) % rows, 1);
    });
  }
  for (std::thread& t : clients) t.join();
  for (const absl::Status& s : status) EXPECT_TRUE(s.ok()) << s;

  std::filesystem::rename(repository + ".raises", repository + "/torch_raises");
  inference::RepositoryModelLoadRequest load;
  load.set_model_name("torch_raises");
  inference::RepositoryModelLoadResponse loaded;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  grpc::Status st = client.kserve().RepositoryModelLoad(&ctx, load, &loaded);
  if (gpu) {
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
    EXPECT_THAT(st.error_message(), HasSubstr("torch.cuda_graphs: batch 4: the model's run "
                                              "cannot be recorded in a CUDA graph"));
    EXPECT_THAT(st.error_message(), HasSubstr("cuda_graphs: false"));
  } else {
    EXPECT_TRUE(st.ok()) << st.error_message();
  }
  // Whatever became of it, the recorded model still answers.
  EXPECT_TRUE(check(0, 4).ok()) << check(0, 4);
  EXPECT_TRUE(check(1, 3).ok()) << check(1, 3);
  owned_client.reset();
  EXPECT_EQ(daemon.Stop(), 0) << daemon.process().Stderr();
  fprintf(stderr, "%s\n", daemon.process().Stderr().c_str());
  std::filesystem::remove_all(repository);
}

// Verifies that a repository with a model that cannot load stops the
// daemon at start with exit code 2 and the model's error.
TEST(TorchStartTest, BrokenModelStopsTheStart) {
  const std::string repository = MakeRepository();
  torch_testing::CopyFolder(FixturesDir() + "/broken/wrong_output_shape",
                            repository + "/wrong_output_shape");
  testing::DaemonProcess daemon({"--host-devices=1", "--config=" +
                                     testing::WriteTempFile(Config(repository))});
  EXPECT_FALSE(daemon.started());
  EXPECT_EQ(daemon.Wait(absl::Seconds(60)), 2);
  EXPECT_THAT(daemon.Stderr(), HasSubstr("model 'wrong_output_shape'"));
  std::filesystem::remove_all(repository);
}

}  // namespace
}  // namespace inferd
