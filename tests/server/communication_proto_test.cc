#include "server/communication_proto.h"

#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace inferd {
namespace {

using ::testing::HasSubstr;

constexpr char kId[] = "0123456789abcdef0123456789abcdef";

TEST(CommunicationProtoTest, TransferFromATensor) {
  pb::AsyncTransferRequest w;
  w.set_tensor_id(kId);
  w.set_dst_device(2);
  w.set_priority(v1::PRIORITY_BACKGROUND);
  w.set_move(true);
  w.set_owner("o");
  w.set_lease_ms(1500);
  absl::StatusOr<TransferRequest> r = TransferRequestFromProto(w);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(FormatTensorId(r->source_tensor), kId);
  EXPECT_EQ(r->dst_device, 2);
  EXPECT_EQ(r->priority, Priority::kBackground);
  EXPECT_TRUE(r->move);
  EXPECT_EQ(r->lease, absl::Milliseconds(1500));
}

TEST(CommunicationProtoTest, TransferOfInlineBytesToTheHost) {
  pb::AsyncTransferRequest w;
  w.mutable_inline_tensor()->set_datatype("UINT8");
  w.mutable_inline_tensor()->add_shape(3);
  w.mutable_inline_tensor()->set_data("abc");
  w.set_to_host(true);
  absl::StatusOr<TransferRequest> r = TransferRequestFromProto(w);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->dst_device, kHostEndpoint);
  EXPECT_EQ(r->priority, Priority::kNormal);  // unspecified
  ASSERT_NE(r->host_source.data, nullptr);
  EXPECT_EQ(std::string(static_cast<const char*>(r->host_source.data), r->host_source.size), "abc");
}

TEST(CommunicationProtoTest, BadTransfersAreNamed) {
  pb::AsyncTransferRequest w;
  EXPECT_EQ(TransferRequestFromProto(w).status().message(),
            "source: set tensor_id or inline_tensor");
  w.set_tensor_id("nope");
  absl::Status st = TransferRequestFromProto(w).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("tensor_id"));

  w.mutable_inline_tensor()->set_datatype("FP128");
  EXPECT_EQ(TransferRequestFromProto(w).status().message(),
            "inline_tensor.datatype: unsupported 'FP128'");

  w.set_tensor_id(kId);
  w.set_priority(static_cast<v1::Priority>(9));
  EXPECT_EQ(TransferRequestFromProto(w).status().message(), "priority: unknown priority 9");
  w.set_priority(v1::PRIORITY_HIGH);
  w.set_lease_ms(-5);
  EXPECT_EQ(TransferRequestFromProto(w).status().message(), "lease_ms: -5 is negative");
}

TEST(CommunicationProtoTest, Collectives) {
  pb::AllReduceRequest w;
  w.add_tensor_ids(kId);
  w.add_tensor_ids(kId);
  w.set_op(v1::REDUCE_OP_MAX);
  absl::StatusOr<CollectiveRequest> r = CollectiveRequestFromProto(CollectiveKind::kAllReduce, w);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kind, CollectiveKind::kAllReduce);
  EXPECT_EQ(r->tensors.size(), 2u);
  EXPECT_EQ(r->op, CollectiveReduceOp::kMax);

  w.set_op(v1::REDUCE_OP_UNSPECIFIED);
  EXPECT_EQ(CollectiveRequestFromProto(CollectiveKind::kAllReduce, w)->op,
            CollectiveReduceOp::kSum);
  w.set_op(static_cast<v1::ReduceOp>(40));
  EXPECT_EQ(CollectiveRequestFromProto(CollectiveKind::kAllReduce, w).status().message(),
            "op: unknown value 40");

  pb::BroadcastRequest b;
  b.add_tensor_ids(kId);
  b.add_tensor_ids("zz");
  b.set_root(1);
  absl::Status st = CollectiveRequestFromProto(CollectiveKind::kBroadcast, b).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("tensor_ids[1]"));
}

TEST(CommunicationProtoTest, TransferInfoToProto) {
  TransferInfo info;
  info.state = TransferState::kSucceeded;
  info.kind = LinkKind::kPeer;
  info.priority = Priority::kCritical;
  info.bytes = 1000;
  info.started = absl::FromUnixMillis(1000);
  info.finished = absl::FromUnixMillis(2000);
  pb::Transfer w;
  TransferToProto(info, &w);
  EXPECT_EQ(w.state(), pb::TRANSFER_STATE_SUCCEEDED);
  EXPECT_EQ(w.link_kind(), pb::LINK_KIND_PEER);
  EXPECT_EQ(w.priority(), v1::PRIORITY_CRITICAL);
  EXPECT_EQ(w.started_unix_ms(), 1000);
  EXPECT_DOUBLE_EQ(w.bandwidth_bytes_per_second(), 1000.0);
  EXPECT_EQ(w.enqueued_unix_ms(), 0);  // not set
}

TEST(CommunicationProtoTest, StatsListEveryPriorityAndLinkKind) {
  CommStats stats;
  stats.queue_depth[static_cast<int>(Priority::kLow)] = 3;
  pb::CommunicationStats w;
  CommStatsToProto(stats, &w);
  ASSERT_EQ(w.queue_depth_size(), kNumPriorities);
  EXPECT_EQ(w.queue_depth(3).priority(), v1::PRIORITY_LOW);
  EXPECT_EQ(w.queue_depth(3).depth(), 3u);
  EXPECT_EQ(w.calibration_size(), kNumLinkKinds);
}

}  // namespace
}  // namespace inferd
