// bench: closed-loop load at one concurrency or a sweep of them
// (--concurrency-range), or open-loop at a rate; per level the client's
// throughput, mean and percentiles, and the server's mean queue and compute
// time per request from the model's statistics (ModelStatistics before and
// after the level). Table, CSV or JSON.
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "clients/cpp/load_generator.h"
#include "clients/cpp/tensor_helpers.h"
#include "clients/inferctl/commands.h"

namespace inferd::inferctl {
namespace {

// START:END[:STEP] (STEP default 1) or a comma list "1,2,4,8".
std::optional<std::vector<int>> ParseLevels(absl::string_view text) {
  std::vector<int> levels;
  if (absl::StrContains(text, ',')) {
    for (absl::string_view part : absl::StrSplit(text, ',')) {
      int v = 0;
      if (!absl::SimpleAtoi(part, &v) || v < 1) return std::nullopt;
      levels.push_back(v);
    }
    return levels;
  }
  std::vector<absl::string_view> parts = absl::StrSplit(text, ':');
  int start = 0, end = 0, step = 1;
  if (parts.size() < 2 || parts.size() > 3 || !absl::SimpleAtoi(parts[0], &start) ||
      !absl::SimpleAtoi(parts[1], &end) || (parts.size() == 3 && !absl::SimpleAtoi(parts[2], &step)) ||
      start < 1 || end < start || step < 1 || (end - start) / step >= 1024) {
    return std::nullopt;
  }
  for (int v = start; v <= end; v += step) levels.push_back(v);
  return levels;
}

// Server-side figures of a model: successful requests and their queue and
// compute (input + infer + output) nanoseconds so far.
struct ServerFigures {
  uint64_t success = 0, queue_ns = 0, compute_ns = 0;
};

std::optional<ServerFigures> ReadServer(InferdClient& client, const std::string& model) {
  inference::ModelStatisticsRequest req;
  req.set_name(model);
  inference::ModelStatisticsResponse resp;
  absl::Status st = client.WithRetries([&](grpc::ClientContext* ctx) {
    return client.kserve().ModelStatistics(ctx, req, &resp);
  });
  if (!st.ok() || resp.model_stats_size() == 0) return std::nullopt;
  const auto& s = resp.model_stats(0).inference_stats();
  return ServerFigures{s.success().count(), s.queue().ns(),
                       s.compute_input().ns() + s.compute_infer().ns() + s.compute_output().ns()};
}

struct Level {
  int concurrency = 0;
  double rate = 0;
  LoadResult result;
  double server_queue_us = -1, server_compute_us = -1;  // -1: unknown
};

}  // namespace

int BenchCommand(const ClientOptions& client_options, const std::vector<std::string>& args) {
  if (args.empty()) {
    return UsageError("bench",
                      "needs a MODEL, e.g. inferctl bench identity --input=INPUT0:FP32:16");
  }
  LoadOptions o;
  o.target = client_options.target;
  o.client = client_options;
  o.request.set_model_name(args[0]);
  bool json = false, csv = false, concurrency_set = false;
  std::vector<int> levels;
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
      std::string* raw =
          o.request.mutable_raw_input_contents(o.request.raw_input_contents_size() - 1);
      if (raw->empty()) {
        int64_t n = 1;
        for (int64_t dim : in.shape()) n *= dim;
        std::optional<DataType> dt = ParseDataType(in.datatype());
        *raw = dt == DataType::kBytes ? EncodeBytesElements(std::vector<std::string>(n))
                                      : std::string(n * DataTypeSize(*dt), '\0');
      }
    } else if (absl::ConsumePrefix(&a, "--concurrency=")) {
      if (!absl::SimpleAtoi(a, &o.concurrency) || o.concurrency < 1) {
        return UsageError("bench", "--concurrency: must be an integer >= 1");
      }
      concurrency_set = true;
    } else if (absl::ConsumePrefix(&a, "--concurrency-range=")) {
      std::optional<std::vector<int>> parsed = ParseLevels(a);
      if (!parsed.has_value()) {
        return UsageError("bench",
                          absl::StrCat("--concurrency-range: '", a,
                                       "' is not START:END[:STEP] (1 <= START <= END) or a "
                                       "list N,N,... of integers >= 1"));
      }
      levels = *std::move(parsed);
    } else if (absl::ConsumePrefix(&a, "--rate=")) {
      if (!absl::SimpleAtod(a, &o.rate) || o.rate <= 0) {
        return UsageError("bench", "--rate: must be a positive number of requests/s");
      }
    } else if (absl::ConsumePrefix(&a, "--warmup=")) {
      if (!absl::SimpleAtod(a, &d) || d < 0) {
        return UsageError("bench", "--warmup: must be a number of seconds >= 0");
      }
      o.warmup = absl::Seconds(d);
    } else if (absl::ConsumePrefix(&a, "--duration=")) {
      if (!absl::SimpleAtod(a, &d) || d <= 0) {
        return UsageError("bench", "--duration: must be a positive number of seconds");
      }
      o.duration = absl::Seconds(d);
    } else if (a == "--json") {
      json = true;
    } else if (a == "--csv") {
      csv = true;
    } else {
      std::fprintf(stderr, "inferctl bench: unknown argument '%s'\n", args[i].c_str());
      return 2;
    }
  }
  if (json && csv) return UsageError("bench", "--json and --csv: choose one");
  if (!levels.empty() && concurrency_set) {
    return UsageError("bench", "--concurrency and --concurrency-range: choose one");
  }
  if (!levels.empty() && o.rate > 0) {
    return UsageError("bench", "--concurrency-range sweeps closed-loop levels; drop --rate");
  }
  // Open loop: the cap on calls in flight is 1024 unless --concurrency says.
  if (o.rate > 0 && !concurrency_set) o.concurrency = 1024;
  if (levels.empty()) levels.push_back(o.concurrency);

  InferdClient client(client_options);
  const bool tty = isatty(STDERR_FILENO) == 1;
  std::vector<Level> results;
  for (size_t i = 0; i < levels.size(); ++i) {
    o.concurrency = levels[i];
    if (tty) {
      std::fprintf(stderr, "\r\033[Klevel %zu/%zu: %s, %.1f s ...", i + 1, levels.size(),
                   o.rate > 0 ? absl::StrCat("rate ", o.rate, "/s").c_str()
                              : absl::StrCat("concurrency ", o.concurrency).c_str(),
                   absl::ToDoubleSeconds(o.warmup + o.duration));
      std::fflush(stderr);
    }
    Level level;
    level.concurrency = o.concurrency;
    level.rate = o.rate;
    std::optional<ServerFigures> before = ReadServer(client, args[0]);
    level.result = RunLoad(o);
    std::optional<ServerFigures> after = ReadServer(client, args[0]);
    // The server's figures cover warmup too: a mean per request.
    if (before && after && after->success > before->success) {
      const double n = static_cast<double>(after->success - before->success);
      level.server_queue_us = static_cast<double>(after->queue_ns - before->queue_ns) / n / 1e3;
      level.server_compute_us =
          static_cast<double>(after->compute_ns - before->compute_ns) / n / 1e3;
    }
    results.push_back(std::move(level));
  }
  if (tty) std::fprintf(stderr, "\r\033[K");

  auto mode = [](const Level& l) {
    return l.rate > 0 ? absl::StrCat("rate ", l.rate, "/s")
                      : absl::StrCat("concurrency ", l.concurrency);
  };
  auto server = [](double v) { return v < 0 ? std::string("") : absl::StrFormat("%.1f", v); };
  int failed = 0;
  std::vector<std::string> json_levels;
  if (csv) {
    std::printf("concurrency,rate,qps,mean_us,p50_us,p90_us,p99_us,max_us,server_queue_us,"
                "server_compute_us,ok,errors,dropped\n");
  } else if (!json) {
    std::printf("%-24s %10s %9s %9s %9s %9s %9s %10s %10s %8s\n", "model / mode", "req/s",
                "mean us", "p50 us", "p90 us", "p99 us", "max us", "srv queue", "srv comp",
                "errors");
  }
  for (const Level& l : results) {
    const LoadResult& r = l.result;
    if (r.errors != 0 || r.ok == 0) ++failed;
    if (csv) {
      std::printf("%d,%g,%.1f,%.1f,%.1f,%.1f,%.1f,%.1f,%s,%s,%llu,%llu,%llu\n", l.concurrency,
                  l.rate, r.qps, r.mean_us, r.p50_us, r.p90_us, r.p99_us, r.max_us,
                  server(l.server_queue_us).c_str(), server(l.server_compute_us).c_str(),
                  static_cast<unsigned long long>(r.ok), static_cast<unsigned long long>(r.errors),
                  static_cast<unsigned long long>(r.dropped));
    } else if (json) {
      json_levels.push_back(absl::StrCat(
          "{\"concurrency\":", l.concurrency, ",\"mode\":\"", mode(l), "\",\"result\":",
          LoadResultJson(r), ",\"server_queue_us\":",
          l.server_queue_us < 0 ? "null" : server(l.server_queue_us),
          ",\"server_compute_us\":",
          l.server_compute_us < 0 ? "null" : server(l.server_compute_us), "}"));
    } else {
      std::printf("%-24s %10.0f %9.1f %9.1f %9.1f %9.1f %9.1f %10s %10s %8llu\n",
                  absl::StrCat(args[0], " ", mode(l)).c_str(), r.qps, r.mean_us, r.p50_us,
                  r.p90_us, r.p99_us, r.max_us, server(l.server_queue_us).c_str(),
                  server(l.server_compute_us).c_str(), static_cast<unsigned long long>(r.errors));
      if (!r.first_error.empty()) std::printf("  first error: %s\n", r.first_error.c_str());
    }
  }
  if (json) {
    std::printf("{\"model\":\"%s\",\"levels\":[%s]}\n", args[0].c_str(),
                absl::StrJoin(json_levels, ",").c_str());
  }
  return failed == 0 ? 0 : 1;
}

}  // namespace inferd::inferctl
