// The metric exporters without a daemon: GPU power and energy series from
// the device collector (skipped where a device has no reading), gRPC
// per-method series created on a method's first call, and the per-model
// pending gauge.
#include <memory>
#include <string>
#include <vector>

#include "core/device/host_device.h"
#include "core/models/model.h"
#include "core/models/model_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "server/device_collector.h"
#include "server/grpc_metrics.h"
#include "server/model_collector.h"

namespace inferd {
namespace {

// A host device that reports power and energy, as a GPU with NVML does.
class PoweredDevice final : public Device {
 public:
  explicit PoweredDevice(int index) : inner_(HostDeviceOptions{.index = index, .ordinal = index}) {}
  const DeviceInfo& info() const override { return inner_.info(); }
  absl::StatusOr<MemoryInfo> GetMemoryInfo() override { return inner_.GetMemoryInfo(); }
  absl::StatusOr<double> GetUtilization() override { return 0.5; }
  absl::StatusOr<double> GetPowerWatts() override { return 250.5; }
  absl::StatusOr<double> GetEnergyJoules() override { return 1000.0; }
  absl::StatusOr<void*> AllocateRaw(size_t bytes) override { return inner_.AllocateRaw(bytes); }
  void FreeRaw(void* ptr) override { inner_.FreeRaw(ptr); }
  absl::StatusOr<void*> AllocatePinnedHost(size_t bytes) override {
    return inner_.AllocatePinnedHost(bytes);
  }
  void FreePinnedHost(void* ptr) override { inner_.FreePinnedHost(ptr); }
  int num_streams() const override { return inner_.num_streams(); }
  Stream& stream(int i) override { return inner_.stream(i); }
  std::unique_ptr<Event> CreateEvent() override { return inner_.CreateEvent(); }
  Kernels& kernels() override { return inner_.kernels(); }
  bool CanAccessPeer(const Device& other) const override { return &other == this; }
  absl::Status Synchronize() override { return inner_.Synchronize(); }

