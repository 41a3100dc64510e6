// inferctl against the real daemon (two host devices): every command group
// — health, models, infer, tensors, tasks, transfer, collective, stats,
// report — its output, and its exit codes (0 ok, 1 daemon error naming the
// code, 2 bad arguments naming the flag).
#include <algorithm>
#include <fstream>
#include <future>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/daemon_process.h"

namespace inferd {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class InferctlTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { daemon_ = new testing::DaemonProcess(testing::DeviceArgs(2)); }
  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(daemon_->started()) << daemon_->Stderr(); }

  static testing::CommandResult Run(std::vector<std::string> args) {
    std::vector<std::string> argv = {testing::InferctlBinary(), "--target=" + daemon_->target()};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::RunCommand(argv, absl::Seconds(60));
  }

  // Runs a command that must succeed and returns the first word it printed
  // (the id, for upload / alloc / submit / transfer --no-wait).
  static std::string RunForId(std::vector<std::string> args) {
    testing::CommandResult r = Run(args);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    std::vector<std::string> words =
        absl::StrSplit(r.output, absl::ByAnyChar(" \n"), absl::SkipEmpty());
    return words.empty() ? "" : words[0];
  }

  static testing::DaemonProcess* daemon_;
};

testing::DaemonProcess* InferctlTest::daemon_ = nullptr;

TEST_F(InferctlTest, HelpListsEveryCommandGroup) {
  testing::CommandResult r =
      testing::RunCommand({testing::InferctlBinary(), "--help"}, absl::Seconds(10));
  EXPECT_EQ(r.exit_code, 0);
  for (const char* cmd : {"health", "models", "infer", "bench", "tensors", "tasks", "transfer",
                          "collective", "stats", "report"}) {
    EXPECT_THAT(r.output, HasSubstr(absl::StrCat("  ", cmd))) << cmd;
  }
}

