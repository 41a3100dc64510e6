#include "core/comm/collective_engine.h"

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "core/comm/comm_metrics.h"
#include "core/device/host_communicator.h"
#include "gtest/gtest.h"
#include "tests/core/comm/element_access.h"
#include "tests/core/comm/comm_test_util.h"

namespace inferd {
namespace {

using testing_comm::Load;
using testing_comm::Store;
using testing_comm::Round;
using testing_comm::Input;
using testing_comm::IsFloat;
using testing_comm::kNcclTypes;
using testing_comm::kOps;
using testing_comm::Reduced;

using testing_comm::CommFixture;
using testing_comm::DeviceSetup;

constexpr int kDevices = 4;

std::vector<uint8_t> Inputs(DataType t, int r, size_t n) {
  std::vector<uint8_t> v(n * DataTypeSize(t));
  for (size_t i = 0; i < n; ++i) Store(t, v.data(), i, Input(t, r, i));
  return v;
}

// From one element to many scratch pieces (64-byte scratch below).
constexpr size_t kSizes[] = {1, 3, 4, 257, 1000};

class CollectiveEngineTest : public CommFixture {
 protected:
  void SetUp() override { Build(); }

  void Build(CommunicatorFactory factory = nullptr) {
    if (memory_ == nullptr) BuildDevices(DeviceSetup{});
    engine_.reset();
    metrics_ = std::make_unique<CommMetrics>(registry_);
    CollectiveEngineOptions o;
    o.copy.max_scratch_bytes = 64;
    auto engine =
        CollectiveEngine::Create(o, raw_, memory_.get(), &clock_, metrics_.get(), factory);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = *std::move(engine);
  }

  // One tensor per device holding rank r's inputs; listed in the order
  // 2, 0, 3, 1 so that request order differs from rank order.
  std::vector<TensorId> MakeInputs(DataType t, std::vector<int64_t> shape, size_t n) {
    std::vector<TensorId> ids;
    for (int d : {2, 0, 3, 1}) ids.push_back(MakeTensor(d, t, shape, Inputs(t, d, n)));
    return ids;
  }
  int DeviceOf(const TensorId& id) { return memory_->GetTensorInfo(id)->device; }

