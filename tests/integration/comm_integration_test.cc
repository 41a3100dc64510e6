// The Communication service of the real daemon over gRPC, on 4 host
// devices: upload on device 0, transfer to device 1, download, bytes
// identical; AllReduce over tensors on the 4 devices; errors and stats.
#include <csignal>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "clients/cpp/inferd_client.h"
#include "gtest/gtest.h"
#include "inferd/v1/communication.grpc.pb.h"
#include "inferd/v1/memory.grpc.pb.h"
#include "clients/cpp/tensor_stream.h"
#include "tests/integration/daemon_process.h"

namespace inferd {
namespace {


class CommIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    daemon_ = new testing::ConfiguredDaemon(
        "device:\n  host_memory_mb: 512\n  multi_gpu:\n    performance_optimization:\n"
        "      memory_pool_size_mb: 16\n      comm_chunk_size_mb: 1\n", 4);
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
    memory_ = v1::Memory::NewStub(client_->channel());
    comm_ = v1::Communication::NewStub(client_->channel());
  }
  static std::unique_ptr<grpc::ClientContext> Ctx() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    return ctx;
  }

  static std::string RandomBytes(size_t n, uint64_t seed) {
    std::string data(n, '\0');
    std::mt19937_64 rng(seed);
    for (size_t i = 0; i < n; ++i) data[i] = static_cast<char>(rng());
    return data;
  }

  absl::StatusOr<v1::TensorInfo> Upload(const std::string& bytes, int device,
                                        const std::string& dtype = "UINT8") {
    v1::AllocateTensorRequest h;
    h.set_device(device);
    h.set_datatype(dtype);
    h.add_shape(static_cast<int64_t>(bytes.size() / (dtype == "FP32" ? 4 : 1)));
    h.set_owner("comm-test");
    return UploadTensor(*client_, h, bytes, 1u << 20);
  }

  absl::StatusOr<std::string> Download(const std::string& id) {
    absl::StatusOr<DownloadedTensor> t = DownloadTensor(*client_, id);
    if (!t.ok()) return t.status();
    return std::move(t->data);
  }

  absl::StatusOr<std::string> Start(const v1::AsyncTransferRequest& req) {
    auto ctx = Ctx();
    v1::AsyncTransferResponse resp;
    grpc::Status st = comm_->AsyncTransfer(ctx.get(), req, &resp);
    if (!st.ok()) return FromGrpcStatus(st);
    return resp.transfer_id();
  }

  absl::StatusOr<v1::Transfer> Wait(const std::string& id) {
    auto ctx = Ctx();
    v1::WaitTransferRequest req;
    req.set_transfer_id(id);
    req.set_timeout_ms(30000);
    v1::Transfer resp;
    grpc::Status st = comm_->WaitTransfer(ctx.get(), req, &resp);
    if (!st.ok()) return FromGrpcStatus(st);
    return resp;
  }

  static testing::ConfiguredDaemon* daemon_;
  std::unique_ptr<InferdClient> client_;
  std::unique_ptr<v1::Memory::Stub> memory_;
  std::unique_ptr<v1::Communication::Stub> comm_;
};

testing::ConfiguredDaemon* CommIntegrationTest::daemon_ = nullptr;

// Verifies the acceptance path: upload on device 0 (Memory service),
// transfer to device 1, download: bytes identical; the 5 MiB transfer goes
// in chunks of comm_chunk_size_mb.
TEST_F(CommIntegrationTest, UploadTransferDownloadIsBitIdentical) {
  const std::string data = RandomBytes(5u << 20, 7);
  auto src = Upload(data, 0);
  ASSERT_TRUE(src.ok()) << src.status();
  v1::AsyncTransferRequest req;
  req.set_tensor_id(src->id());
  req.set_dst_device(1);
  req.set_priority(v1::PRIORITY_HIGH);
  auto id = Start(req);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->size(), 32u);
  auto done = Wait(*id);
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_EQ(done->state(), v1::TRANSFER_STATE_SUCCEEDED) << done->error_message();
  EXPECT_EQ(done->link(), "0->1");
  EXPECT_EQ(done->byte_size(), data.size());
  EXPECT_EQ(done->result().device(), 1);
  EXPECT_EQ(done->result().owner(), "comm-test");
  EXPECT_NE(done->result().id(), src->id());
  EXPECT_GE(done->chunks(), 1u);
  auto back = Download(done->result().id());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(*back == data);
}

