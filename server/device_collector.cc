#include "server/device_collector.h"

#include <string>

#include "prometheus/client_metric.h"
#include "prometheus/metric_family.h"
#include "core/util/version.h"

namespace inferd {
namespace {

prometheus::MetricFamily Gauge(const char* name, const char* help) {
  prometheus::MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = prometheus::MetricType::Gauge;
  return f;
}

void Add(prometheus::MetricFamily& f, const Device& d, double value) {
  prometheus::ClientMetric m;
  m.label.push_back({"device", std::to_string(d.index())});
  m.label.push_back({"kind", DeviceKindName(d.info().kind)});
  m.gauge.value = value;
  f.metric.push_back(std::move(m));
}

}  // namespace

DeviceCollector::DeviceCollector(std::vector<Device*> devices, bool built_with_cuda)
    : devices_(std::move(devices)), built_with_cuda_(built_with_cuda) {}

std::vector<prometheus::MetricFamily> DeviceCollector::Collect() const {
  auto build = Gauge("inferd_build_info", "Always 1; labels give the inferd version and build.");
  prometheus::ClientMetric b;
  b.label.push_back({"cuda", built_with_cuda_ ? "true" : "false"});
  b.label.push_back({"version", kVersion});
  b.gauge.value = 1;
  build.metric.push_back(b);

  auto total = Gauge("inferd_device_memory_total_bytes", "Device memory capacity.");
  auto used = Gauge("inferd_device_memory_used_bytes",
                    "Device memory in use as the driver reports it (all processes).");
  auto util = Gauge("inferd_device_utilization_ratio",
                    "Recent fraction of time the device was busy (0..1).");
  auto power = Gauge("inferd_gpu_power_watts", "Board power draw of the GPU (NVML).");
  prometheus::MetricFamily energy;
  energy.name = "inferd_gpu_energy_joules_total";
  energy.help = "Energy the GPU used since its driver was loaded (NVML).";
  energy.type = prometheus::MetricType::Counter;
  for (Device* d : devices_) {
    if (auto mem = d->GetMemoryInfo(); mem.ok()) {
      Add(total, *d, static_cast<double>(mem->total_bytes));
      Add(used, *d, static_cast<double>(mem->total_bytes - mem->free_bytes));
    }
    if (auto u = d->GetUtilization(); u.ok()) Add(util, *d, *u);
    if (auto w = d->GetPowerWatts(); w.ok()) Add(power, *d, *w);
    if (auto j = d->GetEnergyJoules(); j.ok()) {
      Add(energy, *d, 0);
      energy.metric.back().counter.value = *j;
    }
  }
  std::vector<prometheus::MetricFamily> out;
  out.push_back(std::move(build));
  out.push_back(std::move(total));
  out.push_back(std::move(used));
  // Families without a reading on any device are left out.
  for (auto* f : {&util, &power, &energy}) {
    if (!f->metric.empty()) out.push_back(std::move(*f));
  }
  return out;
}

}  // namespace inferd
