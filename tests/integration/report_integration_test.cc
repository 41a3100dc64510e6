// GetPerformanceReport and `inferctl report` against the real daemon after
// some traffic.
#include <csignal>

#include "absl/strings/match.h"
#include "clients/cpp/inferd_client.h"
#include "clients/cpp/tensor_helpers.h"
#include "gtest/gtest.h"
#include "inferd/v1/memory.grpc.pb.h"
#include "inferd/v1/report.grpc.pb.h"
#include "tests/integration/daemon_process.h"

namespace inferd {
namespace {

TEST(ReportIntegrationTest, ReportReflectsTrafficAndInferctlPrintsIt) {
  testing::DaemonProcess d(testing::DeviceArgs(2));
  ASSERT_TRUE(d.started()) << d.Stderr();
  ClientOptions o;
  o.target = d.target();
  InferdClient client(o);

  // Traffic: a few inferences and two tensors.
  inference::ModelInferRequest req;
  req.set_model_name("scale");
  AddRawInput(&req, "INPUT0", DataType::kFp32, {4}, ToBytes<float>({1, 2, 3, 4}));
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(client.Infer(req).ok());
  auto memory = v1::Memory::NewStub(client.channel());
  auto stub = v1::Report::NewStub(client.channel());
  int num_devices = 0;
  {
    grpc::ClientContext ctx;
    v1::PerformanceReport first;
    ASSERT_TRUE(stub->GetPerformanceReport(&ctx, {}, &first).ok());
    num_devices = first.devices_size();  // 2 host devices, or the GPUs found
  }
  ASSERT_GE(num_devices, 1);
  for (int dev = 0; dev < num_devices; ++dev) {
    grpc::ClientContext ctx;
    v1::AllocateTensorRequest a;
    a.set_device(dev);
    a.set_datatype("FP32");
    a.add_shape(1 << 20);
    v1::TensorInfo info;
    ASSERT_TRUE(memory->AllocateTensor(&ctx, a, &info).ok());
  }

  grpc::ClientContext ctx;
  v1::PerformanceReport report;
  ASSERT_TRUE(stub->GetPerformanceReport(&ctx, {}, &report).ok());
  ASSERT_EQ(report.devices_size(), num_devices);
  for (const auto& dev : report.devices()) {
    EXPECT_GT(dev.memory_total_bytes(), 0u);
    EXPECT_TRUE(dev.healthy());
    EXPECT_TRUE(dev.active());
  }
  ASSERT_EQ(report.memory().devices_size(), report.devices_size());
  for (const auto& m : report.memory().devices()) {
    EXPECT_GE(m.active_tensors(), 1u);
    EXPECT_GE(m.allocated_bytes(), 4u << 20);
  }
  EXPECT_TRUE(report.scaling().enabled());
  EXPECT_TRUE(report.has_scheduler());
  EXPECT_TRUE(report.has_communication());
  EXPECT_EQ(report.scaling().active_devices_size(), report.devices_size());
  EXPECT_FALSE(report.version().empty());

  const std::string target = "--target=" + d.target();
  auto table = testing::RunCommand({testing::InferctlBinary(), target, "report"}, absl::Seconds(30));
  EXPECT_EQ(table.exit_code, 0) << table.output;
  for (const char* section : {"DEVICES", "MEMORY", "SCALING", "healthy"}) {
    EXPECT_TRUE(absl::StrContains(table.output, section)) << section << "\n" << table.output;
  }
  auto json =
      testing::RunCommand({testing::InferctlBinary(), target, "report", "--json"}, absl::Seconds(30));
  EXPECT_EQ(json.exit_code, 0) << json.output;
  EXPECT_TRUE(absl::StrContains(json.output, "\"active_tensors\": \"1\"")) << json.output;
  EXPECT_TRUE(absl::StrContains(json.output, "\"desired_replicas\"")) << json.output;

  d.Signal(SIGTERM);
  EXPECT_EQ(d.Wait(absl::Seconds(30)), 0) << d.Stderr();
}

}  // namespace
}  // namespace inferd
