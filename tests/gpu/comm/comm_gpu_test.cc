// The comm engine on real GPUs: an NCCL communicator (one per device set,
// single-GPU when that is all there is) exercising every collective for
// every NCCL dtype, the copy fallback (enable_nccl false) bit for bit, and
// transfers over every link kind present. Skips without a GPU.
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/comm/comm_engine.h"
#include "core/device/communicator.h"
#include "core/device/discovery.h"
#include "core/memory/memory_engine.h"
#include "gtest/gtest.h"
#include "tests/core/comm/element_access.h"
#include "prometheus/registry.h"

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

constexpr uint64_t kMiB = 1ull << 20;

class CommGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto devices = DiscoverCudaDevices({}, 4);
    ASSERT_TRUE(devices.ok()) << devices.status();
    if (devices->empty()) GTEST_SKIP() << "no CUDA device";
    devices_ = *std::move(devices);
    for (auto& d : devices_) raw_.push_back(d.get());
    MemoryEngineOptions mo;
    mo.pool_size_mb = 64;
    mo.enable_monitoring = false;
    auto memory = MemoryEngine::Create(mo, raw_, Clock::Real(), registry_);
    ASSERT_TRUE(memory.ok()) << memory.status();
    memory_ = *std::move(memory);
  }

  void BuildComm(bool enable_nccl) {
    comm_.reset();
    CommEngineOptions o;
    o.collective.enable_nccl = enable_nccl;
    o.transfer.bandwidth_limit = 1.0;
    o.transfer.calibration_bytes = 16 * kMiB;
    auto comm = CommEngine::Create(o, raw_, memory_.get(), Clock::Real(), registry_);
    ASSERT_TRUE(comm.ok()) << comm.status();
    comm_ = *std::move(comm);
  }

  TensorId Make(int device, DataType t, std::vector<int64_t> shape, const std::vector<uint8_t>& b) {
    TensorRequest r;
    r.device = device;
    r.dtype = t;
    r.shape = std::move(shape);
    auto info = memory_->AllocateTensor(r);
    EXPECT_TRUE(info.ok()) << info.status();
    EXPECT_TRUE(memory_->WriteTensor(info->id, 0, b).ok());
    return info->id;
  }
  std::vector<uint8_t> Read(const TensorId& id) {
    std::vector<uint8_t> out(memory_->GetTensorInfo(id)->byte_size);
    EXPECT_TRUE(memory_->ReadTensor(id, 0, absl::MakeSpan(out)).ok());
    return out;
  }
  std::vector<uint8_t> Inputs(DataType t, int r, size_t n) {
    std::vector<uint8_t> v(n * DataTypeSize(t));
    for (size_t i = 0; i < n; ++i) Store(t, v.data(), i, Input(t, r, i));
    return v;
  }
  // Compares exactly, except NCCL's float prod/avg (its own order and
  // pre-scaling) within a relative 1e-2.
  void ExpectNear(DataType t, CollectiveReduceOp op, const std::vector<uint8_t>& got,
                  const std::vector<uint8_t>& want, bool exact) {
    ASSERT_EQ(got.size(), want.size());
    if (exact || !IsFloat(t) ||
        (op != CollectiveReduceOp::kProd && op != CollectiveReduceOp::kAvg)) {
      EXPECT_EQ(got, want);
      return;
    }
    for (size_t i = 0; i < got.size() / DataTypeSize(t); ++i) {
      const double g = Load(t, got.data(), i), w = Load(t, want.data(), i);
      EXPECT_NEAR(g, w, 1e-2 * std::max(1.0, std::fabs(w))) << i;
    }
  }

  // Runs every collective for every NCCL dtype over all the GPUs.
  void RunEveryCollective(bool nccl) {
    BuildComm(nccl);
    const int n = static_cast<int>(raw_.size());
    for (DataType t : kNcclTypes) {
      for (size_t count : {size_t{1}, size_t{1000}, size_t{(3u << 20) + 5}}) {
        SCOPED_TRACE(absl::StrCat(DataTypeName(t), " count=", count, " nccl=", nccl));
        const size_t elems = count * static_cast<size_t>(n);
        for (CollectiveReduceOp op : kOps) {
          std::vector<TensorId> ids;
          for (int d = 0; d < n; ++d) {
            ids.push_back(Make(d, t, {static_cast<int64_t>(elems)}, Inputs(t, d, elems)));
          }
          CollectiveRequest req;
          req.kind = CollectiveKind::kAllReduce;
          req.tensors = ids;
          req.op = op;
          auto all = comm_->collectives().Run(req);
          ASSERT_TRUE(all.ok()) << all.status();
          EXPECT_EQ(all->implementation, nccl ? "nccl" : "copy");
          std::vector<uint8_t> want(elems * DataTypeSize(t));
          for (size_t i = 0; i < elems; ++i) Store(t, want.data(), i, Reduced(t, op, i, n));
          ExpectNear(t, op, Read(ids[0]), want, !nccl);
          // ReduceScatter of the reduced tensors (all equal now): slice r of
          // op over n equal inputs — checked for sum only, the rest via
          // AllReduce above.
          if (op == CollectiveReduceOp::kSum) {
            req.kind = CollectiveKind::kReduceScatter;
            auto rs = comm_->collectives().Run(req);
            ASSERT_TRUE(rs.ok()) << rs.status();
            std::vector<uint8_t> slice(count * DataTypeSize(t));
            for (size_t i = 0; i < count; ++i) {
              double acc = Load(t, want.data(), i);
              for (int r = 1; r < n; ++r) acc = Round(t, acc + Load(t, want.data(), i));
              Store(t, slice.data(), i, acc);
            }
            EXPECT_EQ(Read(rs->outputs[0].id), slice);
            for (auto& o : rs->outputs) ASSERT_TRUE(memory_->FreeTensor(o.id).ok());
          }
          for (auto& id : ids) ASSERT_TRUE(memory_->FreeTensor(id).ok());
        }
        // AllGather and Broadcast.
        std::vector<TensorId> ids;
        for (int d = 0; d < n; ++d) {
          ids.push_back(Make(d, t, {static_cast<int64_t>(count)}, Inputs(t, d, count)));
        }
        CollectiveRequest g;
        g.kind = CollectiveKind::kAllGather;
        g.tensors = ids;
        auto gathered = comm_->collectives().Run(g);
        ASSERT_TRUE(gathered.ok()) << gathered.status();
        std::vector<uint8_t> cat;
        for (int d = 0; d < n; ++d) {
          auto part = Inputs(t, d, count);
          cat.insert(cat.end(), part.begin(), part.end());
        }
        for (auto& o : gathered->outputs) {
          EXPECT_EQ(Read(o.id), cat);
          ASSERT_TRUE(memory_->FreeTensor(o.id).ok());
        }
        CollectiveRequest b;
        b.kind = CollectiveKind::kBroadcast;
        b.tensors = ids;
        b.root = n - 1;
        ASSERT_TRUE(comm_->collectives().Run(b).ok());
        for (auto& id : ids) {
          EXPECT_EQ(Read(id), Inputs(t, n - 1, count));
          ASSERT_TRUE(memory_->FreeTensor(id).ok());
        }
      }
    }
    const CommStats stats = comm_->GetStats();
    EXPECT_EQ(stats.nccl_enabled, nccl && BuiltWithNccl());
    EXPECT_EQ(stats.communicators_created, 1u);  // one per device set, reused
  }

  prometheus::Registry registry_;
  std::vector<std::unique_ptr<Device>> devices_;
  std::vector<Device*> raw_;
  std::unique_ptr<MemoryEngine> memory_;
  std::unique_ptr<CommEngine> comm_;
};

