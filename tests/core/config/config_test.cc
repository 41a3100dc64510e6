#include "core/config/config.h"

#include <cstdint>
#include <fstream>
#include <iterator>
#include <map>
#include <ostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace inferd {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

const char kPerf[] = "device.multi_gpu.performance_optimization";

std::string ShippedConfigPath() { return std::string(INFERD_SOURCE_DIR) + "/configs/inferd.yaml"; }

std::string ReadShippedConfig() {
  std::ifstream in(ShippedConfigPath());
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Wraps `body` in the nesting of the performance_optimization block.
std::string Perf(absl::string_view body) {
  return "device:\n  multi_gpu:\n    performance_optimization:\n      " + std::string(body) + "\n";
}

TEST(ConfigTest, DefaultsAreValid) { EXPECT_TRUE(ValidateConfig(Config{}).ok()); }

TEST(ConfigTest, ShippedFileParsesToDefaults) {
  absl::StatusOr<Config> config = LoadConfigFile(ShippedConfigPath());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(*config, Config{});
  EXPECT_EQ(DescribeConfig(*config), DescribeConfig(Config{}));
}

// Verifies that the shipped file and the key table list the same keys, so
// neither the docs nor the parser can go stale.
TEST(ConfigTest, ShippedFileSetsExactlyTheKeysOfTheTable) {
  std::vector<std::string> keys_set;
  absl::StatusOr<Config> config = ParseConfig(ReadShippedConfig(), &keys_set);
  ASSERT_TRUE(config.ok()) << config.status();
  std::set<std::string> in_file(keys_set.begin(), keys_set.end());
  std::set<std::string> in_table;
  for (const ConfigKeyInfo& key : ConfigKeys()) in_table.insert(key.path);
  EXPECT_EQ(in_file.size(), keys_set.size()) << "a key appears twice in the file";
  for (const std::string& path : in_table) {
    EXPECT_TRUE(in_file.contains(path)) << path << " is missing from configs/inferd.yaml";
  }
  for (const std::string& path : in_file) {
    EXPECT_TRUE(in_table.contains(path)) << path << " is in the file but not in the table";
  }
}

// Verifies that every key in the shipped file sits under a comment that
// states the table's unit and range for it.
TEST(ConfigTest, ShippedFileDocumentsUnitAndRangeOfEveryKey) {
  std::map<std::string, ConfigKeyInfo> table;
  for (const ConfigKeyInfo& key : ConfigKeys()) table[key.path] = key;
  std::vector<std::string> lines = absl::StrSplit(ReadShippedConfig(), '\n');
  std::vector<std::pair<size_t, std::string>> sections;  // (indent, name)
  std::string comment;  // the comment lines right above the current line
  int keys = 0;
  for (const std::string& line : lines) {
    absl::string_view text = absl::StripLeadingAsciiWhitespace(line);
    size_t indent = line.size() - text.size();
    if (absl::StartsWith(text, "#")) {
      absl::StrAppend(&comment, text, "\n");
      continue;
    }
    size_t colon = text.find(':');
    if (text.empty() || colon == absl::string_view::npos) {
      comment.clear();
      continue;
    }
    while (!sections.empty() && sections.back().first >= indent) sections.pop_back();
    std::string name(text.substr(0, colon));
    if (colon + 1 == text.size()) {
      sections.emplace_back(indent, name);
    } else {
      std::string path;
      for (const auto& section : sections) absl::StrAppend(&path, section.second, ".");
      path += name;
      ++keys;
      auto it = table.find(path);
      if (it == table.end()) {
        ADD_FAILURE() << path << " is not in the table";
      } else {
        EXPECT_THAT(comment, HasSubstr(it->second.range)) << path;
        EXPECT_THAT(comment, HasSubstr(it->second.unit)) << path;
      }
    }
    comment.clear();
  }
  EXPECT_EQ(keys, static_cast<int>(table.size()));
}

TEST(ConfigTest, TableHasDocUnitOrRangeForEveryKey) {
  for (const ConfigKeyInfo& key : ConfigKeys()) {
    EXPECT_FALSE(key.doc.empty()) << key.path;
    EXPECT_FALSE(key.range.empty()) << key.path;
    EXPECT_FALSE(key.type.empty()) << key.path;
  }
}

TEST(ConfigTest, EmptyTextYieldsDefaults) {
  absl::StatusOr<Config> config = ParseConfig("");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(*config, Config{});
}

TEST(ConfigTest, CommentsOnlyYieldDefaults) {
  absl::StatusOr<Config> config = ParseConfig("# nothing here\n\n  # still nothing\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(*config, Config{});
}

TEST(ConfigTest, SectionWithOnlyCommentsYieldsDefaults) {
  absl::StatusOr<Config> config = ParseConfig("server:\n  # grpc_listen: x\ndevice:\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(*config, Config{});
}

TEST(ConfigTest, PartialFileOverridesOnlyWhatItNames) {
  std::vector<std::string> keys_set;
  absl::StatusOr<Config> config =
      ParseConfig("server:\n  grpc_listen: 0.0.0.0:6000\n" + Perf("memory_gc_threshold: 0.5") +
                      "limits:\n  max_dims: 8\n",
                  &keys_set);
  ASSERT_TRUE(config.ok()) << config.status();
  Config expected;
  expected.server.grpc_listen = "0.0.0.0:6000";
  expected.device.performance.memory_gc_threshold = 0.5;
  expected.limits.max_dims = 8;
  EXPECT_EQ(*config, expected);
  EXPECT_EQ(keys_set, (std::vector<std::string>{"server.grpc_listen",
                                                std::string(kPerf) + ".memory_gc_threshold",
                                                "limits.max_dims"}));
}

TEST(ConfigTest, ParsesEveryValueKind) {
  absl::StatusOr<Config> config = ParseConfig(
      "server:\n  reflection: off\n  metrics_listen: \"\"\n  shutdown_grace_seconds: 5\n"
      "device:\n  cuda_devices: [2, 0]\n  host_inline_when_idle: false\n"
      "  host_devices: 4\n  host_memory_mb: 64\n"
      "  multi_gpu:\n    performance_optimization:\n"
      "      scheduling_strategy: memory_aware\n      comm_bandwidth_limit: 1\n"
      "      task_timeout: 2.5e1\n      enable_task_migration: true\n"
      "models:\n  repository: '/srv/models'\n"
      "limits:\n  max_tensor_bytes: 9000000000\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.reflection, "off");
  EXPECT_EQ(config->server.metrics_listen, "");
  EXPECT_EQ(config->server.shutdown_grace_seconds, 5.0);
  EXPECT_EQ(config->device.cuda_devices, (std::vector<int>{2, 0}));
  EXPECT_FALSE(config->device.host_inline_when_idle);
  EXPECT_EQ(config->device.host_devices, 4);
  EXPECT_EQ(config->device.host_memory_mb, 64);
  EXPECT_EQ(config->device.performance.scheduling_strategy, "memory_aware");
  EXPECT_EQ(config->device.performance.comm_bandwidth_limit, 1.0);
  EXPECT_EQ(config->device.performance.task_timeout, 25.0);
  EXPECT_TRUE(config->device.performance.enable_task_migration);
  EXPECT_EQ(config->models.repository, "/srv/models");
  EXPECT_EQ(config->limits.max_tensor_bytes, int64_t{9000000000});
}

TEST(ConfigTest, AcceptsIpv6AndNamedHosts) {
  EXPECT_TRUE(ParseConfig("server:\n  grpc_listen: \"[::1]:0\"\n").ok());
  EXPECT_TRUE(ParseConfig("server:\n  grpc_listen: inferd-0.svc.local:50051\n").ok());
}

TEST(ConfigTest, ExactMessagesNameKeyPathAndValue) {
  struct Case {
    std::string yaml;
    std::string message;
  };
  const std::vector<Case> cases = {
      {Perf("memory_gc_threshold: 1.5"),
       std::string(kPerf) + ".memory_gc_threshold: 1.5 is out of range [0, 1]"},
      {"server:\n  grpc_listn: x:1\n", "server.grpc_listn: unknown key"},
      {Perf("max_tasks_per_device: four"),
       std::string(kPerf) + ".max_tasks_per_device: expected an integer, got \"four\""},
      {Perf("scheduling_strategy: fastest"),
       std::string(kPerf) +
           ".scheduling_strategy: \"fastest\" is not one of round_robin, least_loaded, "
           "memory_aware, balanced"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Config> config = ParseConfig(c.yaml);
    EXPECT_EQ(config.status(), absl::InvalidArgumentError(c.message)) << c.yaml;
  }
}

// One rejected input: the YAML text and the key path its message must start with.
struct BadInput {
  std::string name;
  std::string yaml;
  std::string path;
};

void PrintTo(const BadInput& input, std::ostream* os) { *os << input.name; }

class ConfigRejectsTest : public ::testing::TestWithParam<BadInput> {};

TEST_P(ConfigRejectsTest, WithInvalidArgumentNamingTheKey) {
  absl::StatusOr<Config> config = ParseConfig(GetParam().yaml);
  ASSERT_FALSE(config.ok()) << GetParam().yaml;
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(config.status().message()), StartsWith(GetParam().path + ": "));
}

std::string P(absl::string_view key) { return std::string(kPerf) + "." + std::string(key); }

INSTANTIATE_TEST_SUITE_P(
    Config, ConfigRejectsTest,
    ::testing::Values(
        // Unknown keys, at every depth.
        BadInput{"UnknownTopLevelKey", "sever:\n  grpc_listen: x:1\n", "sever"},
        BadInput{"UnknownServerKey", "server:\n  grpc_listn: x:1\n", "server.grpc_listn"},
        BadInput{"UnknownSection", "device:\n  multi_gpux:\n    a: 1\n", "device.multi_gpux"},
        BadInput{"UnknownPerformanceKey", Perf("memory_gc_treshold: 0.5"), P("memory_gc_treshold")},
        BadInput{"DottedKey", "device.host_devices: 2\n", "device.host_devices"},
        BadInput{"DuplicateKey", "limits:\n  max_dims: 3\n  max_dims: 4\n", "limits.max_dims"},
        // Non-maps where a map belongs.
        BadInput{"ScalarDocument", "hello\n", "(top level)"},
        BadInput{"ListDocument", "- 1\n- 2\n", "(top level)"},
        BadInput{"ScalarSection", "server: 5\n", "server"},
        BadInput{"ListSection", "device:\n  multi_gpu: [1]\n", "device.multi_gpu"},
        // Wrong types.
        BadInput{"WordForInt", Perf("max_tasks_per_device: four"), P("max_tasks_per_device")},
        BadInput{"DoubleForInt", Perf("max_tasks_per_device: 4.0"), P("max_tasks_per_device")},
        BadInput{"QuotedInt", "limits:\n  max_inputs: \"4\"\n", "limits.max_inputs"},
        BadInput{"ListForInt64", "limits:\n  max_tensor_bytes: [1]\n", "limits.max_tensor_bytes"},
        BadInput{"WordForDouble", Perf("memory_gc_threshold: high"), P("memory_gc_threshold")},
        BadInput{"NanForDouble", Perf("task_timeout: nan"), P("task_timeout")},
        BadInput{"InfForDouble", Perf("task_timeout: inf"), P("task_timeout")},
        BadInput{"YesForBool", Perf("enable_nccl: yes"), P("enable_nccl")},
        BadInput{"OneForBool", Perf("enable_nccl: 1"), P("enable_nccl")},
        BadInput{"QuotedBool", Perf("enable_nccl: \"true\""), P("enable_nccl")},
        BadInput{"MapForString", "server:\n  log_level: {a: 1}\n", "server.log_level"},
        BadInput{"NullForString", "models:\n  repository:\n", "models.repository"},
        BadInput{"ScalarForList", "device:\n  cuda_devices: 0\n", "device.cuda_devices"},
        BadInput{"WordInList", "device:\n  cuda_devices: [0, x]\n", "device.cuda_devices"},
        // Out of range, one of each kind.
        BadInput{"RatioAboveOne", Perf("memory_gc_threshold: 1.5"), P("memory_gc_threshold")},
        BadInput{"RatioBelowZero", Perf("memory_defrag_threshold: -0.1"),
                 P("memory_defrag_threshold")},
        BadInput{"StabilityAboveOne", Perf("scaling_stability_threshold: 2"),
                 P("scaling_stability_threshold")},
        BadInput{"BandwidthZero", Perf("comm_bandwidth_limit: 0"), P("comm_bandwidth_limit")},
        BadInput{"BandwidthAboveOne", Perf("comm_bandwidth_limit: 1.01"),
                 P("comm_bandwidth_limit")},
        BadInput{"NegativeCooldown", Perf("scale_up_cooldown: -1"), P("scale_up_cooldown")},
        BadInput{"NegativeDownCooldown", Perf("scale_down_cooldown: -0.5"),
                 P("scale_down_cooldown")},
        BadInput{"ZeroInterval", Perf("scaling_evaluation_interval: 0"),
                 P("scaling_evaluation_interval")},
        BadInput{"NegativeTimeout", Perf("task_timeout: -3"), P("task_timeout")},
        BadInput{"NegativeGrace", "server:\n  shutdown_grace_seconds: -1\n",
                 "server.shutdown_grace_seconds"},
        BadInput{"ZeroPoolSize", Perf("memory_pool_size_mb: 0"), P("memory_pool_size_mb")},
        BadInput{"ZeroChunk", Perf("comm_chunk_size_mb: 0"), P("comm_chunk_size_mb")},
        BadInput{"NegativeOverlap", Perf("comm_overlap_threshold_mb: -1"),
                 P("comm_overlap_threshold_mb")},
        BadInput{"ZeroHostMemory", "device:\n  host_memory_mb: 0\n", "device.host_memory_mb"},
        BadInput{"ZeroTasksPerDevice", Perf("max_tasks_per_device: 0"), P("max_tasks_per_device")},
        BadInput{"TinyMessage", "server:\n  max_receive_message_bytes: 1023\n",
                 "server.max_receive_message_bytes"},
        BadInput{"HugeMessage", "server:\n  max_send_message_bytes: 2147483648\n",
                 "server.max_send_message_bytes"},
        BadInput{"ZeroStreams", "server:\n  max_concurrent_streams: 0\n",
                 "server.max_concurrent_streams"},
        BadInput{"NegativeHostDevices", "device:\n  host_devices: -1\n", "device.host_devices"},
        BadInput{"TooManyHostDevices", "device:\n  host_devices: 65\n", "device.host_devices"},
        BadInput{"NegativeCudaOrdinal", "device:\n  cuda_devices: [0, -1]\n",
                 "device.cuda_devices"},
        BadInput{"DuplicateCudaOrdinal", "device:\n  cuda_devices: [1, 1]\n",
                 "device.cuda_devices"},
        BadInput{"ZeroTensorBytes", "limits:\n  max_tensor_bytes: 0\n", "limits.max_tensor_bytes"},
        BadInput{"NegativeInputs", "limits:\n  max_inputs: -2\n", "limits.max_inputs"},
        BadInput{"ZeroDims", "limits:\n  max_dims: 0\n", "limits.max_dims"},
        BadInput{"IntBeyond32Bits", "limits:\n  max_inputs: 99999999999\n", "limits.max_inputs"},
        BadInput{"IntBeyond64Bits", "limits:\n  max_tensor_bytes: 99999999999999999999\n",
                 "limits.max_tensor_bytes"},
        BadInput{"ZeroQueueDepth", "scheduler:\n  max_queue_depth: 0\n",
                 "scheduler.max_queue_depth"},
        BadInput{"TooManyRetries", "scheduler:\n  default_max_retries: 17\n",
                 "scheduler.default_max_retries"},
        BadInput{"ZeroBatchSize", "scheduler:\n  preferred_batch_sizes: [4, 0]\n",
                 "scheduler.preferred_batch_sizes"},
        BadInput{"NegativeAging", "scheduler:\n  aging_interval_seconds: -1\n",
                 "scheduler.aging_interval_seconds"},
        // Enums and addresses.
        BadInput{"UnknownStrategy", Perf("scheduling_strategy: fastest"), P("scheduling_strategy")},
        BadInput{"UnknownReflection", "server:\n  reflection: maybe\n", "server.reflection"},
        BadInput{"UnknownLogLevel", "server:\n  log_level: verbose\n", "server.log_level"},
        BadInput{"ListenWithoutPort", "server:\n  grpc_listen: localhost\n", "server.grpc_listen"},
        BadInput{"ListenWithoutHost", "server:\n  grpc_listen: \":50051\"\n", "server.grpc_listen"},
        BadInput{"ListenPortTooBig", "server:\n  grpc_listen: localhost:65536\n",
                 "server.grpc_listen"},
        BadInput{"ListenEmpty", "server:\n  grpc_listen: \"\"\n", "server.grpc_listen"},
        BadInput{"MetricsNotHostPort", "server:\n  metrics_listen: http://x:1/metrics\n",
                 "server.metrics_listen"}),
    [](const ::testing::TestParamInfo<BadInput>& info) { return info.param.name; });

TEST(ConfigTest, SyntaxErrorGivesLineNumber) {
  absl::StatusOr<Config> config = ParseConfig("server:\n  grpc_listen: [1,\n  log_level: x\n");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("YAML syntax error at line 4"));
}

TEST(ConfigTest, SyntaxErrorInIndentationGivesLineNumber) {
  absl::StatusOr<Config> config = ParseConfig("limits:\n  max_dims: 3\n   max_inputs: 4\n");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("line 3"));
}

TEST(ConfigTest, RejectsSeveralDocuments) {
  absl::StatusOr<Config> config = ParseConfig("---\nlimits: {max_dims: 3}\n---\nserver: {}\n");
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ConfigTest, IntegerIsAcceptedForDouble) {
  absl::StatusOr<Config> config = ParseConfig(Perf("scale_up_cooldown: 7"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->device.performance.scale_up_cooldown, 7.0);
}

TEST(ConfigTest, FailedParseLeavesKeysSetUntouched) {
  std::vector<std::string> keys_set;
  EXPECT_FALSE(ParseConfig("limits:\n  max_dims: 3\n  max_inputs: x\n", &keys_set).ok());
  EXPECT_TRUE(keys_set.empty());
}

// Verifies that values set in code after parsing (as flags do) are checked.
TEST(ConfigTest, ValidateCatchesBadValuesSetInCode) {
  Config config;
  config.device.performance.memory_gc_threshold = 1.5;
  EXPECT_EQ(ValidateConfig(config),
            absl::InvalidArgumentError(P("memory_gc_threshold") + ": 1.5 is out of range [0, 1]"));

  config = Config{};
  config.device.performance.scheduling_strategy = "fastest";
  EXPECT_THAT(std::string(ValidateConfig(config).message()),
              StartsWith(P("scheduling_strategy") + ": \"fastest\""));

  config = Config{};
  config.server.grpc_listen = "nohost";
  EXPECT_THAT(std::string(ValidateConfig(config).message()), StartsWith("server.grpc_listen: "));

  config = Config{};
  config.device.cuda_devices = {0, 2, 0};
  EXPECT_EQ(ValidateConfig(config).code(), absl::StatusCode::kInvalidArgument);

  config = Config{};
  config.limits.max_tensor_bytes = -1;
  EXPECT_THAT(std::string(ValidateConfig(config).message()),
              StartsWith("limits.max_tensor_bytes: "));
}

TEST(ConfigTest, DescribeConfigOfDefaultsParsesBack) {
  absl::StatusOr<Config> config = ParseConfig(DescribeConfig(Config{}));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(*config, Config{});
}

// Verifies that strings needing escapes and doubles without a short decimal
// form survive DescribeConfig -> ParseConfig exactly.
TEST(ConfigTest, DescribeConfigOfNonDefaultsParsesBack) {
  Config config;
  config.server.grpc_listen = "[::]:0";
  config.server.allow_insecure_non_loopback = true;
  config.server.tls.cert_file = "/etc/inferd/tls/tls.crt";
  config.server.tls.key_file = "/etc/inferd/tls/tls.key";
  config.server.metrics_listen = "";
  config.server.log_level = "debug";
  config.server.shutdown_grace_seconds = 0.1 + 0.2;
  config.device.host_devices = 3;
  config.device.cuda_devices = {3, 0, 1};
  config.device.performance.memory_gc_threshold = 1e-7;
  config.device.performance.scale_down_cooldown = 1e17;
  config.device.performance.task_timeout = 12.0;
  config.device.performance.enable_nccl = false;
  config.models.repository = "/models/\"quoted\" \\ back\ttab\nnew line é: # not a comment";
  config.limits.max_tensor_bytes = INT64_MAX;
  ASSERT_TRUE(ValidateConfig(config).ok());
  std::string text = DescribeConfig(config);
  absl::StatusOr<Config> parsed = ParseConfig(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status() << "\n" << text;
  EXPECT_EQ(*parsed, config) << text;
}

TEST(ConfigTest, LoadMissingFileIsNotFound) {
  absl::StatusOr<Config> config = LoadConfigFile(::testing::TempDir() + "/no/such/inferd.yaml");
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
}

TEST(ConfigTest, LoadDirectoryIsNotFound) {
  EXPECT_EQ(LoadConfigFile(::testing::TempDir()).status().code(), absl::StatusCode::kNotFound);
}

TEST(ConfigTest, LoadErrorNamesFileAndKey) {
  std::string path = ::testing::TempDir() + "/config_test_bad.yaml";
  {
    std::ofstream out(path);
    out << "server:\n  grpc_listn: x:1\n";
  }
  absl::StatusOr<Config> config = LoadConfigFile(path);
  EXPECT_EQ(config.status(), absl::InvalidArgumentError(path + ": server.grpc_listn: unknown key"));
}

// A stream of YAML documents (found by the config fuzzer: some inputs make
// yaml-cpp's LoadAll build documents until memory runs out) is refused
// after the 16th document, before any is loaded, naming the file.
TEST(ConfigTest, EndlessDocumentStreamsAreCappedNamingTheFile) {
  std::string many;
  for (int i = 0; i < 100000; ++i) many += "--- \n";
  absl::StatusOr<Config> config = ParseConfig(many);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(), HasSubstr("more than 16 YAML documents"));

  std::string path = ::testing::TempDir() + "/config_test_documents.yaml";
  {
    std::ofstream out(path);
    for (int i = 0; i < 17; ++i) out << "---\nserver: {}\n";
  }
  EXPECT_EQ(LoadConfigFile(path).status(),
            absl::InvalidArgumentError(
                path + ": config holds more than 16 YAML documents; expected one"));
  // Up to 16 are counted and refused as before.
  EXPECT_THAT(ParseConfig("---\na: 1\n---\nb: 2\n").status().message(),
              HasSubstr("config holds 2 YAML documents"));
}

// A grpc_listen beyond loopback needs TLS, auth or the explicit key.
TEST(ConfigTest, NonLoopbackListenNeedsTlsAuthOrExplicitKey) {
  Config config;
  config.server.grpc_listen = "0.0.0.0:50051";
  absl::Status st = ValidateConfig(config);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()),
              ::testing::HasSubstr("server.grpc_listen: \"0.0.0.0:50051\" is beyond loopback"));
  Config with_auth = config;
  with_auth.server.auth.tokens_file = "/etc/inferd/tokens";
  EXPECT_THAT(std::string(ValidateConfig(with_auth).message()),
              ::testing::HasSubstr("server.auth.tokens_file: needs server.tls when grpc_listen"));
  with_auth.server.tls.cert_file = "c.pem";
  with_auth.server.tls.key_file = "k.pem";
  EXPECT_TRUE(ValidateConfig(with_auth).ok());
  Config with_tls = config;
  with_tls.server.tls.cert_file = "c.pem";
  with_tls.server.tls.key_file = "k.pem";
  EXPECT_TRUE(ValidateConfig(with_tls).ok());
  Config allowed = config;
  allowed.server.allow_insecure_non_loopback = true;
  EXPECT_TRUE(ValidateConfig(allowed).ok());
  config.server.auth.tokens_file = "/etc/inferd/tokens";  // fine on loopback
  for (const char* local : {"127.0.0.1:0", "localhost:1", "[::1]:2"}) {
    config.server.grpc_listen = local;
    EXPECT_TRUE(ValidateConfig(config).ok()) << local;
  }
}

TEST(ConfigTest, TlsKeysGoTogether) {
  Config config;
  config.server.tls.cert_file = "c.pem";
  EXPECT_THAT(std::string(ValidateConfig(config).message()),
              ::testing::HasSubstr("server.tls.key_file: must be set together"));
  config.server.tls.cert_file = "";
  config.server.tls.client_ca_file = "ca.pem";
  EXPECT_THAT(std::string(ValidateConfig(config).message()),
              ::testing::HasSubstr("server.tls.client_ca_file: needs server.tls.cert_file"));
}

}  // namespace
}  // namespace inferd
