// The metrics endpoint against docs/METRICS.md, both ways: after traffic of
// every kind every family it serves is listed with its type, and every
// listed family is served unless its row says when it is not (GPU, NVML,
// TLS); `promtool check metrics` accepts the scrape. The series of an
// unloaded model leave the scrape.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "absl/time/clock.h"
#include "tests/integration/daemon_process.h"
#include "tests/integration/triton_client.h"

namespace inferd {
namespace {

// One family of docs/METRICS.md's table.
struct DocumentedFamily {
  std::string type;         // counter, gauge, histogram, summary
  bool conditional = false;  // its "served" cell is not "always"
};

// Families in docs/METRICS.md's table: first column, `a_{b,c}_d` expanded;
// the type column; the served column ("always", or the condition).
std::map<std::string, DocumentedFamily> DocumentedFamilies() {
  std::ifstream in(testing::SourceDir() + "/docs/METRICS.md");
  std::stringstream text;
  text << in.rdbuf();
  std::map<std::string, DocumentedFamily> names;
  static const std::regex kName(R"(`([a-z_{},]+)`)");
  for (absl::string_view line : absl::StrSplit(text.str(), '\n')) {
    if (!absl::StartsWith(line, "| `")) continue;
    std::vector<std::string> cells = absl::StrSplit(line, '|');
    if (cells.size() < 7) continue;  // metric, type, labels, served, meaning
    DocumentedFamily family;
    family.type = std::string(absl::StripAsciiWhitespace(cells[2]));
    family.conditional = absl::StripAsciiWhitespace(cells[4]) != "always";
    const std::string& first = cells[1];
    for (std::sregex_iterator it(first.begin(), first.end(), kName), end; it != end; ++it) {
      std::vector<std::string> expanded = {""};
      std::string name = (*it)[1];
      size_t pos = 0;
      while (pos < name.size()) {
        size_t open = name.find('{', pos);
        if (open == std::string::npos) {
          for (auto& e : expanded) e += name.substr(pos);
          break;
        }
        size_t close = name.find('}', open);
        std::vector<std::string> next;
        for (auto& e : expanded) {
          for (absl::string_view alt : absl::StrSplit(name.substr(open + 1, close - open - 1), ',')) {
            next.push_back(e + name.substr(pos, open - pos) + std::string(alt));
          }
        }
        expanded = next;
        pos = close + 1;
      }
      for (const std::string& e : expanded) names[e] = family;
    }
  }
  return names;
}

// Family name -> type from a scrape's "# TYPE" lines.
std::map<std::string, std::string> ServedFamilies(const std::string& body) {
  std::map<std::string, std::string> served;
  for (absl::string_view line : absl::StrSplit(body, '\n')) {
    if (!absl::StartsWith(line, "# TYPE ")) continue;
    std::vector<std::string> parts = absl::StrSplit(line, ' ');
    if (parts.size() >= 4) served[parts[2]] = parts[3];
  }
  return served;
}

// Polls `done` every 100 ms for up to 30 s.
template <typename F>
bool Eventually(F done) {
  for (int i = 0; i < 300; ++i) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return done();
}

TEST(MetricsDocTest, EveryServedFamilyIsDocumentedAndPromtoolPasses) {
  testing::DaemonProcess daemon(testing::DeviceArgs(2));
  ASSERT_TRUE(daemon.started()) << daemon.Stderr();
  auto ctl = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {testing::InferctlBinary(), "--target=" + daemon.target()};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::RunCommand(argv, absl::Seconds(60));
  };
  // Traffic on every RPC family: inference (ok and failed), tasks, tensors,
  // transfers, collectives, statistics of each engine, the report.
  EXPECT_EQ(ctl({"infer", "add", "--input=INPUT0:FP32:2:1,2", "--input=INPUT1:FP32:2:3,4"})
                .exit_code, 0);
  EXPECT_EQ(ctl({"infer", "add", "--input=INPUT0:FP32:2:1,2"}).exit_code, 1);
  EXPECT_EQ(ctl({"tasks", "submit", "scale", "--input=INPUT0:FP32:3:1,2,3", "--param=factor=2",
                 "--wait"}).exit_code, 0);
  testing::CommandResult up = ctl({"tensors", "upload", "FP32:4:1,2,3,4", "--device=0"});
  const std::string id = up.output.substr(0, up.output.find(' '));
  EXPECT_EQ(ctl({"transfer", id, "--to=1"}).exit_code, 0);
  EXPECT_EQ(ctl({"transfer", id, "--to=host"}).exit_code, 0);
  testing::CommandResult up2 = ctl({"tensors", "upload", "FP32:4:1,2,3,4", "--device=1"});
  const std::string id2 = up2.output.substr(0, up2.output.find(' '));
  (void)ctl({"collective", "allreduce", id, id2});
  for (const char* s : {"memory", "scheduler", "comm", "scaling", "models"}) {
    EXPECT_EQ(ctl({"stats", s}).exit_code, 0) << s;
  }
  EXPECT_EQ(ctl({"report"}).exit_code, 0);
  const std::string body = testing::HttpGet(daemon.metrics_port(), "/metrics");