TEST_F(CommGpuTest, NcclCommunicatorRunsEveryCollective) {
  if (!BuiltWithNccl()) GTEST_SKIP() << "built without NCCL";
  RunEveryCollective(/*nccl=*/true);
  comm_.reset();
}

TEST_F(CommGpuTest, CopyFallbackMatchesTheReferenceBitForBit) {
  RunEveryCollective(/*nccl=*/false);
  comm_.reset();
}

TEST_F(CommGpuTest, NcclCommunicatorRejectsUnsupportedTypesAndHostDevices) {
  if (!BuiltWithNccl()) GTEST_SKIP() << "built without NCCL";
  auto comm = NewNcclCommunicator({raw_[0]});
  ASSERT_TRUE(comm.ok()) << comm.status();
  void* buf = *raw_[0]->AllocateRaw(64);
  std::vector<CollectiveRank> ranks = {{&raw_[0]->stream(0), buf, buf}};
  EXPECT_EQ((*comm)->AllReduce(ranks, DataType::kInt16, 4, CollectiveReduceOp::kSum).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE((*comm)->AllReduce(ranks, DataType::kFp32, 4, CollectiveReduceOp::kSum).ok());
  EXPECT_TRUE(raw_[0]->Synchronize().ok());
  comm->reset();
  raw_[0]->FreeRaw(buf);
}

TEST_F(CommGpuTest, TransfersOverEveryLinkKindAreBitIdentical) {
  BuildComm(true);
  const int last = static_cast<int>(raw_.size()) - 1;
  for (uint64_t bytes : {uint64_t{1}, 4 * kMiB + 1, 33 * kMiB}) {
    std::vector<uint8_t> data(bytes);
    for (uint64_t i = 0; i < bytes; ++i) data[i] = static_cast<uint8_t>(i * 131 + (i >> 12));
    // Pageable upload (staged), then local, peer (or local) and download.
    TransferRequest up;
    up.host_source = HostSource{data.data(), bytes, false, nullptr};
    up.dtype = DataType::kUint8;
    up.shape = {static_cast<int64_t>(bytes)};
    up.dst_device = 0;
    auto& te = comm_->transfers();
    auto in = te.WaitTransfer(*te.AsyncTransfer(up), absl::InfiniteFuture());
    ASSERT_TRUE(in.ok() && in->state == TransferState::kSucceeded) << in->status;
    EXPECT_EQ(Read(in->result->id), data);
    for (int dst : {0, last}) {
      TransferRequest r;
      r.source_tensor = in->result->id;
      r.dst_device = dst;
      auto out = te.WaitTransfer(*te.AsyncTransfer(r), absl::InfiniteFuture());
      ASSERT_TRUE(out.ok() && out->state == TransferState::kSucceeded) << out->status;
      EXPECT_EQ(Read(out->result->id), data) << out->link;
      TransferRequest down;
      down.source_tensor = out->result->id;
      down.dst_device = kHostEndpoint;
      auto back = te.WaitTransfer(*te.AsyncTransfer(down), absl::InfiniteFuture());
      ASSERT_TRUE(back.ok() && back->state == TransferState::kSucceeded) << back->status;
      EXPECT_TRUE(std::equal(data.begin(), data.end(),
                             reinterpret_cast<const uint8_t*>(back->host_data->data())));
      ASSERT_TRUE(memory_->FreeTensor(out->result->id).ok());
    }
    ASSERT_TRUE(memory_->FreeTensor(in->result->id).ok());
  }
  comm_.reset();
}

// Verifies the fast path on real streams: one-piece local and peer copies
// on an idle link are issued by AsyncTransfer's caller and land intact,
// whether WaitTransfer completes them itself (no deadline) or the link's
// worker does (a deadline). Local copies are one piece up to ~1 ms of HBM
// bandwidth; peer ones as their link's speed allows.
TEST_F(CommGpuTest, CallerIssuedDeviceCopiesAreBitIdentical) {
  BuildComm(true);
  const int last = static_cast<int>(raw_.size()) - 1;
  auto& te = comm_->transfers();
  std::map<std::string, uint64_t> one_piece;  // by link
  for (uint64_t bytes : {uint64_t{1}, 16 * kMiB + 3, 64 * kMiB}) {
    std::vector<uint8_t> data(bytes);
    for (uint64_t i = 0; i < bytes; ++i) data[i] = static_cast<uint8_t>(i * 37 + (i >> 10));
    TensorId src = Make(0, DataType::kUint8, {static_cast<int64_t>(bytes)}, data);
    for (int dst : {0, last}) {
      for (bool deadline : {false, true}) {
        SCOPED_TRACE(absl::StrCat(bytes, " bytes to device ", dst, deadline ? ", deadline" : ""));
        TransferRequest r;
        r.source_tensor = src;
        r.dst_device = dst;
        auto id = te.AsyncTransfer(r);
        ASSERT_TRUE(id.ok()) << id.status();
        auto out = te.WaitTransfer(
            *id, deadline ? absl::Now() + absl::Minutes(1) : absl::InfiniteFuture());
        ASSERT_TRUE(out.ok() && out->state == TransferState::kSucceeded) << out->status;
        if (dst == 0) {
          EXPECT_EQ(out->chunks, 1u);
        }
        if (out->chunks == 1 && out->kind != LinkKind::kStaged) ++one_piece[out->link];
        EXPECT_EQ(Read(out->result->id), data) << out->link;
        ASSERT_TRUE(memory_->FreeTensor(out->result->id).ok());
      }
    }
    ASSERT_TRUE(memory_->FreeTensor(src).ok());
  }
  CommStats stats;
  te.FillStats(&stats);
  for (const LinkStats& l : stats.links) {
    if (l.src != 0) continue;
    EXPECT_EQ(l.caller_issued, one_piece[l.link]) << l.link;
  }
  EXPECT_GT(one_piece["0->0"], 0u);
  comm_.reset();
}

}  // namespace
}  // namespace inferd
