// inferctl: the command-line client of inferd.
//
//   inferctl [--target=HOST:PORT] [--timeout=SECONDS] COMMAND [args]
//
// One file per command group (clients/inferctl/*_commands.cc); exit codes:
// 0 success, 1 an error from the daemon (or a task/transfer that failed),
// 2 bad arguments. docs/CLIENTS.md is the reference.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "clients/cpp/inferd_client.h"
#include "clients/inferctl/commands.h"

#ifndef INFERD_VERSION
#define INFERD_VERSION "0.0.0"
#endif

namespace inferd::inferctl {
namespace {

constexpr char kUsage[] =
    "usage: inferctl [--target=HOST:PORT] [--timeout=SECONDS] [--token=TOKEN] [--tls]\n"
    "                [--tls-ca=FILE] [--tls-cert=FILE --tls-key=FILE] [--tls-server-name=NAME]\n"
    "                COMMAND [args]\n"
    "  (--token defaults to $INFERD_TOKEN; any --tls* flag turns TLS on)\n"
    "  health [--service=NAME] [--json]   exit 0 when the daemon reports SERVING\n"
    "  models [--json]             list models and their signatures\n"
    "  models index [--json]       the repository index: every model, its state and reason\n"
    "  models load|unload MODEL [--json]   load or unload a repository model (role admin)\n"
    "  infer MODEL --input=NAME:DTYPE:SHAPE:VALUES [...] [--output=NAME] [--param=KEY=VALUE]\n"
    "        [--json]\n"
    "        e.g. inferctl infer add --input=INPUT0:FP32:2:1,2 --input=INPUT1:FP32:2:3,4\n"
    "  bench MODEL --input=NAME:DTYPE:SHAPE[:VALUES] [...] [--concurrency=N |\n"
    "        --concurrency-range=START:END[:STEP] | --concurrency-range=N,N,... | --rate=RPS]\n"
    "        [--warmup=S] [--duration=S] [--json | --csv]   load test (values default to\n"
    "        zeros): req/s, mean and percentiles, server queue and compute time per request\n"
    "  tensors alloc|upload|download|info|renew|free|list ...   tensors by handle\n"
    "        e.g. inferctl tensors upload FP32:2x2:1,2,3,4 --device=0\n"
    "  tasks submit|get|wait|cancel|watch|list ...               scheduler tasks\n"
    "        e.g. inferctl tasks submit add --input=INPUT0:FP32:2:1,2 --input=INPUT1:FP32:2:3,4 "
    "--wait\n"
    "  transfer TENSOR_ID --to=N|host [--priority=P] [--move] | get|wait TRANSFER_ID\n"
    "  collective allreduce|broadcast|allgather|reducescatter TENSOR_ID ... [--op=sum]\n"
    "  stats memory|scheduler|comm|scaling [--json]   one engine's statistics\n"
    "  stats models [--model=NAME] [--json]          per-model inference statistics\n"
    "  report [--json]             devices, memory, scaling (and more) in one view\n"
    "  version                     inferctl's version (also --version)\n"
    "Every command and subcommand takes --help (-h): its usage, and nothing is run.\n";

// The lines of kUsage about `command` (with their continuation lines).
std::string CommandUsage(const std::string& command) {
  std::string out;
  bool in = false;
  for (absl::string_view line : absl::StrSplit(kUsage, '\n')) {
    if (absl::StartsWith(line, "  ") && !absl::StartsWith(line, "        ")) {
      in = absl::StartsWith(line, absl::StrCat("  ", command, " ")) ||
           line == absl::StrCat("  ", command);
    } else if (!absl::StartsWith(line, "        ")) {
      in = false;
    }
    if (in) absl::StrAppend(&out, line, "\n");
  }
  return out;
}

int Main(int argc, char** argv) {
  ClientOptions options;
  if (const char* token = std::getenv("INFERD_TOKEN"); token != nullptr) options.token = token;
  int i = 1;
  for (; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (absl::ConsumePrefix(&a, "--target=")) {
      options.target = std::string(a);
    } else if (absl::ConsumePrefix(&a, "--token=")) {
      options.token = std::string(a);
    } else if (a == "--tls") {
      options.tls = true;
    } else if (absl::ConsumePrefix(&a, "--tls-ca=")) {
      options.tls_ca = std::string(a);
    } else if (absl::ConsumePrefix(&a, "--tls-cert=")) {
      options.tls_cert = std::string(a);
    } else if (absl::ConsumePrefix(&a, "--tls-key=")) {
      options.tls_key = std::string(a);
    } else if (absl::ConsumePrefix(&a, "--tls-server-name=")) {
      options.tls_server_name = std::string(a);
    } else if (absl::ConsumePrefix(&a, "--timeout=")) {
      double s;
      if (!absl::SimpleAtod(a, &s) || s <= 0) {
        std::fprintf(stderr, "inferctl: --timeout must be a positive number of seconds\n");
        return 2;
      }
      options.timeout = absl::Seconds(s);
    } else if (a == "--help" || a == "-h" || a == "help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--version") {
      std::printf("inferctl %s\n", INFERD_VERSION);
      return 0;
    } else {
      break;
    }
  }
  if (i >= argc) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  {
    grpc::ChannelArguments unused;
    if (auto creds = ChannelCredentialsFor(options, &unused); !creds.ok()) {
      std::fprintf(stderr, "inferctl: --tls-*: %s\n", std::string(creds.status().message()).c_str());
      return 2;
    }
  }
  const std::string command = argv[i];
  std::vector<std::string> args(argv + i + 1, argv + argc);
  if (command == "version") {
    std::printf("inferctl %s\n", INFERD_VERSION);
    return 0;
  }
  // --help anywhere after the command: that command's usage, nothing run.
  for (const std::string& a : args) {
    if (a != "--help" && a != "-h") continue;
    const std::string usage = CommandUsage(command);
    if (usage.empty()) break;  // unknown command: reported below
    std::printf("usage: inferctl [global flags] %s\n%s", command.c_str(), usage.c_str());
    return 0;
  }
  InferdClient client(options);
  if (command == "health") return HealthCommand(client, args);
  if (command == "models") return ModelsCommand(client, args);
  if (command == "infer") return InferCommand(client, args);
  if (command == "bench") return BenchCommand(options, args);
  if (command == "tensors") return TensorsCommand(client, args);
  if (command == "tasks") return TasksCommand(client, args);
  if (command == "transfer") return TransferCommand(client, args);
  if (command == "collective") return CollectiveCommand(client, args);
  if (command == "stats") return StatsCommand(client, args);
  if (command == "report") return ReportCommand(client, args);
  std::fprintf(stderr, "inferctl: unknown command '%s'\n%s", command.c_str(), kUsage);
  return 2;
}

}  // namespace
}  // namespace inferd::inferctl

int main(int argc, char** argv) { return inferd::inferctl::Main(argc, argv); }
