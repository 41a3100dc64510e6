// inferctl: the command-line client of inferd.
//
//   inferctl [--target=HOST:PORT] [--timeout=SECONDS] COMMAND [args]
//
// One file per command group (clients/inferctl/*_commands.cc); exit codes:
// 0 success, 1 an error from the daemon (or a task/transfer that failed),
// 2 bad arguments. docs/CLIENTS.md is the reference.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "clients/cpp/inferd_client.h"
#include "clients/inferctl/commands.h"

namespace inferd::inferctl {
namespace {

constexpr char kUsage[] =
    "usage: inferctl [--target=HOST:PORT] [--timeout=SECONDS] COMMAND [args]\n"
    "  health [--service=NAME]     exit 0 when the daemon reports SERVING\n"
    "  models                      list loaded models and their signatures\n"
    "  infer MODEL --input=NAME:DTYPE:SHAPE:VALUES [...] [--output=NAME] [--param=KEY=VALUE]\n"
    "        e.g. inferctl infer add --input=INPUT0:FP32:2:1,2 --input=INPUT1:FP32:2:3,4\n"
    "  bench MODEL --input=NAME:DTYPE:SHAPE[:VALUES] [...] [--concurrency=N | --rate=RPS]\n"
    "        [--warmup=S] [--duration=S] [--json]   load test (values default to zeros)\n"
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
    "Run a command without arguments for its own usage.\n";

int Main(int argc, char** argv) {
  ClientOptions options;
  int i = 1;
  for (; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (absl::ConsumePrefix(&a, "--target=")) {
      options.target = std::string(a);
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
    } else {
      break;
    }
  }
  if (i >= argc) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string command = argv[i];
  std::vector<std::string> args(argv + i + 1, argv + argc);
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