TEST_F(InferctlTest, HealthModelsInferAndReport) {
  testing::CommandResult r = Run({"health"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("SERVING"));
  r = Run({"models"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("add"));
  r = Run({"infer", "add", "--input=INPUT0:FP32:2:1,2", "--input=INPUT1:FP32:2:3,4"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("OUTPUT0 FP32 [2]: 4,6"));
  r = Run({"report"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* section : {"DEVICES", "MEMORY", "SCALING", "COMMUNICATION"}) {
    EXPECT_THAT(r.output, HasSubstr(section));
  }
}

TEST_F(InferctlTest, TensorUploadDownloadInfoListRenewFree) {
  const std::string id =
      RunForId({"tensors", "upload", "FP32:2x2:1,2,3,4", "--device=1", "--owner=ctl-test"});
  ASSERT_EQ(id.size(), 32u) << id;
  testing::CommandResult r = Run({"tensors", "download", id});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("FP32 [2,2]: 1,2,3,4"));
  r = Run({"tensors", "info", id});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("device 1  FP32 [2,2]  16 bytes  owner ctl-test"));
  r = Run({"tensors", "list", "--owner=ctl-test", "--device=1"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr(id));
  r = Run({"tensors", "list", "--owner=nobody"});
  EXPECT_THAT(r.output, Not(HasSubstr(id)));
  r = Run({"tensors", "renew", id, "--lease=60", "--json"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("\"lease_expires_unix_ms\""));
  r = Run({"tensors", "free", id});
  EXPECT_EQ(r.exit_code, 0);
  r = Run({"tensors", "info", id});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("NOT_FOUND"));
}

// Verifies the chunked upload/download: a file larger than gRPC's 4 MiB
// default message limit goes up and comes back byte for byte.
TEST_F(InferctlTest, TensorFileRoundTripBeyondMessageLimit) {
  std::string payload(5 * 1024 * 1024 + 7, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 131 + 7);
  const std::string in = testing::WriteTempFile(payload, ".bin");
  const std::string out = in + ".out";
  const std::string id = RunForId({"tensors", "upload", absl::StrCat("UINT8:", payload.size()),
                                   "--file=" + in, "--chunk-bytes=1000000"});
  testing::CommandResult r = Run({"tensors", "download", id, "--out=" + out});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::ifstream f(out, std::ios::binary);
  const std::string back((std::istreambuf_iterator<char>(f)), {});
  EXPECT_TRUE(back == payload) << back.size() << " bytes back of " << payload.size();
  EXPECT_EQ(Run({"tensors", "free", id}).exit_code, 0);
  std::remove(in.c_str());
  std::remove(out.c_str());
}

TEST_F(InferctlTest, TensorAllocIsZeroed) {
  const std::string id = RunForId({"tensors", "alloc", "INT32:3", "--device=0"});
  testing::CommandResult r = Run({"tensors", "download", id});
  EXPECT_THAT(r.output, HasSubstr("INT32 [3]: 0,0,0"));
  r = Run({"tensors", "download", id, "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("\"values\":[0,0,0]}"));
  EXPECT_EQ(Run({"tensors", "free", id}).exit_code, 0);
}

TEST_F(InferctlTest, TaskSubmitWaitGetListCancel) {
  const std::string id =
      RunForId({"tasks", "submit", "add", "--input=INPUT0:FP32:2:1,2", "--input=INPUT1:FP32:2:3,4",
                "--priority=high", "--owner=ctl-tasks"});
  ASSERT_EQ(id.size(), 32u) << id;
  testing::CommandResult r = Run({"tasks", "wait", id, "--wait-timeout=30"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("HIGH  SUCCEEDED"));
  EXPECT_THAT(r.output, HasSubstr("OUTPUT0 FP32 [2]: 4,6"));
  r = Run({"tasks", "get", id, "--json"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("\"TASK_STATE_SUCCEEDED\""));
  // watch on a finished task prints its terminal event and ends; --json
  // makes it one JSON document per line.
  r = Run({"tasks", "watch", id, "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("\"task_id\":\"" + id + "\""));
  EXPECT_THAT(r.output, HasSubstr("\"TASK_STATE_SUCCEEDED\""));
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  r = Run({"tasks", "list", "--owner=ctl-tasks", "--state=succeeded"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr(id));
  r = Run({"tasks", "cancel", id});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("FAILED_PRECONDITION"));
}

// Verifies the input forms: a stored tensor by handle, and another task's
// output by reference (the dependency is implied).
TEST_F(InferctlTest, TaskInputsByTensorHandleAndTaskOutput) {
  const std::string tensor = RunForId({"tensors", "upload", "FP32:2:1,1", "--device=0"});
  const std::string first = RunForId(
      {"tasks", "submit", "add", "--input=INPUT0=tensor:" + tensor, "--input=INPUT1:FP32:2:2,3"});
  testing::CommandResult r =
      Run({"tasks", "submit", "scale", "--input=INPUT0=task:" + first + ":OUTPUT0",
           "--param=factor=10", "--wait"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("OUTPUT0 FP32 [2]: 30,40"));
  r = Run({"tasks", "submit", "add", "--input=INPUT0:FP32:1:5", "--input=INPUT1:FP32:1:6",
           "--keep-outputs", "--wait"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("OUTPUT0 FP32 [1]: tensor "));
  EXPECT_EQ(Run({"tensors", "free", tensor}).exit_code, 0);
}

TEST_F(InferctlTest, TaskFailureExitsOneWithTheCode) {
  testing::CommandResult r = Run({"tasks", "submit", "add", "--input=INPUT0:FP32:2:1,2", "--wait"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("INVALID_ARGUMENT"));
  EXPECT_THAT(r.output, HasSubstr("INPUT1"));
}

// Verifies that watching a finished task reports its final state and ends
// (the state is read once the stream is open).
TEST_F(InferctlTest, TaskWatchOfAFinishedTaskEnds) {
  const std::string id = RunForId({"tasks", "submit", "identity", "--input=INPUT0:FP32:1:7"});
  ASSERT_EQ(Run({"tasks", "wait", id}).exit_code, 0);
  testing::CommandResult r = Run({"tasks", "watch", id});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr(absl::StrCat(id, "  SUCCEEDED")));
}

// Verifies the live stream: a watch on a model prints events of tasks run
// after it opened. The daemon gives no "registered" signal, so tasks run
// one after another until the watch has printed its events.
TEST_F(InferctlTest, TaskWatchStreamsEvents) {
  auto watch = std::async(std::launch::async, [] {
    return Run({"tasks", "watch", "--model=identity", "--count=2", "--for=60"});
  });
  for (int i = 0; i < 200 && watch.wait_for(std::chrono::seconds(0)) != std::future_status::ready;
       ++i) {
    ASSERT_EQ(Run({"tasks", "submit", "identity", "--input=INPUT0:FP32:1:1", "--wait"}).exit_code,
              0);
  }
  testing::CommandResult r = watch.get();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::vector<std::string> lines = absl::StrSplit(r.output, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << r.output;
  for (const auto& line : lines) EXPECT_THAT(line, HasSubstr("identity device"));
}

TEST_F(InferctlTest, TransferBetweenDevicesAndToTheHost) {
  const std::string src = RunForId({"tensors", "upload", "INT32:3:7,8,9", "--device=0"});
  testing::CommandResult r = Run({"transfer", src, "--to=1", "--priority=high"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("SUCCEEDED  0->1 (PEER, HIGH)"));
  const size_t at = r.output.find("-> tensor ");
  ASSERT_NE(at, std::string::npos) << r.output;
  const std::string copy = r.output.substr(at + 10, 32);
  EXPECT_THAT(Run({"tensors", "info", copy}).output, HasSubstr("device 1  INT32 [3]"));
  EXPECT_THAT(Run({"tensors", "download", copy}).output, HasSubstr("INT32 [3]: 7,8,9"));
  r = Run({"transfer", src, "--to=host"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("-> host: 7,8,9"));
  const std::string transfer = RunForId({"transfer", src, "--to=1", "--no-wait"});
  r = Run({"transfer", "wait", transfer});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr(absl::StrCat("transfer ", transfer, "  SUCCEEDED")));
  EXPECT_EQ(Run({"transfer", "get", transfer}).exit_code, 0);
  r = Run({"transfer", "--values=FP32:2:1.5,2.5", "--to=1"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("host->1"));
  EXPECT_EQ(Run({"tensors", "free", src, copy}).exit_code, 0);
}

TEST_F(InferctlTest, CollectiveAllReduceAndAllGather) {
  const std::string a = RunForId({"tensors", "upload", "FP32:2:1,2", "--device=0"});
  const std::string b = RunForId({"tensors", "upload", "FP32:2:10,20", "--device=1"});
  testing::CommandResult r = Run({"collective", "allreduce", a, b, "--op=sum"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("allreduce over devices [0,1]"));
  EXPECT_THAT(Run({"tensors", "download", a}).output, HasSubstr("FP32 [2]: 11,22"));
  EXPECT_THAT(Run({"tensors", "download", b}).output, HasSubstr("FP32 [2]: 11,22"));
  r = Run({"collective", "allgather", a, b});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("FP32 [4]"));
  EXPECT_EQ(Run({"tensors", "free", a, b}).exit_code, 0);
}

TEST_F(InferctlTest, StatsForEveryEngineAsTableAndJson) {
  struct Case {
    const char* engine;
    const char* table_text;
    const char* json_key;
  };
  for (const Case& c :
       {Case{"memory", "frag", "\"fragmentation\""}, Case{"scheduler", "strategy", "\"strategy\""},
        Case{"comm", "calibration", "\"links\""},
        Case{"scaling", "desired replicas", "\"desired_replicas\""}}) {
    testing::CommandResult r = Run({"stats", c.engine});
    EXPECT_EQ(r.exit_code, 0) << c.engine << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr(c.table_text)) << c.engine;
    r = Run({"stats", c.engine, "--json"});
    EXPECT_EQ(r.exit_code, 0) << c.engine;
    EXPECT_THAT(r.output, HasSubstr(c.json_key)) << c.engine;
  }
  testing::CommandResult r = Run({"stats", "scaling", "--events=5", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("\"events\""));
}

TEST_F(InferctlTest, StatsModelsShowsPerModelStatisticsAfterTraffic) {
  ASSERT_EQ(Run({"infer", "scale", "--input=INPUT0:FP32:2:1,2"}).exit_code, 0);
  testing::CommandResult r = Run({"stats", "models", "--model=scale"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("executions"));
  EXPECT_THAT(r.output, ::testing::ContainsRegex("scale +1 +[1-9]"));
  EXPECT_THAT(r.output, HasSubstr("batch 1"));
  r = Run({"stats", "models", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("\"inference_stats\""));
  r = Run({"stats", "models", "--model=nope"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
}

TEST_F(InferctlTest, BadArgumentsExitTwoNamingTheFlag) {
  struct Case {
    std::vector<std::string> args;
    const char* names;
  };
  const std::vector<Case> cases = {
      {{"tensors", "upload", "FP32:2:1,2", "--device=x"}, "--device"},
      {{"tensors", "upload", "FP32:2:1,2,3"}, "needs 8 bytes"},
      {{"tensors", "upload", "FP99:2:1,2"}, "unknown datatype"},
      {{"tensors", "frobnicate"}, "unknown subcommand 'frobnicate'"},
      {{"tensors", "list", "--colour"}, "unknown flag '--colour'"},
      {{"tasks", "submit", "add", "--priority=urgent"}, "--priority"},
      {{"tasks", "submit", "add", "--input=INPUT0=disk:/etc/passwd"}, "NAME=tensor:ID"},
      {{"tasks", "list", "--state=done"}, "--state"},
      {{"tasks", "wait", "x", "--wait-timeout=0"}, "--wait-timeout"},
      {{"transfer", "abc", "--to=gpu"}, "--to"},
      {{"collective", "allreduce", "a", "b", "--op=median"}, "--op"},
      {{"stats", "gpu"}, "unknown engine 'gpu'"},
      {{"bench", "identity", "--concurrency=0"}, "--concurrency"},
  };
  for (const Case& c : cases) {
    testing::CommandResult r = Run(c.args);
    EXPECT_EQ(r.exit_code, 2) << absl::StrJoin(c.args, " ") << "\n" << r.output;
    EXPECT_THAT(r.output, HasSubstr(c.names)) << absl::StrJoin(c.args, " ");
  }
}

TEST_F(InferctlTest, DaemonErrorsExitOneWithTheCode) {
  testing::CommandResult r = Run({"tensors", "download", std::string(31, '0') + "1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("inferctl: NOT_FOUND"));
  r = Run({"tasks", "get", "not-a-task-id"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("INVALID_ARGUMENT"));
  r = Run({"transfer", std::string(31, '0') + "1", "--to=1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("NOT_FOUND"));
}

}  // namespace
}  // namespace inferd
