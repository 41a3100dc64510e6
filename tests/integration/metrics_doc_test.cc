// The metrics endpoint after traffic of every kind: every family it serves
// is listed in docs/METRICS.md, the per-model series are there, and
// `promtool check metrics` accepts the scrape.
#include <unistd.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/daemon_process.h"

namespace inferd {
namespace {

// Names in docs/METRICS.md's table: first column, `a_{b,c}_d` expanded.
std::set<std::string> DocumentedFamilies() {
  std::ifstream in(testing::SourceDir() + "/docs/METRICS.md");
  std::stringstream text;
  text << in.rdbuf();
  std::set<std::string> names;
  static const std::regex kName(R"(`([a-z_{},]+)`)");
  for (absl::string_view line : absl::StrSplit(text.str(), '\n')) {
    if (!absl::StartsWith(line, "| `")) continue;
    std::vector<std::string> cells = absl::StrSplit(line, '|');
    if (cells.size() < 3) continue;
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
      names.insert(expanded.begin(), expanded.end());
    }
  }
  return names;
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
  (void)testing::HttpGet(daemon.metrics_port(), "/metrics");  // the exposer's own series
  const std::string body = testing::HttpGet(daemon.metrics_port(), "/metrics");

  const std::set<std::string> documented = DocumentedFamilies();
  std::set<std::string> served;
  for (absl::string_view line : absl::StrSplit(body, '\n')) {
    if (!absl::StartsWith(line, "# TYPE ")) continue;
    std::vector<std::string> parts = absl::StrSplit(line, ' ');
    if (parts.size() >= 3) served.insert(parts[2]);
  }
  EXPECT_GT(served.size(), 20u) << body.substr(0, 2000);
  std::vector<std::string> missing;
  for (const std::string& name : served) {
    if (!documented.contains(name)) missing.push_back(name);
  }
  EXPECT_THAT(missing, ::testing::IsEmpty())
      << "served but not in docs/METRICS.md: " << absl::StrJoin(missing, ", ");
  EXPECT_TRUE(absl::StrContains(body,
                        "inferd_model_requests_total{model=\"add\",version=\"1\","
                        "outcome=\"success\"} 1"));
  EXPECT_TRUE(absl::StrContains(body,
                        "inferd_model_requests_total{model=\"add\",version=\"1\","
                        "outcome=\"failure\"} 1"));
  EXPECT_TRUE(absl::StrContains(body, "inferd_model_request_duration_seconds_bucket{"));
  EXPECT_TRUE(absl::StrContains(body, "process_resident_memory_bytes "));
  if (access("/usr/bin/promtool", X_OK) != 0) GTEST_SKIP() << "promtool not installed";
  const std::string path = testing::WriteTempFile(body, ".prom");
  auto r = testing::RunCommand({"/bin/sh", "-c", "/usr/bin/promtool check metrics < " + path},
                               absl::Seconds(30));
  std::remove(path.c_str());
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

}  // namespace
}  // namespace inferd
