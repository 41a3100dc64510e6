// inferctl's manners: --help and -h on every command and subcommand print
// the usage and exit 0 without calling the daemon; --version; --json on
// every command that prints data gives one JSON document; models
// load|unload|index.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/integration/daemon_process.h"

namespace inferd {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

testing::CommandResult Inferctl(const std::string& target, std::vector<std::string> args) {
  std::vector<std::string> argv = {testing::InferctlBinary(), "--target=" + target};
  argv.insert(argv.end(), args.begin(), args.end());
  return testing::RunCommand(argv, absl::Seconds(60));
}

// Every command and subcommand, as a user would start typing it.
const std::vector<std::vector<std::string>>& Commands() {
  static const auto* kCommands = new std::vector<std::vector<std::string>>{
      {"health"}, {"models"}, {"models", "index"}, {"models", "load", "m"},
      {"models", "unload", "m"}, {"infer"}, {"infer", "add", "--input=INPUT0:FP32:1:1"},
      {"bench"}, {"bench", "add", "--input=INPUT0:FP32:1"}, {"tensors"}, {"tensors", "alloc"},
      {"tensors", "upload"}, {"tensors", "download"}, {"tensors", "info"}, {"tensors", "renew"},
      {"tensors", "free"}, {"tensors", "list"}, {"tasks"}, {"tasks", "submit"}, {"tasks", "get"},
      {"tasks", "wait"}, {"tasks", "cancel"}, {"tasks", "watch"}, {"tasks", "list"},
      {"transfer"}, {"transfer", "get"}, {"transfer", "wait"}, {"collective"},
      {"collective", "allreduce"}, {"collective", "broadcast"}, {"collective", "allgather"},
      {"collective", "reducescatter"}, {"stats"}, {"stats", "memory"}, {"stats", "scheduler"},
      {"stats", "comm"}, {"stats", "scaling"}, {"stats", "models"}, {"report"}};
  return *kCommands;
}

// Nothing listens on port 1: a command that acted would fail (exit 1).
TEST(InferctlUsageTest, HelpOnEveryCommandPrintsUsageAndRunsNothing) {
  for (const auto& command : Commands()) {
    for (const char* flag : {"--help", "-h"}) {
      std::vector<std::string> args = command;
      args.push_back(flag);
      testing::CommandResult r = Inferctl("127.0.0.1:1", args);
      const std::string what = absl::StrJoin(args, " ");
      EXPECT_EQ(r.exit_code, 0) << what << ": " << r.output;
      EXPECT_THAT(r.output, StartsWith("usage: inferctl")) << what;
      EXPECT_THAT(r.output, HasSubstr("  " + command[0])) << what;
    }
  }
  // Before the command too.
  testing::CommandResult top = Inferctl("127.0.0.1:1", {"-h"});
  EXPECT_EQ(top.exit_code, 0);
  EXPECT_THAT(top.output, HasSubstr("models load|unload MODEL"));
}

TEST(InferctlUsageTest, Version) {
  for (std::vector<std::string> args : {std::vector<std::string>{"--version"},
                                        std::vector<std::string>{"version"}}) {
    testing::CommandResult r = Inferctl("127.0.0.1:1", args);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_THAT(r.output, StartsWith("inferctl "));
    EXPECT_TRUE(r.output.size() > 9 && absl::ascii_isdigit(r.output[9])) << r.output;
  }
}

bool IsJson(const std::string& text) {
  google::protobuf::Value value;
  return google::protobuf::util::JsonStringToMessage(text, &value).ok();
}

class InferctlJsonTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    repo_ = new std::filesystem::path(std::filesystem::path(::testing::TempDir()) /
                                      absl::StrCat("inferctl_repo_", ::getpid()));
    std::filesystem::create_directories(*repo_ / "alpha");
    std::ofstream(*repo_ / "alpha" / "config.yaml")
        << "version: \"1\"\nbackend: builtin\nbuiltin: {op: add_sub}\nmax_batch_size: 4\n"
        << "inputs:\n  - {name: INPUT0, datatype: FP32, dims: [-1, 4]}\n"
        << "  - {name: INPUT1, datatype: FP32, dims: [-1, 4]}\n"
        << "outputs:\n  - {name: OUTPUT0, datatype: FP32, dims: [-1, 4]}\n"
        << "  - {name: OUTPUT1, datatype: FP32, dims: [-1, 4]}\n";
    std::vector<std::string> args = testing::DeviceArgs(2);
    args.push_back("--model-repository=" + repo_->string());
    args.push_back("--model-control-mode=explicit");
    daemon_ = new testing::DaemonProcess(args);
  }
  static void TearDownTestSuite() {
    delete daemon_;
    std::filesystem::remove_all(*repo_);
    delete repo_;
  }
  void SetUp() override { ASSERT_TRUE(daemon_->started()) << daemon_->Stderr(); }
  static testing::CommandResult Run(std::vector<std::string> args) {
    return Inferctl(daemon_->target(), std::move(args));
  }
  static testing::DaemonProcess* daemon_;
  static std::filesystem::path* repo_;
};
testing::DaemonProcess* InferctlJsonTest::daemon_ = nullptr;
std::filesystem::path* InferctlJsonTest::repo_ = nullptr;

