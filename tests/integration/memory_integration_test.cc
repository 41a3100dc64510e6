// The Memory service of the real daemon over gRPC: streaming upload and
// download, exhaustion errors, lease-based reclamation, listing, stats.
#include <csignal>
#include <random>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "clients/cpp/inferd_client.h"
#include "gtest/gtest.h"
#include "inferd/v1/memory.grpc.pb.h"
#include "clients/cpp/tensor_stream.h"
#include "tests/integration/daemon_process.h"

namespace inferd {
namespace {


class MemoryIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    daemon_ = new testing::ConfiguredDaemon(
        "device:\n  host_memory_mb: 512\n  multi_gpu:\n    performance_optimization:\n"
        "      memory_pool_size_mb: 16\n"
        "memory:\n  monitor_interval_seconds: 0.1\n", 2);
    ASSERT_TRUE(daemon_->process().started()) << daemon_->process().Stderr();
  }
  static void TearDownTestSuite() {
    EXPECT_EQ(daemon_->Stop(), 0) << daemon_->process().Stderr();
    delete daemon_;
  }
  void SetUp() override {
    ClientOptions o;
    o.target = daemon_->process().target();
    client_ = std::make_unique<InferdClient>(o);
    stub_ = v1::Memory::NewStub(client_->channel());
  }
  static std::unique_ptr<grpc::ClientContext> Ctx() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    return ctx;
  }

  absl::StatusOr<v1::TensorInfo> Upload(const std::string& bytes, int device, size_t chunk,
                                        const std::string& owner = "test") {
    v1::AllocateTensorRequest h;
    h.set_device(device);
    h.set_datatype("UINT8");
    h.add_shape(static_cast<int64_t>(bytes.size()));
    h.set_owner(owner);
    return UploadTensor(*client_, h, bytes, chunk);
  }

  absl::StatusOr<std::string> Download(const std::string& id) {
    absl::StatusOr<DownloadedTensor> t = DownloadTensor(*client_, id);
    if (!t.ok()) return t.status();
    return std::move(t->data);
  }

  static testing::ConfiguredDaemon* daemon_;
  std::unique_ptr<InferdClient> client_;
  std::unique_ptr<v1::Memory::Stub> stub_;
};

testing::ConfiguredDaemon* MemoryIntegrationTest::daemon_ = nullptr;

// Verifies a 64 MiB tensor streams in and back out bit-identical (no 4 MiB
// message limit applies to either direction).
TEST_F(MemoryIntegrationTest, UploadsAndDownloads64MiBBitIdentical) {
  std::string data(64u << 20, '\0');
  std::mt19937_64 rng(42);
  for (size_t i = 0; i + 8 <= data.size(); i += 8) {
    const uint64_t v = rng();
    std::memcpy(&data[i], &v, 8);
  }
  auto info = Upload(data, 1, 1u << 20);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->byte_size(), data.size());
  EXPECT_EQ(info->device(), 1);
  EXPECT_EQ(info->id().size(), 32u);
  auto back = Download(info->id());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(*back == data);

  auto ctx = Ctx();
  v1::FreeTensorRequest fr;
  fr.set_tensor_id(info->id());
  v1::FreeTensorResponse fresp;
  EXPECT_TRUE(stub_->FreeTensor(ctx.get(), fr, &fresp).ok());
  auto gone = Download(info->id());
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(MemoryIntegrationTest, UploadWithWrongByteCountFails) {
  auto ctx = Ctx();
  v1::TensorInfo info;
  auto writer = stub_->UploadTensor(ctx.get(), &info);
  v1::UploadTensorRequest req;
  req.mutable_header()->set_datatype("FP32");
  req.mutable_header()->add_shape(4);
  writer->Write(req);
  req.set_chunk(std::string(8, 'x'));  // 8 of 16 bytes
  writer->Write(req);
  writer->WritesDone();
  grpc::Status st = writer->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(st.error_message(), "chunk")) << st.error_message();
}

TEST_F(MemoryIntegrationTest, AllocationPastCapacityNamesDeviceAndFreeBytes) {
  auto ctx = Ctx();
  v1::AllocateTensorRequest req;
  req.set_device(0);
  req.set_datatype("FP32");
  req.add_shape(1ll << 28);  // 1 GiB on a 512 MiB device
  v1::TensorInfo info;
  grpc::Status st = stub_->AllocateTensor(ctx.get(), req, &info);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(absl::StrContains(st.error_message(), "device 0")) << st.error_message();
  EXPECT_TRUE(absl::StrContains(st.error_message(), "free")) << st.error_message();
  EXPECT_TRUE(absl::StrContains(st.error_message(), "1073741824")) << st.error_message();
}