// Verifies the host endpoint: inline bytes in, a device-to-device move,
// and the bytes back in the WaitTransfer answer (once).
TEST_F(CommIntegrationTest, HostEndpointUploadMoveAndDownload) {
  const std::string data = RandomBytes(3u << 20, 9);
  v1::AsyncTransferRequest up;
  up.mutable_inline_tensor()->set_datatype("UINT8");
  up.mutable_inline_tensor()->add_shape(static_cast<int64_t>(data.size()));
  up.mutable_inline_tensor()->set_data(data);
  up.set_dst_device(2);
  up.set_owner("inline");
  auto up_id = Start(up);
  ASSERT_TRUE(up_id.ok()) << up_id.status();
  auto uploaded = Wait(*up_id);
  ASSERT_TRUE(uploaded.ok()) << uploaded.status();
  ASSERT_EQ(uploaded->state(), v1::TRANSFER_STATE_SUCCEEDED) << uploaded->error_message();
  EXPECT_EQ(uploaded->link_kind(), v1::LINK_KIND_HOST_TO_DEVICE);

  v1::AsyncTransferRequest mv;
  mv.set_tensor_id(uploaded->result().id());
  mv.set_dst_device(3);
  mv.set_move(true);
  auto mv_id = Start(mv);
  ASSERT_TRUE(mv_id.ok()) << mv_id.status();
  auto moved = Wait(*mv_id);
  ASSERT_TRUE(moved.ok()) << moved.status();
  ASSERT_EQ(moved->state(), v1::TRANSFER_STATE_SUCCEEDED) << moved->error_message();
  EXPECT_TRUE(moved->source_freed());
  EXPECT_FALSE(Download(uploaded->result().id()).ok());

  v1::AsyncTransferRequest down;
  down.set_tensor_id(moved->result().id());
  down.set_to_host(true);
  auto down_id = Start(down);
  ASSERT_TRUE(down_id.ok()) << down_id.status();
  auto got = Wait(*down_id);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->state(), v1::TRANSFER_STATE_SUCCEEDED) << got->error_message();
  EXPECT_EQ(got->link(), "3->host");
  EXPECT_TRUE(got->data() == data);
  auto ctx = Ctx();
  v1::GetTransferRequest get;
  get.set_transfer_id(*down_id);
  v1::Transfer again;
  ASSERT_TRUE(comm_->GetTransfer(ctx.get(), get, &again).ok());
  EXPECT_TRUE(again.data().empty());
  EXPECT_TRUE(again.data_released());
}