  std::unique_ptr<CommMetrics> metrics_;
  std::unique_ptr<CollectiveEngine> engine_;
};

class CollectiveDtypeTest : public CollectiveEngineTest,
                            public ::testing::WithParamInterface<DataType> {};

TEST_P(CollectiveDtypeTest, AllReduceMatchesCpuReferenceForEveryOpAndSize) {
  const DataType t = GetParam();
  for (size_t n : kSizes) {
    for (CollectiveReduceOp op : kOps) {
      SCOPED_TRACE(absl::StrCat(DataTypeName(t), " n=", n, " op=", CollectiveReduceOpName(op)));
      std::vector<TensorId> ids = MakeInputs(t, {static_cast<int64_t>(n)}, n);
      CollectiveRequest req;
      req.kind = CollectiveKind::kAllReduce;
      req.tensors = ids;
      req.op = op;
      auto result = engine_->Run(req);
      ASSERT_TRUE(result.ok()) << result.status();
      EXPECT_EQ(result->implementation, "copy");
      std::vector<uint8_t> want(n * DataTypeSize(t));
      for (size_t i = 0; i < n; ++i) Store(t, want.data(), i, Reduced(t, op, i, kDevices));
      for (const TensorId& id : ids) {
        EXPECT_EQ(ReadTensor(id), want) << "device " << DeviceOf(id);
        ASSERT_TRUE(memory_->FreeTensor(id).ok());
      }
    }
  }
}

TEST_P(CollectiveDtypeTest, ReduceScatterMatchesCpuReference) {
  const DataType t = GetParam();
  for (size_t per : {size_t{1}, size_t{3}, size_t{250}}) {
    for (CollectiveReduceOp op : kOps) {
      SCOPED_TRACE(absl::StrCat(DataTypeName(t), " per=", per, " op=", CollectiveReduceOpName(op)));
      const size_t n = per * kDevices;
      std::vector<TensorId> ids = MakeInputs(t, {static_cast<int64_t>(n)}, n);
      CollectiveRequest req;
      req.kind = CollectiveKind::kReduceScatter;
      req.tensors = ids;
      req.op = op;
      auto result = engine_->Run(req);
      ASSERT_TRUE(result.ok()) << result.status();
      ASSERT_EQ(result->outputs.size(), ids.size());
      for (size_t k = 0; k < ids.size(); ++k) {
        const TensorInfo& out = result->outputs[k];
        const int rank = out.device;  // devices 0..3 are ranks 0..3
        EXPECT_EQ(out.device, DeviceOf(ids[k]));
        EXPECT_EQ(out.shape, std::vector<int64_t>{static_cast<int64_t>(per)});
        std::vector<uint8_t> want(per * DataTypeSize(t));
        for (size_t i = 0; i < per; ++i) {
          Store(t, want.data(), i, Reduced(t, op, rank * per + i, kDevices));
        }
        EXPECT_EQ(ReadTensor(out.id), want) << "device " << out.device;
        ASSERT_TRUE(memory_->FreeTensor(out.id).ok());
        // The inputs are untouched.
        EXPECT_EQ(ReadTensor(ids[k]), Inputs(t, DeviceOf(ids[k]), n));
        ASSERT_TRUE(memory_->FreeTensor(ids[k]).ok());
      }
    }
  }
}

TEST_P(CollectiveDtypeTest, AllGatherConcatenatesInDeviceOrder) {
  const DataType t = GetParam();
  for (size_t n : kSizes) {
    SCOPED_TRACE(absl::StrCat(DataTypeName(t), " n=", n));
    std::vector<TensorId> ids = MakeInputs(t, {static_cast<int64_t>(n), 1}, n);
    CollectiveRequest req;
    req.kind = CollectiveKind::kAllGather;
    req.tensors = ids;
    auto result = engine_->Run(req);
    ASSERT_TRUE(result.ok()) << result.status();
    std::vector<uint8_t> want;
    for (int r = 0; r < kDevices; ++r) {
      std::vector<uint8_t> part = Inputs(t, r, n);
      want.insert(want.end(), part.begin(), part.end());
    }
    for (const TensorInfo& out : result->outputs) {
      EXPECT_EQ(out.shape, (std::vector<int64_t>{static_cast<int64_t>(n * kDevices), 1}));
      EXPECT_EQ(ReadTensor(out.id), want) << "device " << out.device;
      ASSERT_TRUE(memory_->FreeTensor(out.id).ok());
    }
    for (const TensorId& id : ids) ASSERT_TRUE(memory_->FreeTensor(id).ok());
  }
}

TEST_P(CollectiveDtypeTest, BroadcastCopiesTheRootEverywhere) {
  const DataType t = GetParam();
  for (size_t n : kSizes) {
    for (int root = 0; root < kDevices; ++root) {
      SCOPED_TRACE(absl::StrCat(DataTypeName(t), " n=", n, " root=", root));
      std::vector<TensorId> ids = MakeInputs(t, {static_cast<int64_t>(n)}, n);
      CollectiveRequest req;
      req.kind = CollectiveKind::kBroadcast;
      req.tensors = ids;
      req.root = root;
      auto result = engine_->Run(req);
      ASSERT_TRUE(result.ok()) << result.status();
      const std::vector<uint8_t> want = Inputs(t, DeviceOf(ids[root]), n);
      for (const TensorId& id : ids) {
        EXPECT_EQ(ReadTensor(id), want) << "device " << DeviceOf(id);
        ASSERT_TRUE(memory_->FreeTensor(id).ok());
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(NcclTypes, CollectiveDtypeTest, ::testing::ValuesIn(kNcclTypes),
                         [](const auto& info) { return std::string(DataTypeName(info.param)); });

// Verifies the copy collectives with fully asynchronous streams (work on the
// streams' threads, ordered only by events), as on a GPU.
class CollectiveAsyncStreamsTest : public CommFixture {};

TEST_F(CollectiveAsyncStreamsTest, AllReduceAndGatherStayExact) {
  DeviceSetup setup;
  setup.inline_when_idle = false;
  BuildDevices(setup);
  CommMetrics metrics(registry_);
  CollectiveEngineOptions o;
  o.copy.max_scratch_bytes = 48;
  auto engine = CollectiveEngine::Create(o, raw_, memory_.get(), &clock_, &metrics);
  ASSERT_TRUE(engine.ok()) << engine.status();
  const DataType t = DataType::kFp32;
  for (int round = 0; round < 20; ++round) {
    const size_t n = 37 + static_cast<size_t>(round) * 11;
    std::vector<TensorId> ids;
    for (int d = 0; d < kDevices; ++d) {
      ids.push_back(MakeTensor(d, t, {static_cast<int64_t>(n)}, Inputs(t, d, n)));
    }
    CollectiveRequest req;
    req.kind = CollectiveKind::kAllGather;
    req.tensors = ids;
    auto gathered = (*engine)->Run(req);
    ASSERT_TRUE(gathered.ok()) << gathered.status();
    req.kind = CollectiveKind::kAllReduce;
    req.op = CollectiveReduceOp::kAvg;
    ASSERT_TRUE((*engine)->Run(req).ok());
    std::vector<uint8_t> want(n * 4);
    for (size_t i = 0; i < n; ++i) {
      Store(t, want.data(), i, Reduced(t, CollectiveReduceOp::kAvg, i, kDevices));
    }
    for (const TensorId& id : ids) EXPECT_EQ(ReadTensor(id), want);
    std::vector<uint8_t> cat;
    for (int d = 0; d < kDevices; ++d) {
      auto part = Inputs(t, d, n);
      cat.insert(cat.end(), part.begin(), part.end());
    }
    for (const TensorInfo& out : gathered->outputs) EXPECT_EQ(ReadTensor(out.id), cat);
  }
  engine->reset();
}

TEST_F(CollectiveEngineTest, ScalarsGatherIntoAVector) {
  std::vector<TensorId> ids;
  for (int d = 0; d < kDevices; ++d) {
    ids.push_back(MakeTensor(d, DataType::kInt32, {}, Inputs(DataType::kInt32, d, 1)));
  }
  CollectiveRequest req;
  req.kind = CollectiveKind::kAllGather;
  req.tensors = ids;
  auto result = engine_->Run(req);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->outputs[0].shape, std::vector<int64_t>{kDevices});
}

TEST_F(CollectiveEngineTest, SubsetOfDevicesGetsItsOwnCommunicator) {
  const DataType t = DataType::kFp32;
  std::vector<TensorId> ids = {MakeTensor(1, t, {8}, Inputs(t, 0, 8)),
                               MakeTensor(3, t, {8}, Inputs(t, 1, 8))};
  CollectiveRequest req;
  req.kind = CollectiveKind::kAllReduce;
  req.tensors = ids;
  auto result = engine_->Run(req);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->devices, (std::vector<int>{1, 3}));
  std::vector<uint8_t> want(8 * 4);
  for (size_t i = 0; i < 8; ++i) Store(t, want.data(), i, Reduced(t, req.op, i, 2));
  EXPECT_EQ(ReadTensor(ids[0]), want);
  CommStats stats;
  engine_->FillStats(&stats);
  EXPECT_EQ(stats.communicators, 1u);
  EXPECT_EQ(stats.ops[static_cast<int>(CommOp::kAllReduce)].operations, 1u);
  EXPECT_NE(Scrape().find("inferd_comm_operations_total{link=\"1,3\",op=\"all_reduce\"} 1"),
            std::string::npos)
      << Scrape();
}

TEST_F(CollectiveEngineTest, RejectsBadRequestsWithInvalidArgument) {
  const DataType t = DataType::kFp32;
  TensorId a = MakeTensor(0, t, {4}, Inputs(t, 0, 4));
  TensorId b = MakeTensor(1, t, {4}, Inputs(t, 1, 4));
  TensorId same_device = MakeTensor(0, t, {4}, Inputs(t, 2, 4));
  TensorId other_shape = MakeTensor(2, t, {2, 2}, Inputs(t, 2, 4));
  TensorId other_type = MakeTensor(2, DataType::kInt32, {4}, Inputs(DataType::kInt32, 2, 4));
  TensorId unsupported = MakeTensor(3, DataType::kInt16, {4}, std::vector<uint8_t>(8));
  TensorId odd = MakeTensor(3, t, {3}, Inputs(t, 3, 3));
  TensorId odd2 = MakeTensor(2, t, {3}, Inputs(t, 3, 3));
  struct Case {
    CollectiveKind kind;
    std::vector<TensorId> tensors;
    int root;
    const char* message;
  };
  const std::vector<Case> cases = {
      {CollectiveKind::kAllReduce, {}, 0, "must not be empty"},
      {CollectiveKind::kAllReduce, {a, same_device}, 0, "like an earlier tensor"},
      {CollectiveKind::kAllReduce, {a, other_shape}, 0, "datatype or shape"},
      {CollectiveKind::kAllGather, {a, other_type}, 0, "datatype or shape"},
      {CollectiveKind::kAllReduce, {unsupported}, 0, "INT16"},
      {CollectiveKind::kReduceScatter, {odd, odd2}, 0, "divisible"},
      {CollectiveKind::kBroadcast, {a, b}, 2, "root 2"},
  };
  for (const Case& c : cases) {
    CollectiveRequest req;
    req.kind = c.kind;
    req.tensors = c.tensors;
    req.root = c.root;
    auto result = engine_->Run(req);
    ASSERT_FALSE(result.ok()) << c.message;
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << result.status();
    EXPECT_TRUE(absl::StrContains(result.status().message(), c.message)) << result.status();
  }
  // Nothing stays pinned after a refusal.
  EXPECT_TRUE(memory_->FreeTensor(a).ok());
  EXPECT_TRUE(memory_->FreeTensor(same_device).ok());
}

TEST_F(CollectiveEngineTest, UnknownTensorIsNotFound) {
  const DataType t = DataType::kFp32;
  TensorId a = MakeTensor(0, t, {4}, Inputs(t, 0, 4));
  TensorId gone = MakeTensor(1, t, {4}, Inputs(t, 1, 4));
  ASSERT_TRUE(memory_->FreeTensor(gone).ok());
  CollectiveRequest req;
  req.tensors = {a, gone};
  auto result = engine_->Run(req);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound) << result.status();
}

// A communicator whose first collective fails, as a broken NCCL
// communicator would.
class FailingCommunicator final : public Communicator {
 public:
  explicit FailingCommunicator(std::vector<Device*> d) : devices_(std::move(d)) {}
  const char* kind() const override { return "failing"; }
  const std::vector<Device*>& devices() const override { return devices_; }
  absl::Status Broadcast(absl::Span<const CollectiveRank>, int, DataType, size_t) override {
    return Fail();
  }
  absl::Status AllReduce(absl::Span<const CollectiveRank>, DataType, size_t,
                         CollectiveReduceOp) override {
    return Fail();
  }
  absl::Status AllGather(absl::Span<const CollectiveRank>, DataType, size_t) override {
    return Fail();
  }
  absl::Status ReduceScatter(absl::Span<const CollectiveRank>, DataType, size_t,
                             CollectiveReduceOp) override {
    return Fail();
  }

 private:
  absl::Status Fail() {
    return absl::InternalError("nccl all-gather on devices [0, 1]: unhandled cuda error");
  }
  std::vector<Device*> devices_;
};

// Verifies that a communicator that fails is dropped and the next
// collective over the same devices builds a fresh one, and that outputs
// allocated for the failed call are freed.
TEST_F(CollectiveEngineTest, FailedCommunicatorIsRebuiltOnNextUse) {
  auto scratch = memory_->NewScratchAllocator();
  int built = 0;
  Build([&](std::vector<Device*> ds) -> absl::StatusOr<std::unique_ptr<Communicator>> {
    if (built++ == 0) return std::unique_ptr<Communicator>(new FailingCommunicator(ds));
    auto c = HostCommunicator::Create(ds, scratch.get());
    if (!c.ok()) return c.status();
    return std::unique_ptr<Communicator>(*std::move(c));
  });
  const DataType t = DataType::kFp32;
  std::vector<TensorId> ids = {MakeTensor(0, t, {4}, Inputs(t, 0, 4)),
                               MakeTensor(1, t, {4}, Inputs(t, 1, 4))};
  const uint64_t tensors_before = memory_->GetStats()[0].active_tensors;
  CollectiveRequest req;
  req.kind = CollectiveKind::kAllGather;
  req.tensors = ids;
  auto failed = engine_->Run(req);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(absl::StrContains(failed.status().message(), "unhandled cuda error"));
  EXPECT_EQ(memory_->GetStats()[0].active_tensors, tensors_before);
  auto ok = engine_->Run(req);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(built, 2);
  CommStats stats;
  engine_->FillStats(&stats);
  EXPECT_EQ(stats.communicator_rebuilds, 1u);
  EXPECT_EQ(stats.communicators_created, 2u);
  EXPECT_EQ(stats.ops[static_cast<int>(CommOp::kAllGather)].errors, 1u);
  EXPECT_NE(Scrape().find("inferd_comm_errors_total{op=\"all_gather\"} 1"), std::string::npos);
  engine_.reset();  // before `scratch`
}

// Verifies that the tensors of a running collective are pinned: a free
// attempted meanwhile is refused, never a use-after-free.
TEST_F(CollectiveEngineTest, TensorsArePinnedWhileTheCollectiveRuns) {
  absl::Notification entered, release;
  auto scratch = memory_->NewScratchAllocator();
  Build([&](std::vector<Device*> ds) -> absl::StatusOr<std::unique_ptr<Communicator>> {
    entered.Notify();
    release.WaitForNotification();
    auto c = HostCommunicator::Create(ds, scratch.get());
    if (!c.ok()) return c.status();
    return std::unique_ptr<Communicator>(*std::move(c));
  });
  const DataType t = DataType::kFp32;
  std::vector<TensorId> ids = {MakeTensor(0, t, {4}, Inputs(t, 0, 4)),
                               MakeTensor(1, t, {4}, Inputs(t, 1, 4))};
  CollectiveRequest req;
  req.tensors = ids;
  absl::Notification done;
  engine_->Submit(req, [&](absl::StatusOr<CollectiveResult> r) {
    EXPECT_TRUE(r.ok()) << r.status();
    done.Notify();
  });
  entered.WaitForNotification();
  absl::Status st = memory_->FreeTensor(ids[1]);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  release.Notify();
  done.WaitForNotification();
  EXPECT_TRUE(memory_->FreeTensor(ids[1]).ok());
  engine_.reset();
}

TEST(HostCommunicatorTest, RejectsWrongRanksAndTypes) {
  HostDeviceOptions o;
  HostDevice d0(o);
  o.index = 1;
  HostDevice d1(o);
  auto alloc = NewRawDeviceAllocator();
  EXPECT_FALSE(HostCommunicator::Create({&d0, &d0}, alloc.get()).ok());
  auto comm = HostCommunicator::Create({&d0, &d1}, alloc.get());
  ASSERT_TRUE(comm.ok()) << comm.status();
  float a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8};
  std::vector<CollectiveRank> ranks = {{&d0.stream(0), a, a}, {&d1.stream(0), b, b}};
  EXPECT_EQ((*comm)->AllReduce(ranks, DataType::kInt16, 4, CollectiveReduceOp::kSum).code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<CollectiveRank> swapped = {{&d1.stream(0), a, a}, {&d0.stream(0), b, b}};
  EXPECT_EQ((*comm)->AllReduce(swapped, DataType::kFp32, 4, CollectiveReduceOp::kSum).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*comm)
                ->AllReduce(absl::MakeSpan(ranks).subspan(0, 1), DataType::kFp32, 4,
                            CollectiveReduceOp::kSum)
                .code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE((*comm)->AllReduce(ranks, DataType::kFp32, 4, CollectiveReduceOp::kMax).ok());
  ASSERT_TRUE(d0.Synchronize().ok());
  ASSERT_TRUE(d1.Synchronize().ok());
  EXPECT_EQ(a[0], 5);
  EXPECT_EQ(b[3], 8);
}

}  // namespace
}  // namespace inferd
