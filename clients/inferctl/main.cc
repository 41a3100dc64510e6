// inferctl: the command-line client of inferd.
//
//   inferctl [--target=HOST:PORT] [--timeout=SECONDS] COMMAND [args]
//     health [--service=NAME]        exit 0 when SERVING
//     models                         list models, with their inputs/outputs
//     infer MODEL --input=NAME:DTYPE:SHAPE:VALUES ... [--output=NAME] [--param=KEY=VALUE]
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "clients/cpp/inferd_client.h"
#include "clients/cpp/load_generator.h"
#include "google/protobuf/util/json_util.h"
#include "inferd/v1/report.grpc.pb.h"
#include "clients/cpp/tensor_helpers.h"

namespace inferd {
namespace {

constexpr char kUsage[] =
    "usage: inferctl [--target=HOST:PORT] [--timeout=SECONDS] COMMAND [args]\n"
    "  health [--service=NAME]     exit 0 when the daemon reports SERVING\n"
    "  models                      list loaded models and their signatures\n"
    "  infer MODEL --input=NAME:DTYPE:SHAPE:VALUES [...] [--output=NAME] [--param=KEY=VALUE]\n"
    "        e.g. inferctl infer add --input=INPUT0:FP32:2:1,2 --input=INPUT1:FP32:2:3,4\n"
    "  bench MODEL --input=NAME:DTYPE:SHAPE[:VALUES] [...] [--concurrency=N | --rate=RPS]\n"
    "        [--warmup=S] [--duration=S] [--json]   load test (values default to zeros)\n"
    "  report [--json]             devices, memory, scaling (and more) in one view\n";

int Fail(const absl::Status& st) {
  std::fprintf(stderr, "inferctl: %s: %s\n", absl::StatusCodeToString(st.code()).c_str(),
               std::string(st.message()).c_str());
  return 1;
}

int Health(InferdClient& client, const std::vector<std::string>& args) {
  std::string service = "inferd";
  for (absl::string_view a : args) {
    if (absl::ConsumePrefix(&a, "--service=")) service = std::string(a);
    else {
      std::fprintf(stderr, "inferctl health: unknown argument '%s'\n", std::string(a).c_str());
      return 2;
    }
  }
  absl::StatusOr<bool> serving = client.Health(service);
  if (!serving.ok()) return Fail(serving.status());
  std::printf("%s\n", *serving ? "SERVING" : "NOT_SERVING");
  return *serving ? 0 : 1;
}

int Models(InferdClient& client) {
  auto index = client.ListModels();
  if (!index.ok()) return Fail(index.status());
  for (const auto& m : index->models()) {
    auto meta = client.ModelMetadata(m.name());
    std::string sig;
    if (meta.ok()) {
      auto fmt = [](const auto& tensors) {
        std::vector<std::string> parts;
        for (const auto& t : tensors) {
          parts.push_back(absl::StrCat(t.name(), ":", t.datatype(), "[",
                                       absl::StrJoin(t.shape(), ","), "]"));
        }
        return absl::StrJoin(parts, " ");
      };
      sig = absl::StrCat(meta->platform(), "  in: ", fmt(meta->inputs()),
                         "  out: ", fmt(meta->outputs()));
    }
    std::printf("%-16s v%-4s %-8s %s\n", m.name().c_str(), m.version().c_str(), m.state().c_str(),
                sig.c_str());
  }
  return 0;
}

int Infer(InferdClient& client, const std::vector<std::string>& args) {
  if (args.empty()) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  inference::ModelInferRequest req;
  req.set_model_name(args[0]);
  for (size_t i = 1; i < args.size(); ++i) {
    absl::string_view a = args[i];
    if (absl::ConsumePrefix(&a, "--input=")) {
      if (absl::Status st = AddInputSpec(a, &req); !st.ok()) {
        std::fprintf(stderr, "inferctl: %s\n", std::string(st.message()).c_str());
        return 2;
      }
    } else if (absl::ConsumePrefix(&a, "--output=")) {
      req.add_outputs()->set_name(std::string(a));
    } else if (absl::ConsumePrefix(&a, "--param=")) {
      const size_t eq = a.find('=');
      if (eq == absl::string_view::npos) {
        std::fprintf(stderr, "inferctl: --param needs KEY=VALUE\n");
        return 2;
      }
      inference::InferParameter p;
      absl::string_view v = a.substr(eq + 1);
      int64_t iv;
      double dv;
      if (absl::SimpleAtoi(v, &iv)) p.set_int64_param(iv);
      else if (absl::SimpleAtod(v, &dv)) p.set_double_param(dv);
      else if (v == "true" || v == "false") p.set_bool_param(v == "true");
      else p.set_string_param(std::string(v));
      (*req.mutable_parameters())[std::string(a.substr(0, eq))] = p;
    } else {
      std::fprintf(stderr, "inferctl infer: unknown argument '%s'\n", args[i].c_str());
      return 2;
    }
  }
  auto resp = client.Infer(req);
  if (!resp.ok()) return Fail(resp.status());
  for (int i = 0; i < resp->outputs_size(); ++i) {
    const auto& out = resp->outputs(i);
    std::optional<DataType> dt = ParseDataType(out.datatype());
    const std::string values = (dt && i < resp->raw_output_contents_size())
                                   ? FormatValues(*dt, resp->raw_output_contents(i))
                                   : std::string("?");
    std::printf("%s %s [%s]: %s\n", out.name().c_str(), out.datatype().c_str(),
                absl::StrJoin(out.shape(), ",").c_str(), values.c_str());
  }
  return 0;
}

int Bench(const ClientOptions& client_options, const std::vector<std::string>& args) {
  if (args.empty()) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  LoadOptions o;
  o.target = client_options.target;
  o.request.set_model_name(args[0]);
  bool json = false;
  for (size_t i = 1; i < args.size(); ++i) {
    absl::string_view a = args[i];
    double d = 0;
    if (absl::ConsumePrefix(&a, "--input=")) {
      // NAME:DTYPE:SHAPE with no values means zeros of the right size.
      std::string spec(a);
      if (std::count(spec.begin(), spec.end(), ':') == 2) spec += ":";
      if (absl::Status st = AddInputSpec(spec, &o.request); !st.ok()) {
        std::fprintf(stderr, "inferctl: %s\n", std::string(st.message()).c_str());
        return 2;
      }
      const auto& in = o.request.inputs(o.request.inputs_size() - 1);
      std::string* raw = o.request.mutable_raw_input_contents(o.request.raw_input_contents_size() - 1);
      if (raw->empty()) {
        int64_t n = 1;
        for (int64_t dim : in.shape()) n *= dim;
        std::optional<DataType> dt = ParseDataType(in.datatype());
        *raw = dt == DataType::kBytes ? EncodeBytesElements(std::vector<std::string>(n))
                                      : std::string(n * DataTypeSize(*dt), '\0');
      }
    } else if (absl::ConsumePrefix(&a, "--concurrency=")) {
      if (!absl::SimpleAtoi(a, &o.concurrency) || o.concurrency < 1) return 2;
    } else if (absl::ConsumePrefix(&a, "--rate=")) {
      if (!absl::SimpleAtod(a, &o.rate) || o.rate <= 0) return 2;
    } else if (absl::ConsumePrefix(&a, "--warmup=")) {
      if (!absl::SimpleAtod(a, &d) || d < 0) return 2;
      o.warmup = absl::Seconds(d);
    } else if (absl::ConsumePrefix(&a, "--duration=")) {
      if (!absl::SimpleAtod(a, &d) || d <= 0) return 2;
      o.duration = absl::Seconds(d);
    } else if (a == "--json") {
      json = true;
    } else {
      std::fprintf(stderr, "inferctl bench: unknown argument '%s'\n", args[i].c_str());
      return 2;
    }
  }
  if (o.rate > 0 && o.concurrency == 8) o.concurrency = 1024;  // cap for open loop
  LoadResult r = RunLoad(o);
  const std::string mode =
      o.rate > 0 ? absl::StrCat("rate ", o.rate, "/s") : absl::StrCat("concurrency ", o.concurrency);
  if (json) {
    std::printf("{\"model\":\"%s\",\"mode\":\"%s\",\"result\":%s}\n", args[0].c_str(),
                mode.c_str(), LoadResultJson(r).c_str());
  } else {
    std::printf("%-24s %10s %9s %9s %9s %9s %8s\n", "model / mode", "req/s", "p50 us", "p90 us",
                "p99 us", "max us", "errors");
    std::printf("%s\n", FormatLoadResultRow(args[0] + " " + mode, r).c_str());
    if (!r.first_error.empty()) std::printf("first error: %s\n", r.first_error.c_str());
  }
  return r.errors == 0 && r.ok > 0 ? 0 : 1;
}

std::string Mib(uint64_t bytes) { return absl::StrFormat("%.1f MiB", bytes / 1048576.0); }

int Report(InferdClient& client, const std::vector<std::string>& args) {
  bool json = false;
  for (const auto& a : args) {
    if (a == "--json") json = true;
    else {
      std::fprintf(stderr, "inferctl report: unknown argument '%s'\n", a.c_str());
      return 2;
    }
  }
  auto stub = v1::Report::NewStub(client.channel());
  v1::PerformanceReport report;
  absl::Status st = client.WithRetries([&](grpc::ClientContext* ctx) {
    return stub->GetPerformanceReport(ctx, {}, &report);
  });
  if (!st.ok()) return Fail(st);
  if (json) {
    std::string out;
    google::protobuf::util::JsonPrintOptions o;
    o.add_whitespace = true;
    o.preserve_proto_field_names = true;
    o.always_print_primitive_fields = true;
    (void)google::protobuf::util::MessageToJsonString(report, &out, o);
    std::printf("%s\n", out.c_str());
    return 0;
  }
  std::printf("inferd %s report\n\nDEVICES\n", report.version().c_str());
  std::printf("%-4s %-6s %-28s %12s %12s %6s %-8s %-7s\n", "dev", "kind", "name", "mem total",
              "mem free", "util", "health", "active");
  for (const auto& d : report.devices()) {
    std::printf("%-4d %-6s %-28s %12s %12s %6s %-8s %-7s\n", d.device(), d.kind().c_str(),
                d.name().substr(0, 28).c_str(), Mib(d.memory_total_bytes()).c_str(),
                Mib(d.memory_free_bytes()).c_str(),
                d.utilization() < 0 ? "n/a" : absl::StrFormat("%.0f%%", d.utilization() * 100).c_str(),
                d.healthy() ? "healthy" : "FAULTY", d.active() ? "yes" : "no");
    for (const auto& f : d.fault_events()) std::printf("       fault: %s\n", f.c_str());
  }
  std::printf("\nMEMORY\n%-4s %12s %12s %12s %8s %8s %8s %8s\n", "dev", "reserved", "allocated",
              "largest free", "tensors", "frag", "gc runs", "compacts");
  for (const auto& m : report.memory().devices()) {
    std::printf("%-4d %12s %12s %12s %8lu %8.3f %8lu %8lu\n", m.device(),
                Mib(m.reserved_bytes()).c_str(), Mib(m.allocated_bytes()).c_str(),
                Mib(m.largest_free_block_bytes()).c_str(),
                static_cast<unsigned long>(m.active_tensors()), m.fragmentation(),
                static_cast<unsigned long>(m.gc_runs()), static_cast<unsigned long>(m.compactions()));
  }
  const auto& sc = report.scaling();
  std::printf("\nSCALING\nenabled %s, active devices [%s], desired replicas %d (demand %.2f)\n",
              sc.enabled() ? "yes" : "no", absl::StrJoin(sc.active_devices(), ",").c_str(),
              sc.desired_replicas(), sc.replica_demand());
  if (sc.has_last_decision()) std::printf("last decision: %s\n", sc.last_decision().reason().c_str());
  return 0;
}

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
    } else if (a == "--help" || a == "-h") {
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
  if (command == "health") return Health(client, args);
  if (command == "models") return Models(client);
  if (command == "infer") return Infer(client, args);
  if (command == "bench") return Bench(options, args);
  if (command == "report") return Report(client, args);
  std::fprintf(stderr, "inferctl: unknown command '%s'\n%s", command.c_str(), kUsage);
  return 2;
}

}  // namespace
}  // namespace inferd

int main(int argc, char** argv) { return inferd::Main(argc, argv); }