  const std::map<std::string, DocumentedFamily> documented = DocumentedFamilies();
  const std::map<std::string, std::string> served = ServedFamilies(body);
  EXPECT_GT(served.size(), 20u) << body.substr(0, 2000);
  EXPECT_GT(documented.size(), 20u);
  std::vector<std::string> undocumented, wrong_type, missing;
  for (const auto& [name, type] : served) {
    auto it = documented.find(name);
    if (it == documented.end()) {
      undocumented.push_back(name);
    } else if (it->second.type != type) {
      wrong_type.push_back(absl::StrCat(name, " (served ", type, ", documented ",
                                        it->second.type, ")"));
    }
  }
  for (const auto& [name, family] : documented) {
    if (!family.conditional && !served.contains(name)) missing.push_back(name);
  }
  EXPECT_THAT(undocumented, ::testing::IsEmpty())
      << "served but not in docs/METRICS.md: " << absl::StrJoin(undocumented, ", ");
  EXPECT_THAT(wrong_type, ::testing::IsEmpty()) << absl::StrJoin(wrong_type, ", ");
  EXPECT_THAT(missing, ::testing::IsEmpty())
      << "in docs/METRICS.md as always served but not in the scrape: "
      << absl::StrJoin(missing, ", ");
  EXPECT_TRUE(absl::StrContains(body,
                        "inferd_model_requests_total{model=\"add\",version=\"1\","
                        "outcome=\"success\"} 1"));
  EXPECT_TRUE(absl::StrContains(body,
                        "inferd_model_requests_total{model=\"add\",version=\"1\","
                        "outcome=\"failure\"} 1"));
  EXPECT_TRUE(absl::StrContains(body, "inferd_model_request_duration_seconds_bucket{"));
  // Nothing is in flight any more.
  EXPECT_TRUE(absl::StrContains(
      body, "inferd_model_pending_requests{model=\"add\",version=\"1\"} 0\n"));
  EXPECT_TRUE(absl::StrContains(body, "process_resident_memory_bytes "));
  if (access("/usr/bin/promtool", X_OK) != 0) GTEST_SKIP() << "promtool not installed";
  const std::string path = testing::WriteTempFile(body, ".prom");
  auto r = testing::RunCommand({"/bin/sh", "-c", "/usr/bin/promtool check metrics < " + path},
                               absl::Seconds(30));
  std::remove(path.c_str());
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

// A model loaded, served and unloaded: none of its series (the scheduler's
// and the per-model ones) stays in the scrape.
TEST(MetricsDocTest, AnUnloadedModelsSeriesLeaveTheScrape) {
  const std::filesystem::path root =
      std::filesystem::path(::testing::TempDir()) / absl::StrCat("inferd_metrics_repo_", getpid());
  std::filesystem::remove_all(root);
  std::filesystem::create_directories(root / "gamma");
  std::ofstream(root / "gamma" / "config.yaml")
      << "version: \"1\"\nbackend: builtin\nbuiltin: {op: add_sub}\nmax_batch_size: 4\n"
      << "inputs:\n  - {name: INPUT0, datatype: FP32, dims: [-1, 4]}\n"
      << "  - {name: INPUT1, datatype: FP32, dims: [-1, 4]}\n"
      << "outputs:\n  - {name: OUTPUT0, datatype: FP32, dims: [-1, 4]}\n"
      << "  - {name: OUTPUT1, datatype: FP32, dims: [-1, 4]}\n";
  testing::ConfiguredDaemon daemon(
      absl::StrCat("models: {repository: \"", root.string(), "\", control_mode: explicit}\n"), 1);
  ASSERT_TRUE(daemon.process().started()) << daemon.process().Stderr();
  testing::TritonClient c(daemon.process().target());
  ASSERT_TRUE(c.LoadModel("gamma").ok());
  std::vector<testing::InferInput> inputs = {
      {"INPUT0", {1, 4}, "FP32", testing::Raw<float>({1, 4, 2, 3})},
      {"INPUT1", {1, 4}, "FP32", testing::Raw<float>({0, 0, 0, 0})}};
  ASSERT_TRUE(c.Infer("gamma", inputs).ok());
  (void)c.Infer("gamma", {inputs[0]});  // a failure too
  const int port = daemon.process().metrics_port();
  const std::string served = testing::HttpGet(port, "/metrics");
  for (const char* series :
       {"inferd_scheduler_execution_duration_seconds_count{model=\"gamma\"}",
        "inferd_scheduler_batch_size_count{model=\"gamma\"}",
        "inferd_scheduler_tasks_completed_total{model=\"gamma\",",
        "inferd_model_requests_total{model=\"gamma\",version=\"1\",outcome=\"success\"} 1",
        "inferd_model_pending_requests{model=\"gamma\",version=\"1\"} 0"}) {
    EXPECT_TRUE(absl::StrContains(served, series)) << series;
  }
  ASSERT_TRUE(c.UnloadModel("gamma").ok());
  // The scheduler's upkeep removes them within a second or so.
  std::string body;
  EXPECT_TRUE(Eventually([&] {
    body = testing::HttpGet(port, "/metrics");
    return !absl::StrContains(body, "\"gamma\"");
  }));
  for (absl::string_view line : absl::StrSplit(body, '\n')) {
    EXPECT_FALSE(absl::StrContains(line, "\"gamma\"")) << line;
  }
  EXPECT_TRUE(absl::StrContains(body, "inferd_model_requests_total{model=\"add\""));
  EXPECT_EQ(daemon.Stop(), 0);
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace inferd