TEST_F(InferctlJsonTest, EveryCommandThatPrintsDataPrintsJson) {
  const std::string id = [] {
    testing::CommandResult r = Run({"tensors", "upload", "FP32:2:1,2", "--owner=json"});
    std::vector<std::string> words = absl::StrSplit(r.output, absl::ByAnyChar(" \n"),
                                                    absl::SkipEmpty());
    return words.empty() ? std::string() : words[0];
  }();
  ASSERT_FALSE(id.empty());
  const std::vector<std::vector<std::string>> commands = {
      {"health", "--json"},
      {"models", "--json"},
      {"models", "index", "--json"},
      {"infer", "add", "--input=INPUT0:FP32:2:1,2", "--input=INPUT1:FP32:2:3,4", "--json"},
      {"bench", "add", "--input=INPUT0:FP32:2", "--input=INPUT1:FP32:2", "--warmup=0",
       "--duration=0.2", "--json"},
      {"tensors", "info", id, "--json"},
      {"tensors", "download", id, "--json"},
      {"tensors", "renew", id, "--lease=60", "--json"},
      {"tensors", "alloc", "FP32:2", "--owner=json", "--json"},
      {"tensors", "upload", "FP32:2:1,2", "--owner=json", "--json"},
      {"tensors", "list", "--owner=json", "--json"},
      {"tasks", "submit", "add", "--input=INPUT0:FP32:2:1,2", "--input=INPUT1:FP32:2:3,4",
       "--wait", "--json"},
      {"tasks", "list", "--json"},
      {"transfer", id, "--to=host", "--json"},
      {"stats", "memory", "--json"},
      {"stats", "scheduler", "--json"},
      {"stats", "comm", "--json"},
      {"stats", "scaling", "--json"},
      {"stats", "models", "--json"},
      {"report", "--json"},
  };
  for (const auto& command : commands) {
    testing::CommandResult r = Run(command);
    const std::string what = absl::StrJoin(command, " ");
    EXPECT_EQ(r.exit_code, 0) << what << ": " << r.output;
    EXPECT_TRUE(IsJson(r.output)) << what << " printed no single JSON document:\n" << r.output;
  }
  EXPECT_EQ(Run({"tensors", "free", id}).exit_code, 0);
}

TEST_F(InferctlJsonTest, ModelsLoadUnloadIndex) {
  testing::CommandResult load = Run({"models", "load", "alpha"});
  EXPECT_EQ(load.exit_code, 0) << load.output;
  EXPECT_EQ(load.output, "alpha loaded\n");
  testing::CommandResult index = Run({"models", "index"});
  EXPECT_THAT(index.output, HasSubstr("alpha")) << index.output;
  EXPECT_THAT(index.output, HasSubstr("READY")) << index.output;
  testing::CommandResult unload = Run({"models", "unload", "alpha", "--json"});
  EXPECT_EQ(unload.exit_code, 0) << unload.output;
  EXPECT_TRUE(IsJson(unload.output)) << unload.output;
  testing::CommandResult missing = Run({"models", "load", "no_such_model"});
  EXPECT_EQ(missing.exit_code, 1) << missing.output;
  testing::CommandResult no_name = Run({"models", "load"});
  EXPECT_EQ(no_name.exit_code, 2) << no_name.output;
}

TEST_F(InferctlJsonTest, BenchSweepsConcurrencyWithServerFiguresAsCsvAndJson) {
  const std::vector<std::string> load = {"bench", "add", "--input=INPUT0:FP32:2",
                                         "--input=INPUT1:FP32:2", "--warmup=0", "--duration=0.2"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = load;
    args.insert(args.end(), extra.begin(), extra.end());
    return Run(args);
  };
  testing::CommandResult csv = with({"--concurrency-range=1:3:2", "--csv"});
  ASSERT_EQ(csv.exit_code, 0) << csv.output;
  std::vector<std::string> lines = absl::StrSplit(csv.output, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << csv.output;
  EXPECT_THAT(lines[0], StartsWith("concurrency,rate,qps,mean_us,"));
  EXPECT_THAT(lines[1], StartsWith("1,"));
  EXPECT_THAT(lines[2], StartsWith("3,"));
  testing::CommandResult json = with({"--concurrency-range=2,4", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.output;
  EXPECT_TRUE(IsJson(json.output)) << json.output;
  EXPECT_THAT(json.output, HasSubstr("\"concurrency\":2,"));
  EXPECT_THAT(json.output, HasSubstr("\"concurrency\":4,"));
  EXPECT_THAT(json.output, HasSubstr("\"mean_us\":"));
  EXPECT_THAT(json.output, ::testing::Not(HasSubstr("\"server_queue_us\":null")));
  // An explicit --concurrency stays what it says with --rate.
  testing::CommandResult rate = with({"--rate=50", "--concurrency=8", "--json"});
  EXPECT_THAT(rate.output, HasSubstr("\"concurrency\":8,")) << rate.output;
  EXPECT_EQ(with({"--concurrency-range=3:1"}).exit_code, 2);
  EXPECT_EQ(with({"--concurrency-range=1:2", "--concurrency=4"}).exit_code, 2);
  testing::CommandResult table = with({});
  EXPECT_THAT(table.output, HasSubstr("mean us")) << table.output;
  EXPECT_THAT(table.output, HasSubstr("srv queue")) << table.output;
}

}  // namespace
}  // namespace inferd