TEST_F(MemoryIntegrationTest, BadRequestsNameTheField) {
  auto ctx = Ctx();
  v1::GetTensorRequest g;
  g.set_tensor_id("not-a-handle");
  v1::TensorInfo info;
  grpc::Status st = stub_->GetTensor(ctx.get(), g, &info);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(st.error_message(), "tensor_id")) << st.error_message();

  auto ctx2 = Ctx();
  v1::AllocateTensorRequest a;
  a.set_datatype("FP9");
  st = stub_->AllocateTensor(ctx2.get(), a, &info);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(st.error_message(), "datatype")) << st.error_message();

  auto ctx3 = Ctx();
  a.set_datatype("FP32");
  a.add_shape(4);
  a.set_device(7);
  st = stub_->AllocateTensor(ctx3.get(), a, &info);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(st.error_message(), "device")) << st.error_message();
}

// Verifies that a client which stops renewing has its tensors reclaimed once
// the lease runs out, while a renewed tensor stays.
TEST_F(MemoryIntegrationTest, TensorsOfADisappearedClientAreReclaimedAfterTheirLease) {
  auto alloc = [&](double lease) {
    auto ctx = Ctx();
    v1::AllocateTensorRequest req;
    req.set_datatype("FP32");
    req.add_shape(1024);
    req.set_owner("vanishing-client");
    req.set_lease_seconds(lease);
    v1::TensorInfo info;
    EXPECT_TRUE(stub_->AllocateTensor(ctx.get(), req, &info).ok());
    return info.id();
  };
  const std::string short_lived = alloc(0.3);
  const std::string kept = alloc(600);
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  grpc::StatusCode code = grpc::StatusCode::OK;
  while (absl::Now() < deadline) {
    auto ctx = Ctx();
    v1::GetTensorRequest g;
    g.set_tensor_id(short_lived);
    v1::TensorInfo info;
    code = stub_->GetTensor(ctx.get(), g, &info).error_code();
    if (code == grpc::StatusCode::NOT_FOUND) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // waiting on the daemon
  }
  EXPECT_EQ(code, grpc::StatusCode::NOT_FOUND);

  auto ctx = Ctx();
  v1::ListTensorsRequest list;
  list.set_owner("vanishing-client");
  v1::ListTensorsResponse resp;
  ASSERT_TRUE(stub_->ListTensors(ctx.get(), list, &resp).ok());
  ASSERT_EQ(resp.tensors_size(), 1);
  EXPECT_EQ(resp.tensors(0).id(), kept);
}

TEST_F(MemoryIntegrationTest, ListsPagesStatsAndBatchSize) {
  for (int i = 0; i < 5; ++i) {
    auto ctx = Ctx();
    v1::AllocateTensorRequest req;
    req.set_datatype("INT8");
    req.add_shape(100);
    req.set_owner("pager");
    req.set_device(0);
    v1::TensorInfo info;
    ASSERT_TRUE(stub_->AllocateTensor(ctx.get(), req, &info).ok());
  }
  std::string token;
  int seen = 0, pages = 0;
  do {
    auto ctx = Ctx();
    v1::ListTensorsRequest list;
    list.set_owner("pager");
    list.set_page_size(2);
    list.set_page_token(token);
    v1::ListTensorsResponse resp;
    ASSERT_TRUE(stub_->ListTensors(ctx.get(), list, &resp).ok());
    seen += resp.tensors_size();
    token = resp.next_page_token();
    ++pages;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(seen, 5);
  EXPECT_EQ(pages, 3);

  auto ctx = Ctx();
  v1::MemoryStats stats;
  ASSERT_TRUE(stub_->GetMemoryStats(ctx.get(), {}, &stats).ok());
  ASSERT_EQ(stats.devices_size(), 2);
  EXPECT_GE(stats.devices(0).active_tensors(), 5u);
  EXPECT_EQ(stats.devices(0).total_bytes(), 512u << 20);

  auto ctx2 = Ctx();
  v1::GetOptimalBatchSizeRequest b;
  b.set_device(0);
  b.set_model_size_mb(10);
  b.add_input_shape(1024);
  b.set_datatype("FP32");
  b.set_max_batch_size(64);
  v1::GetOptimalBatchSizeResponse br;
  ASSERT_TRUE(stub_->GetOptimalBatchSize(ctx2.get(), b, &br).ok());
  EXPECT_EQ(br.batch_size(), 64);
}

}  // namespace
}  // namespace inferd