TEST_F(CommIntegrationTest, AllReduceOverFourHostDevices) {
  const int n = 1000;
  std::vector<std::string> ids;
  std::vector<float> want(n, 0.0f);
  for (int d = 0; d < 4; ++d) {
    std::vector<float> v(n);
    for (int i = 0; i < n; ++i) {
      v[i] = static_cast<float>((i % 13) - 6 + d);
      want[i] += v[i];
    }
    std::string bytes(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
    auto info = Upload(bytes, d, "FP32");
    ASSERT_TRUE(info.ok()) << info.status();
    ids.push_back(info->id());
  }
  auto ctx = Ctx();
  v1::AllReduceRequest req;
  for (const std::string& id : ids) req.add_tensor_ids(id);
  req.set_op(v1::REDUCE_OP_SUM);
  v1::CollectiveResponse resp;
  grpc::Status st = comm_->AllReduce(ctx.get(), req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.implementation(), "copy");
  EXPECT_EQ(resp.outputs_size(), 4);
  EXPECT_EQ(resp.devices_size(), 4);
  for (const std::string& id : ids) {
    auto back = Download(id);
    ASSERT_TRUE(back.ok()) << back.status();
    ASSERT_EQ(back->size(), n * sizeof(float));
    std::vector<float> got(n);
    std::memcpy(got.data(), back->data(), back->size());
    EXPECT_EQ(got, want);
  }

  // AllGather makes new tensors of 4x the rows.
  auto gctx = Ctx();
  v1::AllGatherRequest gather;
  for (const std::string& id : ids) gather.add_tensor_ids(id);
  v1::CollectiveResponse gathered;
  ASSERT_TRUE(comm_->AllGather(gctx.get(), gather, &gathered).ok());
  ASSERT_EQ(gathered.outputs_size(), 4);
  EXPECT_EQ(gathered.outputs(0).shape(0), 4 * n);
}

TEST_F(CommIntegrationTest, ErrorsCarryCanonicalCodes) {
  v1::AsyncTransferRequest bad;
  bad.set_tensor_id("00000000000000000000000000000001");
  bad.set_dst_device(1);
  auto missing = Start(bad);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound) << missing.status();
  bad.set_tensor_id("not-hex");
  EXPECT_EQ(Start(bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad.clear_tensor_id();
  EXPECT_EQ(Start(bad).status().code(), absl::StatusCode::kInvalidArgument);

  auto src = Upload(RandomBytes(64, 1), 0);
  ASSERT_TRUE(src.ok());
  v1::AsyncTransferRequest far;
  far.set_tensor_id(src->id());
  far.set_dst_device(7);
  auto st = Start(far);
  EXPECT_EQ(st.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(st.status().message(), "dst_device 7")) << st.status();

  auto ctx = Ctx();
  v1::AllReduceRequest one_device;
  one_device.add_tensor_ids(src->id());
  one_device.add_tensor_ids(src->id());
  v1::CollectiveResponse resp;
  grpc::Status cst = comm_->AllReduce(ctx.get(), one_device, &resp);
  EXPECT_EQ(cst.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << cst.error_message();
}

TEST_F(CommIntegrationTest, StatsAndMetricsReportLinksAndCalibration) {
  auto src = Upload(RandomBytes(4096, 3), 0);
  ASSERT_TRUE(src.ok());
  v1::AsyncTransferRequest req;
  req.set_tensor_id(src->id());
  req.set_dst_device(3);
  auto id = Start(req);
  ASSERT_TRUE(id.ok()) << id.status();
  auto done = Wait(*id);
  ASSERT_TRUE(done.ok() && done->state() == v1::TRANSFER_STATE_SUCCEEDED);

  auto ctx = Ctx();
  v1::CommunicationStats stats;
  ASSERT_TRUE(comm_->GetCommunicationStats(ctx.get(), {}, &stats).ok());
  EXPECT_EQ(stats.chunk_bytes(), 1u << 20);
  EXPECT_EQ(stats.bandwidth_limit(), 0.8);
  EXPECT_TRUE(stats.calibration_measured());
  bool found = false;
  for (const auto& l : stats.links()) {
    if (l.link() == "0->3") {
      found = true;
      EXPECT_GE(l.transfers(), 1u);
      EXPECT_GT(l.peak_bytes_per_second(), 0);
    }
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(stats.queue_depth_size(), 5);
  const std::string metrics = testing::HttpGet(daemon_->process().metrics_port(), "/metrics");
  EXPECT_TRUE(absl::StrContains(metrics, "inferd_comm_bytes_total{link=\"0->3\",op=\"transfer\"}"));
  EXPECT_TRUE(absl::StrContains(metrics, "inferd_comm_link_peak_bytes_per_second"));
  EXPECT_TRUE(absl::StrContains(metrics, "inferd_comm_queue_depth{priority=\"background\"}"));
}

}  // namespace
}  // namespace inferd
