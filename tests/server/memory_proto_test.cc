#include "server/memory_proto.h"

#include <string>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace inferd {
namespace {

v1::AllocateTensorRequest Request() {
  v1::AllocateTensorRequest r;
  r.set_device(1);
  r.set_datatype("INT64");
  r.add_shape(3);
  r.add_shape(4);
  r.set_owner("bob");
  r.set_lease_seconds(2.5);
  return r;
}

TEST(MemoryProtoTest, TensorRequestReadsEveryField) {
  absl::StatusOr<TensorRequest> tr = TensorRequestFromProto(Request(), "request");
  ASSERT_TRUE(tr.ok()) << tr.status();
  EXPECT_EQ(tr->device, 1);
  EXPECT_EQ(tr->dtype, DataType::kInt64);
  EXPECT_EQ(tr->shape, (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(tr->owner, "bob");
  EXPECT_EQ(tr->lease, absl::Seconds(2.5));
}

TEST(MemoryProtoTest, NoDeviceAndNoLeaseMeanAny) {
  v1::AllocateTensorRequest r = Request();
  r.clear_device();
  r.set_lease_seconds(0);
  absl::StatusOr<TensorRequest> tr = TensorRequestFromProto(r, "request");
  ASSERT_TRUE(tr.ok()) << tr.status();
  EXPECT_EQ(tr->device, TensorRequest::kAnyDevice);
  EXPECT_EQ(tr->lease, absl::ZeroDuration());
}

TEST(MemoryProtoTest, BadTensorRequestFieldsAreNamed) {
  v1::AllocateTensorRequest r = Request();
  r.set_device(-2);
  EXPECT_EQ(TensorRequestFromProto(r, "header").status().message(),
            "header.device: -2 is negative (omit it for any device)");
  r = Request();
  r.set_datatype("COMPLEX");
  absl::Status st = TensorRequestFromProto(r, "header").status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "header.datatype: unsupported datatype 'COMPLEX'");
  r = Request();
  r.set_lease_seconds(-1);
  EXPECT_EQ(TensorRequestFromProto(r, "request").status().message(),
            "request.lease_seconds: -1 is negative");
}

TEST(MemoryProtoTest, ListOptionsBoundPageSize) {
  v1::ListTensorsRequest r;
  r.set_owner("o");
  absl::StatusOr<TensorListOptions> o = TensorListOptionsFromProto(r);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->device, -1);
  EXPECT_EQ(o->owner, "o");
  r.set_device(2);
  r.set_page_size(1000);
  o = TensorListOptionsFromProto(r);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->device, 2);
  EXPECT_EQ(o->page_size, 1000);
  r.set_page_size(1001);
  EXPECT_EQ(TensorListOptionsFromProto(r).status().message(),
            "page_size: 1001 is outside [0, 1000]");
  r.set_page_size(-1);
  EXPECT_EQ(TensorListOptionsFromProto(r).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(MemoryProtoTest, BatchSizeRequestDefaultsToFp32) {
  v1::GetOptimalBatchSizeRequest r;
  r.set_device(1);
  r.add_input_shape(3);
  r.set_max_batch_size(64);
  absl::StatusOr<BatchSizeRequest> b = BatchSizeRequestFromProto(r);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->dtype, DataType::kFp32);
  EXPECT_EQ(b->max_batch_size, 64);
  r.set_datatype("FP16");
  EXPECT_EQ(BatchSizeRequestFromProto(r)->dtype, DataType::kFp16);
  r.set_datatype("half");
  EXPECT_EQ(BatchSizeRequestFromProto(r).status().message(),
            "datatype: unsupported datatype 'half'");
}

TEST(MemoryProtoTest, StatsAndCompaction) {
  DeviceMemoryStats s;
  s.device = 3;
  s.total_bytes = 100;
  s.largest_free_block = 40;
  s.lease_expirations = 2;
  v1::MemoryStats w;
  MemoryStatsToProto({s, s}, &w);
  ASSERT_EQ(w.devices_size(), 2);
  EXPECT_EQ(w.devices(0).device(), 3);
  EXPECT_EQ(w.devices(0).largest_free_block_bytes(), 40u);
  EXPECT_EQ(w.devices(1).lease_expirations(), 2u);

  CompactionResult c;
  c.moved_tensors = 5;
  c.fragmentation_after = 0.25;
  v1::CompactResponse cw;
  CompactionResultToProto(c, &cw);
  EXPECT_EQ(cw.moved_tensors(), 5u);
  EXPECT_DOUBLE_EQ(cw.fragmentation_after(), 0.25);
}

}  // namespace
}  // namespace inferd
