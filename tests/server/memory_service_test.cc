// The Memory adapter in process over a real MemoryEngine on host devices:
// streaming upload and download, and errors naming the field.
#include "server/memory_service.h"

#include <memory>
#include <string>
#include <vector>

#include "core/device/host_device.h"
#include "core/util/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "inferd/v1/memory.grpc.pb.h"
#include "prometheus/registry.h"
#include "server/grpc_metrics.h"
#include "tests/server/server_test_util.h"

namespace inferd {
namespace {

using ::testing::HasSubstr;
using testing_server::InProcessServer;
using testing_server::RequestCount;

class MemoryServiceTest : public ::testing::Test {
 protected:
  MemoryServiceTest() {
    HostDeviceOptions ho;
    ho.capacity_bytes = 64ull << 20;
    ho.num_streams = 2;
    device_ = std::make_unique<HostDevice>(ho);
    MemoryEngineOptions o;
    o.pool_size_mb = 0;
    o.max_pool_fraction = 1.0;
    o.enable_monitoring = false;
    auto engine = MemoryEngine::Create(o, {device_.get()}, &clock_, engine_registry_);
    EXPECT_TRUE(engine.ok()) << engine.status();
    engine_ = *std::move(engine);
    service_ = std::make_unique<MemoryService>(engine_.get(), &metrics_);
    server_ = std::make_unique<InProcessServer>(std::vector<grpc::Service*>{service_.get()});
    stub_ = v1::Memory::NewStub(server_->channel());
  }

  grpc::Status Upload(const std::vector<v1::UploadTensorRequest>& messages, v1::TensorInfo* info) {
    grpc::ClientContext ctx;
    auto writer = stub_->UploadTensor(&ctx, info);
    for (const auto& m : messages) {
      if (!writer->Write(m)) break;
    }
    writer->WritesDone();
    return writer->Finish();
  }

  static v1::UploadTensorRequest Header(uint64_t bytes) {
    v1::UploadTensorRequest m;
    m.mutable_header()->set_datatype("UINT8");
    m.mutable_header()->add_shape(static_cast<int64_t>(bytes));
    return m;
  }
  static v1::UploadTensorRequest Chunk(std::string bytes) {
    v1::UploadTensorRequest m;
    m.set_chunk(std::move(bytes));
    return m;
  }

  FakeClock clock_;
  prometheus::Registry engine_registry_;
  prometheus::Registry registry_;
  GrpcMetrics metrics_{registry_};
  std::unique_ptr<HostDevice> device_;
  std::unique_ptr<MemoryEngine> engine_;
  std::unique_ptr<MemoryService> service_;
  std::unique_ptr<InProcessServer> server_;
  std::unique_ptr<v1::Memory::Stub> stub_;
};

TEST_F(MemoryServiceTest, UploadThenDownloadRoundTrips) {
  v1::TensorInfo info;
  grpc::Status st = Upload({Header(6), Chunk("abc"), Chunk("def")}, &info);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(info.byte_size(), 6u);

  grpc::ClientContext ctx;
  v1::DownloadTensorRequest req;
  req.set_tensor_id(info.id());
  req.set_chunk_bytes(4);
  auto reader = stub_->DownloadTensor(&ctx, req);
  std::string bytes;
  v1::DownloadTensorResponse part;
  while (reader->Read(&part)) bytes += part.chunk();
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(bytes, "abcdef");
  EXPECT_EQ(RequestCount(registry_, "inferd.v1.Memory/UploadTensor", "OK"), 1);
  EXPECT_EQ(RequestCount(registry_, "inferd.v1.Memory/DownloadTensor", "OK"), 1);
}

TEST_F(MemoryServiceTest, BadUploadsAreNamed) {
  v1::TensorInfo info;
  grpc::Status st = Upload({Chunk("abc")}, &info);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message(), "header: must be the first message");

  st = Upload({}, &info);
  EXPECT_EQ(st.error_message(), "header: the stream sent no header");

  st = Upload({Header(4), Chunk("abcdef")}, &info);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("chunk: "));

  st = Upload({Header(4), Chunk("ab")}, &info);
  EXPECT_EQ(st.error_message(), "chunk: the stream sent 2 of 4 bytes");

  v1::UploadTensorRequest bad = Header(4);
  bad.mutable_header()->set_datatype("NOPE");
  st = Upload({bad}, &info);
  EXPECT_EQ(st.error_message(), "header.datatype: unsupported datatype 'NOPE'");

  EXPECT_EQ(RequestCount(registry_, "inferd.v1.Memory/UploadTensor", "INVALID_ARGUMENT"), 5);
}

TEST_F(MemoryServiceTest, UnaryErrorsNameTheField) {
  grpc::ClientContext c1;
  v1::GetTensorRequest get;
  get.set_tensor_id("not-an-id");
  v1::TensorInfo info;
  grpc::Status st = stub_->GetTensor(&c1, get, &info);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("tensor_id"));

  grpc::ClientContext c2;
  v1::ListTensorsRequest list;
  list.set_page_size(5000);
  v1::ListTensorsResponse list_resp;
  st = stub_->ListTensors(&c2, list, &list_resp);
  EXPECT_EQ(st.error_message(), "page_size: 5000 is outside [0, 1000]");

  grpc::ClientContext c3;
  v1::AllocateTensorRequest alloc;
  alloc.set_datatype("FP32");
  alloc.add_shape(4);
  alloc.set_lease_seconds(-3);
  st = stub_->AllocateTensor(&c3, alloc, &info);
  EXPECT_EQ(st.error_message(), "request.lease_seconds: -3 is negative");

  grpc::ClientContext c4;
  alloc.set_lease_seconds(0);
  ASSERT_TRUE(stub_->AllocateTensor(&c4, alloc, &info).ok());
  grpc::ClientContext c5;
  v1::RenewLeaseRequest renew;
  renew.set_tensor_id(info.id());
  renew.set_lease_seconds(-1);
  st = stub_->RenewLease(&c5, renew, &info);
  EXPECT_EQ(st.error_message(), "lease_seconds: -1 is negative");

  EXPECT_EQ(RequestCount(registry_, "inferd.v1.Memory/GetTensor", "INVALID_ARGUMENT"), 1);
  EXPECT_EQ(RequestCount(registry_, "inferd.v1.Memory/AllocateTensor", "OK"), 1);
  EXPECT_EQ(RequestCount(registry_, "inferd.v1.Memory/AllocateTensor", "INVALID_ARGUMENT"), 1);
}

}  // namespace
}  // namespace inferd