 private:
  HostDevice inner_;
};

const prometheus::MetricFamily* FindFamily(const std::vector<prometheus::MetricFamily>& families,
                                           const std::string& name) {
  for (const auto& f : families) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

std::string Label(const prometheus::ClientMetric& m, const std::string& name) {
  for (const auto& l : m.label) {
    if (l.name == name) return l.value;
  }
  return "";
}

TEST(DeviceCollectorTest, GpuPowerAndEnergyOnlyWhereADeviceHasThem) {
  HostDevice host(HostDeviceOptions{.index = 0});
  {
    DeviceCollector collector({&host}, false);
    auto families = collector.Collect();
    EXPECT_NE(FindFamily(families, "inferd_device_memory_total_bytes"), nullptr);
    EXPECT_EQ(FindFamily(families, "inferd_gpu_power_watts"), nullptr);
    EXPECT_EQ(FindFamily(families, "inferd_gpu_energy_joules_total"), nullptr);
  }
  PoweredDevice gpu(1);
  DeviceCollector collector({&host, &gpu}, true);
  auto families = collector.Collect();
  const prometheus::MetricFamily* power = FindFamily(families, "inferd_gpu_power_watts");
  ASSERT_NE(power, nullptr);
  EXPECT_EQ(power->type, prometheus::MetricType::Gauge);
  ASSERT_EQ(power->metric.size(), 1u);  // the host device has no reading
  EXPECT_EQ(Label(power->metric[0], "device"), "1");
  EXPECT_DOUBLE_EQ(power->metric[0].gauge.value, 250.5);
  const prometheus::MetricFamily* energy = FindFamily(families, "inferd_gpu_energy_joules_total");
  ASSERT_NE(energy, nullptr);
  EXPECT_EQ(energy->type, prometheus::MetricType::Counter);
  ASSERT_EQ(energy->metric.size(), 1u);
  EXPECT_DOUBLE_EQ(energy->metric[0].counter.value, 1000.0);
}

// Series lines a registry serves for `name` (a histogram's buckets, sum
// and count included).
size_t SeriesLines(prometheus::Registry& registry, const std::string& name) {
  size_t n = 0;
  for (const auto& f : registry.Collect()) {
    if (f.name != name) continue;
    for (const auto& m : f.metric) {
      n += f.type == prometheus::MetricType::Histogram ? m.histogram.bucket.size() + 2 : 1;
    }
  }
  return n;
}

TEST(GrpcMetricsTest, AMethodsSeriesAppearOnItsFirstCall) {
  prometheus::Registry registry;
  GrpcMetrics metrics(registry);
  MethodMetrics* infer = metrics.ForMethod("inference.GRPCInferenceService/ModelInfer");
  MethodMetrics* live = metrics.ForMethod("inference.GRPCInferenceService/ServerLive");
  EXPECT_EQ(metrics.ForMethod("inference.GRPCInferenceService/ModelInfer"), infer);
  EXPECT_EQ(SeriesLines(registry, "inferd_grpc_request_duration_seconds"), 0u);
  EXPECT_EQ(SeriesLines(registry, "inferd_grpc_requests_total"), 0u);

  infer->Record(grpc::StatusCode::OK, absl::Milliseconds(2));
  infer->Record(grpc::StatusCode::OK, absl::Milliseconds(3));
  EXPECT_EQ(SeriesLines(registry, "inferd_grpc_request_duration_seconds"), 16u);  // 13 + Inf, sum, count
  EXPECT_EQ(SeriesLines(registry, "inferd_grpc_requests_total"), 1u);
  infer->Record(grpc::StatusCode::NOT_FOUND, absl::Milliseconds(1));
  live->Record(static_cast<grpc::StatusCode>(99), absl::Milliseconds(1));
  EXPECT_EQ(SeriesLines(registry, "inferd_grpc_request_duration_seconds"), 32u);
  EXPECT_EQ(SeriesLines(registry, "inferd_grpc_requests_total"), 3u);
  for (const auto& f : registry.Collect()) {
    if (f.name != "inferd_grpc_requests_total") continue;
    for (const auto& m : f.metric) {
      const std::string code = Label(m, "code");
      const std::string method = Label(m, "method");
      if (method == "inference.GRPCInferenceService/ServerLive") {
        EXPECT_EQ(code, "UNKNOWN");  // out of range
      } else if (code == "OK") {
        EXPECT_DOUBLE_EQ(m.counter.value, 2);
      } else {
        EXPECT_EQ(code, "NOT_FOUND");
        EXPECT_DOUBLE_EQ(m.counter.value, 1);
      }
    }
  }
}

TEST(ModelCollectorTest, PendingRequestsPerLoadedModel) {
  ModelRegistry models;
  for (auto& m : BuiltinModels()) models.Add(std::move(m));
  std::shared_ptr<const Model> add = *models.Find("add");
  add->statistics().AddPending(3);
  add->statistics().AddPending(-1);
  ModelCollector collector(&models);
  auto families = collector.Collect();
  const prometheus::MetricFamily* pending = FindFamily(families, "inferd_model_pending_requests");
  ASSERT_NE(pending, nullptr);
  EXPECT_EQ(pending->type, prometheus::MetricType::Gauge);
  ASSERT_EQ(pending->metric.size(), 3u);  // identity, add, scale
  for (const auto& m : pending->metric) {
    EXPECT_EQ(Label(m, "version"), "1");
    EXPECT_DOUBLE_EQ(m.gauge.value, Label(m, "model") == "add" ? 2.0 : 0.0) << Label(m, "model");
  }
  ASSERT_TRUE(models.Remove("add").ok());
  families = collector.Collect();
  EXPECT_EQ(FindFamily(families, "inferd_model_pending_requests")->metric.size(), 2u);
}

}  // namespace
}  // namespace inferd
