#include "server/model_collector.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <string>
#include <utility>

#include "core/models/model_statistics.h"
#include "prometheus/client_metric.h"
#include "prometheus/metric_family.h"

namespace inferd {
namespace {

prometheus::MetricFamily Family(const char* name, const char* help, prometheus::MetricType t) {
  prometheus::MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = t;
  return f;
}

prometheus::ClientMetric Labeled(const Model& m) {
  prometheus::ClientMetric c;
  c.label.push_back({"model", m.signature().name});
  c.label.push_back({"version", m.signature().version});
  return c;
}

void AddCounter(prometheus::MetricFamily& f, prometheus::ClientMetric c, double value) {
  c.counter.value = value;
  f.metric.push_back(std::move(c));
}

double Seconds(uint64_t ns) { return static_cast<double>(ns) * 1e-9; }

// Process figures from /proc/self (Linux); families left out when unreadable.
void AddProcess(std::vector<prometheus::MetricFamily>* out) {
  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return;
  std::istringstream fields(stat.substr(close + 2));
  // From field 3 (state) on: utime is field 14, stime 15, starttime 22,
  // vsize 23, rss 24 (proc(5)).
  std::vector<std::string> f;
  for (std::string v; fields >> v;) f.push_back(v);
  if (f.size() < 22) return;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  const double cpu = (std::stod(f[11]) + std::stod(f[12])) / ticks;
  double boot_time = 0;
  std::ifstream kernel("/proc/stat");
  for (std::string line; std::getline(kernel, line);) {
    if (line.rfind("btime ", 0) == 0) boot_time = std::stod(line.substr(6));
  }
  auto gauge = [&](const char* name, const char* help, double v) {
    auto fam = Family(name, help, prometheus::MetricType::Gauge);
    prometheus::ClientMetric c;
    c.gauge.value = v;
    fam.metric.push_back(std::move(c));
    out->push_back(std::move(fam));
  };
  auto cpu_family = Family("process_cpu_seconds_total", "User and system CPU time of the daemon.",
                           prometheus::MetricType::Counter);
  AddCounter(cpu_family, {}, cpu);
  out->push_back(std::move(cpu_family));
  gauge("process_resident_memory_bytes", "Resident memory of the daemon.",
        std::stod(f[21]) * page);
  gauge("process_virtual_memory_bytes", "Virtual memory of the daemon.", std::stod(f[20]));
  gauge("process_start_time_seconds", "Start time of the daemon, seconds since the Unix epoch.",
        boot_time + std::stod(f[19]) / ticks);
  int fds = 0;
  if (DIR* d = opendir("/proc/self/fd"); d != nullptr) {
    while (readdir(d) != nullptr) ++fds;
    closedir(d);
    gauge("process_open_fds", "Open file descriptors of the daemon.", fds - 2);  // . and ..
  }
}

}  // namespace

std::vector<prometheus::MetricFamily> ModelCollector::Collect() const {
  using prometheus::MetricType;
  auto requests = Family("inferd_model_requests_total",
                         "Inference requests of a loaded model by outcome (success, failure).",
                         MetricType::Counter);
  auto duration = Family("inferd_model_request_duration_seconds",
                         "Request duration of a loaded model, arrival to completion.",
                         MetricType::Histogram);
  auto queue = Family("inferd_model_queue_seconds_total",
                      "Time successful requests waited before running.", MetricType::Counter);
  auto input = Family("inferd_model_compute_input_seconds_total",
                      "Time successful requests spent copying inputs to the device.",
                      MetricType::Counter);
  auto infer = Family("inferd_model_compute_infer_seconds_total",
                      "Time successful requests spent running the model.", MetricType::Counter);
  auto output = Family("inferd_model_compute_output_seconds_total",
                       "Time successful requests spent copying outputs back.",
                       MetricType::Counter);
  auto inferences = Family("inferd_model_inferences_total",
                           "Inferences (batch rows) of successful requests.", MetricType::Counter);
  auto executions = Family("inferd_model_executions_total",
                           "Model executions (a batch of requests runs once).",
                           MetricType::Counter);
  auto pending = Family("inferd_model_pending_requests",
                        "Requests of a loaded model the scheduler holds now, queued or running.",
                        MetricType::Gauge);
  for (const auto& model : models_->List()) {
    const ModelStatisticsSnapshot s = model->statistics().Snapshot();
    prometheus::ClientMetric base = Labeled(*model);
    prometheus::ClientMetric ok = base, failed = base;
    ok.label.push_back({"outcome", "success"});
    failed.label.push_back({"outcome", "failure"});
    AddCounter(requests, ok, static_cast<double>(s.success.count));
    AddCounter(requests, failed, static_cast<double>(s.fail.count));
    prometheus::ClientMetric h = base;
    uint64_t cumulative = 0;
    for (size_t i = 0; i < s.request_duration_buckets.size(); ++i) {
      cumulative += s.request_duration_buckets[i];
      prometheus::ClientMetric::Bucket b;
      b.cumulative_count = cumulative;
      b.upper_bound = i < kRequestDurationBounds.size()
                          ? kRequestDurationBounds[i]
                          : std::numeric_limits<double>::infinity();
      h.histogram.bucket.push_back(b);
    }
    h.histogram.sample_count = cumulative;
    h.histogram.sample_sum = Seconds(s.success.ns + s.fail.ns);
    duration.metric.push_back(std::move(h));
    AddCounter(queue, base, Seconds(s.queue.ns));
    AddCounter(input, base, Seconds(s.compute_input.ns));
    AddCounter(infer, base, Seconds(s.compute_infer.ns));
    AddCounter(output, base, Seconds(s.compute_output.ns));
    AddCounter(inferences, base, static_cast<double>(s.inference_count));
    AddCounter(executions, base, static_cast<double>(s.execution_count));
    prometheus::ClientMetric g = base;
    g.gauge.value = static_cast<double>(model->statistics().pending());
    pending.metric.push_back(std::move(g));
  }
  std::vector<prometheus::MetricFamily> out;
  for (auto* f : {&requests, &duration, &queue, &input, &infer, &output, &inferences,
                  &executions, &pending}) {
    if (!f->metric.empty()) out.push_back(std::move(*f));
  }
  AddProcess(&out);
  return out;
}

}  // namespace inferd
