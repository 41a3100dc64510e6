// Model control as Triton's: control modes none | explicit | poll, builtins
// protected, unload_dependents accepted, one log line per change, and
// classification labels from a model's label file.
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/daemon_process.h"
#include "tests/integration/triton_client.h"

namespace inferd {
namespace {

using ::testing::HasSubstr;

// A "simple"-like model folder whose config says `version`.
void WriteModel(const std::filesystem::path& dir, const std::string& version,
                bool labels = false) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "config.yaml")
      << "version: \"" << version << "\"\n"
      << "backend: builtin\nbuiltin: {op: add_sub}\nmax_batch_size: 4\n"
      << "inputs:\n  - {name: INPUT0, datatype: FP32, dims: [-1, 4]}\n"
      << "  - {name: INPUT1, datatype: FP32, dims: [-1, 4]}\n"
      << "outputs:\n  - {name: OUTPUT0, datatype: FP32, dims: [-1, 4]"
      << (labels ? ", label_filename: labels.txt" : "") << "}\n"
      << "  - {name: OUTPUT1, datatype: FP32, dims: [-1, 4]}\n";
  if (labels) std::ofstream(dir / "labels.txt") << "cat\ndog\nbird\nfish\n";
}

std::vector<testing::InferInput> Inputs() {
  return {{"INPUT0", {1, 4}, "FP32", testing::Raw<float>({1, 4, 2, 3})},
          {"INPUT1", {1, 4}, "FP32", testing::Raw<float>({0, 0, 0, 0})}};
}

// Polls `done` every 50 ms for up to 30 s.
template <typename F>
bool Eventually(F done) {
  for (int i = 0; i < 600; ++i) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return done();
}

class ModelControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::path(::testing::TempDir()) /
            absl::StrCat("inferd_repo_", ::testing::UnitTest::GetInstance()->random_seed(), "_",
                         ::getpid(), "_", counter_++);
    std::filesystem::remove_all(root_);
    WriteModel(root_ / "alpha", "1");
    WriteModel(root_ / "labeled", "1", /*labels=*/true);
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  std::string Config(const std::string& mode) {
    return absl::StrCat("models: {repository: \"", root_.string(), "\", control_mode: ", mode,
                        ", poll_interval_seconds: 0.1}\n");
  }
  static std::string VersionOf(testing::TritonClient& c, const std::string& model) {
    inference::ModelMetadataRequest req;
    req.set_name(model);
    inference::ModelMetadataResponse resp;
    grpc::ClientContext ctx;
    if (!c.stub().ModelMetadata(&ctx, req, &resp).ok()) return "";
    return resp.versions_size() > 0 ? resp.versions(0) : "";
  }

  std::filesystem::path root_;
  static int counter_;
};

int ModelControlTest::counter_ = 0;

TEST_F(ModelControlTest, PollModePicksUpAddedChangedAndRemovedFolders) {
  testing::ConfiguredDaemon daemon(Config("poll"), 1);
  ASSERT_TRUE(daemon.process().started()) << daemon.process().Stderr();
  testing::TritonClient c(daemon.process().target());
  EXPECT_EQ(VersionOf(c, "alpha"), "1");

  WriteModel(root_ / "beta", "1");
  EXPECT_TRUE(Eventually([&] { return VersionOf(c, "beta") == "1"; }));
  WriteModel(root_ / "alpha", "2");
  EXPECT_TRUE(Eventually([&] { return VersionOf(c, "alpha") == "2"; }));
  std::filesystem::remove_all(root_ / "alpha");
  EXPECT_TRUE(Eventually([&] { return VersionOf(c, "alpha").empty(); }));
  EXPECT_TRUE(c.Infer("beta", Inputs()).ok());

  const std::string log = daemon.process().Stderr();
  EXPECT_THAT(log, HasSubstr("model 'beta' version 1: loaded (poll: added)"));
  EXPECT_THAT(log, HasSubstr("model 'alpha' version 2: reloaded (poll: changed)"));
  EXPECT_THAT(log, HasSubstr("model 'alpha' version 2: unloaded (poll: removed)"));
  EXPECT_EQ(daemon.Stop(), 0);
}

TEST_F(ModelControlTest, ExplicitModeUnloadsWithUnloadDependentsAndProtectsBuiltins) {
  testing::ConfiguredDaemon daemon(Config("explicit"), 1);
  ASSERT_TRUE(daemon.process().started()) << daemon.process().Stderr();
  testing::TritonClient c(daemon.process().target());
  ASSERT_TRUE(c.UnloadModel("alpha").ok());  // tritonclient sends unload_dependents
  EXPECT_TRUE(VersionOf(c, "alpha").empty());
  ASSERT_TRUE(c.LoadModel("alpha").ok());
  EXPECT_EQ(VersionOf(c, "alpha"), "1");

  absl::Status builtin = c.UnloadModel("identity");
  EXPECT_EQ(builtin.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(builtin.message(), HasSubstr("'identity' is a builtin model"));
  EXPECT_EQ(c.LoadModel("add").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(VersionOf(c, "identity"), "1");

  inference::RepositoryModelLoadRequest req;
  req.set_model_name("alpha");
  (*req.mutable_parameters())["config"].set_string_param("{}");
  inference::RepositoryModelLoadResponse resp;
  grpc::ClientContext ctx;
  grpc::Status st = c.stub().RepositoryModelLoad(&ctx, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("parameters.config"));

  const std::string log = daemon.process().Stderr();
  EXPECT_THAT(log, HasSubstr("model 'alpha' version 1: unloaded (unload)"));
  EXPECT_THAT(log, HasSubstr("model 'alpha' version 1: loaded (load)"));
  EXPECT_EQ(daemon.Stop(), 0);
}

TEST_F(ModelControlTest, NoneModeRefusesLoadAndUnload) {
  testing::ConfiguredDaemon daemon(Config("none"), 1);
  ASSERT_TRUE(daemon.process().started()) << daemon.process().Stderr();
  testing::TritonClient c(daemon.process().target());
  absl::Status st = c.UnloadModel("alpha");
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("control_mode is none"));
  EXPECT_EQ(c.LoadModel("alpha").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(VersionOf(c, "alpha"), "1");
  EXPECT_EQ(daemon.Stop(), 0);
}

TEST_F(ModelControlTest, ClassificationUsesTheLabelFile) {
  testing::ConfiguredDaemon daemon(Config("explicit"), 1);
  ASSERT_TRUE(daemon.process().started()) << daemon.process().Stderr();
  testing::TritonClient c(daemon.process().target());
  auto r = c.Infer("labeled", Inputs(), {{"OUTPUT0", /*class_count=*/2}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(testing::ParseStrings(r->raw_output_contents(0)),
            (std::vector<std::string>{"4.000000:1:dog", "3.000000:3:fish"}));
  auto config = c.GetModelConfig("labeled");
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->config().output(0).label_filename(), "labels.txt");
  EXPECT_EQ(daemon.Stop(), 0);
}

}  // namespace
}  // namespace inferd
