#include "core/comm/transfer_engine.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "tests/core/comm/comm_test_util.h"

namespace inferd {
namespace {

using testing_comm::CommFixture;
using testing_comm::DeviceSetup;
using testing_comm::StreamBlocker;
using testing_comm::WrappedDevice;

constexpr uint64_t kChunk = 4096;
constexpr uint64_t kThreshold = 1024;

// A limiter waiter for tests: advances the fake clock by each delay, and
// blocks at a gate while it is closed (so a test can hold a link busy at a
// known point). Thread-safe.
class GateWaiter final : public TokenWaiter {
 public:
  explicit GateWaiter(FakeClock* clock) : clock_(clock) {}

  void Close() {
    absl::MutexLock lock(&mu_);
    open_ = false;
  }
  void Open() {
    absl::MutexLock lock(&mu_);
    open_ = true;
  }
  // Returns once a worker waits at the closed gate.
  void AwaitBlocked() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&blocked_));
  }
  int calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }

  void WaitFor(absl::Duration delay) override {
    {
      absl::MutexLock lock(&mu_);
      ++calls_;
      blocked_ = !open_ && !cancelled_;
      auto go = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return open_ || cancelled_; };
      mu_.Await(absl::Condition(&go));
      blocked_ = false;
    }
    clock_->Advance(delay);
  }
  void Cancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
  }

 private:
  FakeClock* const clock_;
  absl::Mutex mu_;
  bool open_ ABSL_GUARDED_BY(mu_) = true;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool blocked_ ABSL_GUARDED_BY(mu_) = false;
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
};

class TransferEngineTest : public CommFixture {
 protected:
  static TransferEngineOptions Options() {
    TransferEngineOptions o;
    o.chunk_bytes = kChunk;
    o.overlap_threshold_bytes = kThreshold;
    o.bandwidth_limit = 1.0;
    o.direct_piece_time = absl::ZeroDuration();
    o.window = 3;
    LinkPeaks peaks;
    for (double& p : peaks.bytes_per_second) p = 100e6;
    o.link_peaks = peaks;
    return o;
  }

  void Build(TransferEngineOptions options = Options(), DeviceSetup setup = DeviceSetup{}) {
    BuildDevices(setup);
    metrics_ = std::make_unique<CommMetrics>(registry_);
    waiter_ = std::make_unique<GateWaiter>(&clock_);
    auto engine = TransferEngine::Create(options, raw_, memory_.get(), &clock_, metrics_.get(),
                                         waiter_.get());
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = *std::move(engine);
  }

  TransferInfo Wait(const TransferId& id) {
    auto info = engine_->WaitTransfer(id, absl::InfiniteFuture(), /*release_host_data=*/false);
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? *info : TransferInfo();
  }

  TransferInfo CopyTo(const TensorId& src, int dst, bool move = false) {
    TransferRequest r;
    r.source_tensor = src;
    r.dst_device = dst;
    r.move = move;
    auto id = engine_->AsyncTransfer(r);
    EXPECT_TRUE(id.ok()) << id.status();
    return id.ok() ? Wait(*id) : TransferInfo();
  }

  // Transfers that AsyncTransfer's caller issued on link `name`.
  // Queues a transfer 0 -> 1 of `bytes` at priority `p`; `name` joins the
  // completion order when it succeeds. Returns its id (invalid on failure,
  // which the test reports).
  TransferId SubmitNamed(TransferPriority p, uint64_t bytes, const std::string& name) {
    TransferRequest r;
    r.source_tensor =
        MakeTensor(0, DataType::kUint8, {static_cast<int64_t>(bytes)}, Pattern(bytes, 9));
    r.dst_device = 1;
    r.priority = p;
    auto id = engine_->AsyncTransfer(r);
    EXPECT_TRUE(id.ok()) << id.status();
    if (!id.ok()) return TransferId();
    {
      absl::MutexLock lock(&order_mu_);
      ++named_;
    }
    engine_->NotifyWhenDone(*id, absl::InfiniteFuture(), false,
                            [this, name](absl::StatusOr<TransferInfo> info) {
                              EXPECT_TRUE(info.ok() && info->state == TransferState::kSucceeded);
                              absl::MutexLock lock(&order_mu_);
                              order_.push_back(name);
                            });
    return *id;
  }
  // Waits until every SubmitNamed transfer has finished; returns the names
  // in completion order.
  std::vector<std::string> AwaitCompletionOrder() {
    absl::MutexLock lock(&order_mu_);
    auto all_done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(order_mu_) {
      return static_cast<int>(order_.size()) == named_;
    };
    order_mu_.Await(absl::Condition(&all_done));
    return order_;
  }

  uint64_t CallerIssued(const std::string& name) {
    CommStats stats;
    engine_->FillStats(&stats);
    for (const LinkStats& l : stats.links) {
      if (l.link == name) return l.caller_issued;
    }
    return 0;
  }

  static uint32_t ExpectedChunks(uint64_t bytes) {
    if (bytes == 0) return 0;
    if (bytes < kThreshold) return 1;
    return static_cast<uint32_t>((bytes + kChunk - 1) / kChunk);
  }

  std::unique_ptr<CommMetrics> metrics_;
  std::unique_ptr<GateWaiter> waiter_;
  std::unique_ptr<TransferEngine> engine_;
  absl::Mutex order_mu_;
  std::vector<std::string> order_ ABSL_GUARDED_BY(order_mu_);
  int named_ ABSL_GUARDED_BY(order_mu_) = 0;
};

constexpr uint64_t kSizes[] = {0,      1,          kThreshold - 1, kThreshold,     kChunk - 1,
                               kChunk, kChunk + 1, 3 * kChunk,     10 * kChunk + 7};

TEST_F(TransferEngineTest, DeviceCopiesAreBitIdenticalAcrossChunkBoundaries) {
  Build();
  for (uint64_t bytes : kSizes) {
    for (int dst : {0, 1}) {  // local, then peer
      SCOPED_TRACE(absl::StrCat(bytes, " bytes to device ", dst));
      const std::vector<uint8_t> data = Pattern(bytes, static_cast<uint32_t>(bytes));
      TensorId src = MakeTensor(0, DataType::kUint8, {static_cast<int64_t>(bytes)}, data);
      TransferInfo info = CopyTo(src, dst);
      ASSERT_EQ(info.state, TransferState::kSucceeded) << info.status;
      EXPECT_EQ(info.kind, dst == 0 ? LinkKind::kLocal : LinkKind::kPeer);
      EXPECT_EQ(info.chunks, ExpectedChunks(bytes));
      EXPECT_EQ(info.chunks_done, info.chunks);
      ASSERT_TRUE(info.result.has_value());
      EXPECT_NE(info.result->id, src);
      EXPECT_EQ(info.result->device, dst);
      EXPECT_EQ(info.result->owner, "test");
      EXPECT_EQ(ReadTensor(info.result->id), data);
      EXPECT_TRUE(memory_->FreeTensor(src).ok());
      EXPECT_TRUE(memory_->FreeTensor(info.result->id).ok());
    }
  }
}

// Verifies the staged path: without peer access, device-to-device copies go
// through the pinned staging ring, chunk by chunk, bytes intact.
TEST_F(TransferEngineTest, StagedCopiesWithoutPeerAccessAreBitIdentical) {
  DeviceSetup setup;
  setup.wrapped = true;
  setup.peer_access = false;
  Build(Options(), setup);
  for (uint64_t bytes : kSizes) {
    SCOPED_TRACE(absl::StrCat(bytes, " bytes"));
    const std::vector<uint8_t> data = Pattern(bytes, 7);
    TensorId src = MakeTensor(2, DataType::kUint8, {static_cast<int64_t>(bytes)}, data);
    TransferInfo info = CopyTo(src, 3);
    ASSERT_EQ(info.state, TransferState::kSucceeded) << info.status;
    EXPECT_EQ(info.kind, LinkKind::kStaged);
    EXPECT_EQ(info.link, "2->3");
    EXPECT_EQ(info.chunks, ExpectedChunks(bytes));
    EXPECT_EQ(ReadTensor(info.result->id), data);
  }
}

// Verifies the pipelines with fully asynchronous streams (work runs on the
// streams' threads, as on a GPU): staged, h2d and d2h paths stay intact.
TEST_F(TransferEngineTest, AsynchronousStreamsKeepEveryPathBitIdentical) {
  DeviceSetup setup;
  setup.wrapped = true;
  setup.peer_access = false;
  setup.inline_when_idle = false;
  Build(Options(), setup);
  for (uint64_t bytes : kSizes) {
    SCOPED_TRACE(absl::StrCat(bytes, " bytes"));
    const std::vector<uint8_t> data = Pattern(bytes, 11);
    TransferRequest up;
    up.host_source = HostSource{data.data(), bytes, false, nullptr};
    up.dtype = DataType::kUint8;
    up.shape = {static_cast<int64_t>(bytes)};
    up.dst_device = 0;
    auto up_id = engine_->AsyncTransfer(up);
    ASSERT_TRUE(up_id.ok()) << up_id.status();
    TransferInfo in = Wait(*up_id);
    ASSERT_EQ(in.state, TransferState::kSucceeded) << in.status;
    TransferInfo staged = CopyTo(in.result->id, 1);
    ASSERT_EQ(staged.state, TransferState::kSucceeded) << staged.status;
    EXPECT_EQ(staged.kind, LinkKind::kStaged);
    TransferRequest down;
    down.source_tensor = staged.result->id;
    auto down_id = engine_->AsyncTransfer(down);
    ASSERT_TRUE(down_id.ok()) << down_id.status();
    TransferInfo out = Wait(*down_id);
    ASSERT_EQ(out.state, TransferState::kSucceeded) << out.status;
    ASSERT_NE(out.host_data, nullptr);
    EXPECT_EQ(std::vector<uint8_t>(out.host_data->begin(), out.host_data->end()), data);
  }
}

TEST_F(TransferEngineTest, HostUploadAndDownloadRoundTrip) {
  Build();
  for (uint64_t bytes : {uint64_t{4}, kChunk * 5 + 12}) {
    for (bool pinned : {false, true}) {
      SCOPED_TRACE(absl::StrCat(bytes, " bytes, pinned ", pinned));
      auto data = std::make_shared<std::vector<uint8_t>>(Pattern(bytes, 3));
      TransferRequest up;
      up.host_source = HostSource{data->data(), bytes, pinned, data};
      up.dtype = DataType::kFp32;
      up.shape = {static_cast<int64_t>(bytes / 4)};
      up.owner = "alice";
      up.dst_device = 2;
      auto id = engine_->AsyncTransfer(up);
      ASSERT_TRUE(id.ok()) << id.status();
      TransferInfo in = Wait(*id);
      ASSERT_EQ(in.state, TransferState::kSucceeded) << in.status;
      EXPECT_EQ(in.link, "host->2");
      EXPECT_EQ(in.result->owner, "alice");
      EXPECT_EQ(in.result->dtype, DataType::kFp32);
      EXPECT_EQ(ReadTensor(in.result->id), *data);

      TransferRequest down;
      down.source_tensor = in.result->id;
      down.dst_device = kHostEndpoint;
      std::vector<uint8_t> target(bytes);
      if (pinned) down.host_destination = HostDestination{target.data(), bytes, true, nullptr};
      auto did = engine_->AsyncTransfer(down);
      ASSERT_TRUE(did.ok()) << did.status();
      auto out = engine_->WaitTransfer(*did, absl::InfiniteFuture(), /*release_host_data=*/true);
      ASSERT_TRUE(out.ok()) << out.status();
      ASSERT_EQ(out->state, TransferState::kSucceeded) << out->status;
      EXPECT_EQ(out->kind, LinkKind::kDeviceToHost);
      if (pinned) {
        EXPECT_EQ(out->host_data, nullptr);
        EXPECT_EQ(target, *data);
      } else {
        ASSERT_NE(out->host_data, nullptr);
        EXPECT_EQ(std::vector<uint8_t>(out->host_data->begin(), out->host_data->end()), *data);
        // Handed over once.
        auto again = engine_->GetTransfer(*did);
        ASSERT_TRUE(again.ok());
        EXPECT_EQ(again->host_data, nullptr);
        EXPECT_TRUE(again->host_data_released);
      }
    }
  }
}

TEST_F(TransferEngineTest, MoveFreesTheSourceAndReturnsANewHandle) {
  Build();
  const std::vector<uint8_t> data = Pattern(3 * kChunk, 1);
  TensorId src = MakeTensor(0, DataType::kUint8, {3 * kChunk}, data);
  TransferInfo info = CopyTo(src, 3, /*move=*/true);
  ASSERT_EQ(info.state, TransferState::kSucceeded) << info.status;
  EXPECT_TRUE(info.source_freed);
  EXPECT_EQ(memory_->GetTensorInfo(src).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ReadTensor(info.result->id), data);
}

// Verifies pin protection: while a transfer runs, its source cannot be
// freed (FAILED_PRECONDITION); afterwards it can.
TEST_F(TransferEngineTest, SourceCannotBeFreedMidFlight) {
  TransferEngineOptions o = Options();
  o.bandwidth_limit = 0.5;  // the limiter calls the gate from the 2nd piece on
  Build(o);
  TensorId src = MakeTensor(0, DataType::kUint8, {4 * kChunk}, Pattern(4 * kChunk, 2));
  waiter_->Close();
  TransferRequest r;
  r.source_tensor = src;
  r.dst_device = 1;
  auto id = engine_->AsyncTransfer(r);
  ASSERT_TRUE(id.ok()) << id.status();
  waiter_->AwaitBlocked();
  absl::Status st = memory_->FreeTensor(src);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_EQ(engine_->GetTransfer(*id)->state, TransferState::kRunning);
  waiter_->Open();
  EXPECT_EQ(Wait(*id).state, TransferState::kSucceeded);
  EXPECT_TRUE(memory_->FreeTensor(src).ok());
}

// Verifies the fast path: on an idle link a one-piece direct copy (local,
// peer, pinned host memory) is issued by AsyncTransfer's caller and arrives
// intact however it is waited for — without a deadline (the waiting thread
// completes it), with one or through NotifyWhenDone (the link's worker
// does); copies of more than one piece go through the worker.
TEST_F(TransferEngineTest, IdleLinkOnePieceCopiesAreIssuedByTheCaller) {
  DeviceSetup setup;
  setup.inline_when_idle = false;  // asynchronous streams, as on a GPU
  Build(Options(), setup);
  enum class WaitBy { kNoDeadline, kDeadline, kNotify };
  auto wait = [&](const TransferId& id, WaitBy how) -> TransferInfo {
    if (how == WaitBy::kNoDeadline) return Wait(id);
    if (how == WaitBy::kDeadline) {
      auto info = engine_->WaitTransfer(id, absl::Now() + absl::Hours(1));
      EXPECT_TRUE(info.ok()) << info.status();
      return info.ok() ? *info : TransferInfo();
    }
    absl::Notification done;
    TransferInfo out;
    engine_->NotifyWhenDone(id, absl::InfiniteFuture(), false,
                            [&](absl::StatusOr<TransferInfo> info) {
                              EXPECT_TRUE(info.ok()) << info.status();
                              if (info.ok()) out = *std::move(info);
                              done.Notify();
                            });
    done.WaitForNotification();
    return out;
  };
  uint64_t caller_issued[2] = {0, 0};
  for (int dst : {0, 1}) {
    for (uint64_t bytes : {uint64_t{1}, kThreshold - 1, kChunk, kChunk + 1}) {
      for (WaitBy how : {WaitBy::kNoDeadline, WaitBy::kDeadline, WaitBy::kNotify}) {
        SCOPED_TRACE(
            absl::StrCat(bytes, " bytes to device ", dst, ", wait ", static_cast<int>(how)));
        const std::vector<uint8_t> data = Pattern(bytes, static_cast<uint32_t>(bytes + dst));
        TensorId src = MakeTensor(0, DataType::kUint8, {static_cast<int64_t>(bytes)}, data);
        TransferRequest r;
        r.source_tensor = src;
        r.dst_device = dst;
        auto id = engine_->AsyncTransfer(r);
        ASSERT_TRUE(id.ok()) << id.status();
        if (bytes <= kChunk) ++caller_issued[dst];
        EXPECT_EQ(CallerIssued(dst == 0 ? "0->0" : "0->1"), caller_issued[dst]);
        TransferInfo info = wait(*id, how);
        ASSERT_EQ(info.state, TransferState::kSucceeded) << info.status;
        EXPECT_EQ(info.chunks, ExpectedChunks(bytes));
        EXPECT_EQ(info.chunks_done, info.chunks);
        ASSERT_TRUE(info.result.has_value());
        EXPECT_EQ(ReadTensor(info.result->id), data);
        EXPECT_TRUE(memory_->FreeTensor(src).ok());
        EXPECT_TRUE(memory_->FreeTensor(info.result->id).ok());
      }
    }
  }
  // Pinned host memory in and out: direct too.
  const std::vector<uint8_t> data = Pattern(kChunk, 5);
  TransferRequest up;
  up.host_source = HostSource{data.data(), kChunk, /*pinned=*/true, nullptr};
  up.dtype = DataType::kUint8;
  up.shape = {static_cast<int64_t>(kChunk)};
  up.dst_device = 2;
  auto up_id = engine_->AsyncTransfer(up);
  ASSERT_TRUE(up_id.ok()) << up_id.status();
  TransferInfo in = Wait(*up_id);
  ASSERT_EQ(in.state, TransferState::kSucceeded) << in.status;
  EXPECT_EQ(ReadTensor(in.result->id), data);
  std::vector<uint8_t> back(kChunk);
  TransferRequest down;
  down.source_tensor = in.result->id;
  down.host_destination = HostDestination{back.data(), kChunk, /*pinned=*/true, nullptr};
  auto down_id = engine_->AsyncTransfer(down);
  ASSERT_TRUE(down_id.ok()) << down_id.status();
  ASSERT_EQ(Wait(*down_id).state, TransferState::kSucceeded);
  EXPECT_EQ(back, data);
  EXPECT_EQ(CallerIssued("host->2"), 1u);
  EXPECT_EQ(CallerIssued("2->host"), 1u);
  CommStats stats;
  engine_->FillStats(&stats);
  EXPECT_EQ(stats.active_transfers, 0u);
}

// Verifies pin protection on the fast path: while a caller-issued copy is
// held on its stream, its source cannot be freed and the transfer reports
// running; once the stream moves on it completes intact.
TEST_F(TransferEngineTest, CallerIssuedCopyKeepsItsSourcePinnedUntilDone) {
  DeviceSetup setup;
  setup.inline_when_idle = false;
  Build(Options(), setup);
  const std::vector<uint8_t> data = Pattern(kChunk, 12);
  TensorId src = MakeTensor(0, DataType::kUint8, {kChunk}, data);
  StreamBlocker blocker(raw_[1]->stream(1));  // the link's first stream
  TransferRequest r;
  r.source_tensor = src;
  r.dst_device = 1;
  auto id = engine_->AsyncTransfer(r);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(CallerIssued("0->1"), 1u);
  absl::Status st = memory_->FreeTensor(src);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  auto now = engine_->WaitTransfer(*id, absl::InfinitePast());
  ASSERT_TRUE(now.ok()) << now.status();
  EXPECT_EQ(now->state, TransferState::kRunning);
  blocker.Release();
  TransferInfo info = Wait(*id);
  ASSERT_EQ(info.state, TransferState::kSucceeded) << info.status;
  EXPECT_EQ(ReadTensor(info.result->id), data);
  EXPECT_TRUE(memory_->FreeTensor(src).ok());
}

// Verifies that the fast path keeps the limiter honest: a caller-issued
// copy takes its tokens up front; without tokens at hand a transfer goes
// through the worker, which waits for them. On the fake clock (advanced
// only by those waits) back-to-back copies hold the cap.
TEST_F(TransferEngineTest, CallerIssuedCopiesStayWithinTheBandwidthLimit) {
  TransferEngineOptions o = Options();
  o.bandwidth_limit = 0.4;  // of the injected 100 MB/s peak: 40 MB/s, burst one piece
  Build(o);
  const std::vector<uint8_t> data = Pattern(kChunk, 3);
  TensorId src = MakeTensor(0, DataType::kUint8, {kChunk}, data);
  constexpr int kCopies = 16;
  const absl::Time start = clock_.Now();
  for (int i = 0; i < kCopies; ++i) {
    TransferInfo info = CopyTo(src, 1);
    ASSERT_EQ(info.state, TransferState::kSucceeded) << info.status;
    EXPECT_EQ(ReadTensor(info.result->id), data);
    EXPECT_TRUE(memory_->FreeTensor(info.result->id).ok());
  }
  // Only the first found the (full) bucket's tokens; every later one paid
  // one piece's worth of refill.
  EXPECT_EQ(CallerIssued("0->1"), 1u);
  const double seconds = absl::ToDoubleSeconds(clock_.Now() - start);
  EXPECT_GE(seconds, (kCopies - 1) * static_cast<double>(kChunk) / 40e6 * 0.999);
  EXPECT_LE(static_cast<double>(kCopies - 1) * kChunk / seconds, 40e6 * 1.001);
  // Once the bucket has refilled, the caller issues again.
  clock_.Advance(absl::Seconds(2 * static_cast<double>(kChunk) / 40e6));
  ASSERT_EQ(CopyTo(src, 1).state, TransferState::kSucceeded);
  EXPECT_EQ(CallerIssued("0->1"), 2u);
}

// Verifies that a caller-issued copy makes its link busy: transfers that
// arrive meanwhile queue and, once it is done, run strictly by priority,
// FIFO within a priority — as behind the worker's own pieces.
TEST_F(TransferEngineTest, LinkBusyWithCallerIssuedCopyServesQueuedTransfersByPriority) {
  DeviceSetup setup;
  setup.wrapped = true;
  setup.inline_when_idle = false;
  Build(Options(), setup);
  StreamBlocker blocker(raw_[1]->stream(1));
  SubmitNamed(TransferPriority::kBackground, kChunk, "caller");
  ASSERT_EQ(CallerIssued("0->1"), 1u);
  // The link's worker now waits for the held copy; nothing it could issue.
  static_cast<WrappedDevice*>(raw_[1])->AwaitEventWaiters(1);
  SubmitNamed(TransferPriority::kBackground, 2 * kChunk, "first");
  SubmitNamed(TransferPriority::kLow, kChunk, "low");
  SubmitNamed(TransferPriority::kNormal, kChunk, "normal");
  SubmitNamed(TransferPriority::kBackground, kChunk, "background");
  SubmitNamed(TransferPriority::kCritical, kChunk, "critical-1");
  SubmitNamed(TransferPriority::kHigh, kChunk, "high");
  SubmitNamed(TransferPriority::kCritical, kChunk, "critical-2");
  EXPECT_EQ(CallerIssued("0->1"), 1u);
  CommStats stats;
  engine_->FillStats(&stats);
  EXPECT_EQ(stats.links[0].queued, 7u);
  EXPECT_EQ(stats.active_transfers, 8u);
  blocker.Release();
  EXPECT_EQ(AwaitCompletionOrder(), (std::vector<std::string>{"caller", "critical-1", "critical-2", "high", "normal",
                                             "low", "first", "background"}));
}

TEST_F(TransferEngineTest, FreedSourceIsRefusedUpFront) {
  Build();
  TensorId src = MakeTensor(0, DataType::kUint8, {16}, Pattern(16, 2));
  ASSERT_TRUE(memory_->FreeTensor(src).ok());
  TransferRequest r;
  r.source_tensor = src;
  r.dst_device = 1;
  EXPECT_EQ(engine_->AsyncTransfer(r).status().code(), absl::StatusCode::kNotFound);
}

// Verifies priority order on a busy link: with the link held at a known
// point, transfers queued meanwhile run strictly by priority, FIFO within a
// priority.
TEST_F(TransferEngineTest, BusyLinkServesQueuedTransfersByPriority) {
  TransferEngineOptions o = Options();
  o.bandwidth_limit = 0.5;
  Build(o);
  waiter_->Close();
  SubmitNamed(TransferPriority::kBackground, 2 * kChunk, "first");  // held at its 2nd piece
  waiter_->AwaitBlocked();
  SubmitNamed(TransferPriority::kLow, kChunk, "low");
  SubmitNamed(TransferPriority::kNormal, kChunk, "normal");
  SubmitNamed(TransferPriority::kBackground, kChunk, "background");
  SubmitNamed(TransferPriority::kCritical, kChunk, "critical-1");
  SubmitNamed(TransferPriority::kHigh, kChunk, "high");
  SubmitNamed(TransferPriority::kCritical, kChunk, "critical-2");
  CommStats stats;
  engine_->FillStats(&stats);
  EXPECT_EQ(stats.queue_depth[static_cast<int>(TransferPriority::kCritical)], 2u);
  EXPECT_EQ(stats.active_transfers, 7u);
  EXPECT_NE(Scrape().find("inferd_comm_queue_depth{priority=\"critical\"} 2"), std::string::npos);
  waiter_->Open();
  EXPECT_EQ(AwaitCompletionOrder(), (std::vector<std::string>{"first", "critical-1", "critical-2", "high", "normal",
                                             "low", "background"}));
}

// Verifies the limiter end to end: with a fake clock advanced only by the
// limiter's waits, a large transfer moves at the cap within 10%.
TEST_F(TransferEngineTest, BandwidthLimiterHoldsLinkWithinTenPercentOfCap) {
  TransferEngineOptions o = Options();
  o.bandwidth_limit = 0.4;  // of the injected 100 MB/s peak: 40 MB/s
  Build(o);
  const uint64_t bytes = 64 * kChunk;
  TensorId src = MakeTensor(0, DataType::kUint8, {bytes}, Pattern(bytes, 4));
  TransferInfo info = CopyTo(src, 1);
  ASSERT_EQ(info.state, TransferState::kSucceeded) << info.status;
  const double seconds = absl::ToDoubleSeconds(info.finished - info.started);
  ASSERT_GT(seconds, 0);
  const double achieved = static_cast<double>(bytes) / seconds;
  EXPECT_LE(achieved, 40e6 * 1.10);
  EXPECT_GE(achieved, 40e6 * 0.90);
  EXPECT_GT(waiter_->calls(), 60);
  CommStats stats;
  engine_->FillStats(&stats);
  ASSERT_EQ(stats.links.size(), 1u);
  EXPECT_EQ(stats.links[0].limit_bytes_per_second, 40e6);
  EXPECT_EQ(stats.links[0].peak_bytes_per_second, 100e6);
  EXPECT_NEAR(stats.links[0].bandwidth_bytes_per_second, achieved, 1);
}

TEST_F(TransferEngineTest, WaitsReturnTheCurrentStateAtTheirDeadline) {
  TransferEngineOptions o = Options();
  o.bandwidth_limit = 0.5;
  Build(o);
  TensorId src = MakeTensor(0, DataType::kUint8, {2 * kChunk}, Pattern(2 * kChunk, 5));
  waiter_->Close();
  TransferRequest r;
  r.source_tensor = src;
  r.dst_device = 1;
  auto id = engine_->AsyncTransfer(r);
  ASSERT_TRUE(id.ok());
  waiter_->AwaitBlocked();
  // A deadline already passed answers at once, with the state as it is.
  auto now = engine_->WaitTransfer(*id, absl::Now());
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(now->state, TransferState::kRunning);
  absl::Notification early, late;
  engine_->NotifyWhenDone(*id, absl::InfinitePast(), false, [&](absl::StatusOr<TransferInfo> i) {
    EXPECT_EQ(i->state, TransferState::kRunning);
    early.Notify();
  });
  EXPECT_TRUE(early.HasBeenNotified());
  engine_->NotifyWhenDone(*id, absl::InfiniteFuture(), false, [&](absl::StatusOr<TransferInfo> i) {
    EXPECT_EQ(i->state, TransferState::kSucceeded);
    late.Notify();
  });
  EXPECT_FALSE(late.HasBeenNotified());
  waiter_->Open();
  late.WaitForNotification();
  absl::Notification missing;
  engine_->NotifyWhenDone(TransferId{1, 2}, absl::InfiniteFuture(), false,
                          [&](absl::StatusOr<TransferInfo> i) {
                            EXPECT_EQ(i.status().code(), absl::StatusCode::kNotFound);
                            missing.Notify();
                          });
  EXPECT_TRUE(missing.HasBeenNotified());
}

TEST_F(TransferEngineTest, RejectsBadRequests) {
  Build();
  TensorId src = MakeTensor(1, DataType::kUint8, {16}, Pattern(16, 2));
  std::vector<uint8_t> bytes(16);
  struct Case {
    const char* what;
    TransferRequest request;
  };
  std::vector<Case> cases;
  {
    TransferRequest r;
    r.source_tensor = src;
    r.dst_device = 9;
    cases.push_back({"dst_device 9", r});
  }
  {
    TransferRequest r;
    r.host_source = HostSource{bytes.data(), 16, false, nullptr};
    r.dtype = DataType::kUint8;
    r.shape = {16};
    r.dst_device = kHostEndpoint;
    cases.push_back({"must name a dst_device", r});
  }
  {
    TransferRequest r;
    r.host_source = HostSource{bytes.data(), 16, false, nullptr};
    r.dtype = DataType::kFp32;
    r.shape = {5};
    r.dst_device = 0;
    cases.push_back({"holds 16 bytes", r});
  }
  {
    TransferRequest r;
    r.host_source = HostSource{bytes.data(), 16, false, nullptr};
    r.dtype = DataType::kUint8;
    r.shape = {16};
    r.dst_device = 0;
    r.move = true;
    cases.push_back({"move needs a source tensor", r});
  }
  {
    TransferRequest r;
    r.source_tensor = src;
    r.dst_device = 1;
    r.move = true;
    cases.push_back({"already lives on device 1", r});
  }
  for (const Case& c : cases) {
    auto id = engine_->AsyncTransfer(c.request);
    ASSERT_FALSE(id.ok()) << c.what;
    EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument) << id.status();
    EXPECT_TRUE(absl::StrContains(id.status().message(), c.what)) << id.status();
  }
  // No refusal leaves the source pinned.
  EXPECT_TRUE(memory_->FreeTensor(src).ok());
  EXPECT_EQ(engine_->GetTransfer(TransferId{1, 2}).status().code(), absl::StatusCode::kNotFound);
}

// Verifies error handling: a device copy that fails fails the transfer with
// its status, frees the destination tensor and releases the source.
TEST_F(TransferEngineTest, CopyFaultFailsTheTransferAndFreesTheDestination) {
  DeviceSetup setup;
  setup.wrapped = true;
  Build(Options(), setup);
  // Three pieces through the worker, then one the caller issues.
  for (uint64_t bytes : {3 * kChunk, kChunk}) {
    SCOPED_TRACE(absl::StrCat(bytes, " bytes"));
    TensorId src =
        MakeTensor(0, DataType::kUint8, {static_cast<int64_t>(bytes)}, Pattern(bytes, 6));
    const uint64_t before = memory_->GetStats()[1].active_tensors;
    static_cast<WrappedDevice*>(raw_[1])->fail_copies = true;
    TransferInfo info = CopyTo(src, 1);
    static_cast<WrappedDevice*>(raw_[1])->fail_copies = false;
    EXPECT_EQ(info.state, TransferState::kFailed);
    EXPECT_EQ(info.status.code(), absl::StatusCode::kInternal);
    EXPECT_TRUE(absl::StrContains(info.status.message(), "injected copy fault"));
    EXPECT_FALSE(info.result.has_value());
    EXPECT_EQ(memory_->GetStats()[1].active_tensors, before);
    EXPECT_TRUE(memory_->FreeTensor(src).ok());
  }
  EXPECT_EQ(CallerIssued("0->1"), 1u);
  CommStats stats;
  engine_->FillStats(&stats);
  EXPECT_EQ(stats.ops[static_cast<int>(CommOp::kTransfer)].errors, 2u);
  EXPECT_EQ(stats.active_transfers, 0u);
  EXPECT_NE(Scrape().find("inferd_comm_errors_total{op=\"transfer\"} 2"), std::string::npos);
  // The link is idle again: the next copy takes the fast path and succeeds.
  const std::vector<uint8_t> data = Pattern(kChunk, 8);
  TensorId src = MakeTensor(0, DataType::kUint8, {kChunk}, data);
  TransferInfo info = CopyTo(src, 1);
  ASSERT_EQ(info.state, TransferState::kSucceeded) << info.status;
  EXPECT_EQ(ReadTensor(info.result->id), data);
  EXPECT_EQ(CallerIssued("0->1"), 2u);
}

TEST_F(TransferEngineTest, StatsAndMetricsCountBytesByLink) {
  Build();
  TensorId src = MakeTensor(0, DataType::kUint8, {1000}, Pattern(1000, 6));
  ASSERT_EQ(CopyTo(src, 1).state, TransferState::kSucceeded);
  ASSERT_EQ(CopyTo(src, 1).state, TransferState::kSucceeded);
  CommStats stats;
  engine_->FillStats(&stats);
  ASSERT_EQ(stats.links.size(), 1u);
  EXPECT_EQ(stats.links[0].link, "0->1");
  EXPECT_EQ(stats.links[0].bytes, 2000u);
  EXPECT_EQ(stats.links[0].transfers, 2u);
  EXPECT_EQ(stats.ops[static_cast<int>(CommOp::kTransfer)].operations, 2u);
  EXPECT_EQ(stats.active_transfers, 0u);
  EXPECT_EQ(stats.chunk_bytes, kChunk);
  const std::string text = Scrape();
  EXPECT_NE(text.find("inferd_comm_bytes_total{link=\"0->1\",op=\"transfer\"} 2000"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("inferd_comm_operations_total{link=\"0->1\",op=\"transfer\"} 2"),
            std::string::npos);
  EXPECT_NE(text.find("inferd_comm_link_peak_bytes_per_second{link=\"0->1\"} 100000000"),
            std::string::npos);
  EXPECT_NE(text.find("inferd_comm_duration_seconds_count{op=\"transfer\"} 2"), std::string::npos);
}

// Verifies shutdown: the transfer in progress completes, those still queued
// fail with CANCELLED and release their pins and destinations.
TEST_F(TransferEngineTest, ShutdownCancelsQueuedTransfers) {
  TransferEngineOptions o = Options();
  o.bandwidth_limit = 0.5;
  Build(o);
  TensorId src = MakeTensor(0, DataType::kUint8, {2 * kChunk}, Pattern(2 * kChunk, 8));
  waiter_->Close();
  std::vector<absl::StatusCode> codes(3, absl::StatusCode::kUnknown);
  for (int i = 0; i < 3; ++i) {
    TransferRequest r;
    r.source_tensor = src;
    r.dst_device = 1;
    auto id = engine_->AsyncTransfer(r);
    ASSERT_TRUE(id.ok());
    engine_->NotifyWhenDone(
        *id, absl::InfiniteFuture(), false,
        [&codes, i](absl::StatusOr<TransferInfo> info) { codes[i] = info->status.code(); });
    if (i == 0) waiter_->AwaitBlocked();
  }
  engine_.reset();  // cancels the gate
  EXPECT_EQ(codes[0], absl::StatusCode::kOk);
  EXPECT_EQ(codes[1], absl::StatusCode::kCancelled);
  EXPECT_EQ(codes[2], absl::StatusCode::kCancelled);
  EXPECT_TRUE(memory_->FreeTensor(src).ok());
  EXPECT_EQ(memory_->GetStats()[1].active_tensors, 1u);  // the first copy only
}

// Verifies shutdown with a caller-issued copy nobody waits for: the engine
// completes it before it goes, answers its waiter and releases its pins.
TEST_F(TransferEngineTest, ShutdownCompletesCallerIssuedCopies) {
  DeviceSetup setup;
  setup.inline_when_idle = false;
  Build(Options(), setup);
  const std::vector<uint8_t> data = Pattern(kChunk, 10);
  TensorId src = MakeTensor(0, DataType::kUint8, {kChunk}, data);
  TransferRequest r;
  r.source_tensor = src;
  r.dst_device = 1;
  auto id = engine_->AsyncTransfer(r);
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_EQ(CallerIssued("0->1"), 1u);
  std::optional<TransferInfo> done;
  engine_->NotifyWhenDone(*id, absl::InfiniteFuture(), false,
                          [&done](absl::StatusOr<TransferInfo> info) {
                            ASSERT_TRUE(info.ok()) << info.status();
                            done = *std::move(info);
                          });
  engine_.reset();
  ASSERT_TRUE(done.has_value());
  EXPECT_EQ(done->state, TransferState::kSucceeded) << done->status;
  EXPECT_EQ(ReadTensor(done->result->id), data);
  EXPECT_TRUE(memory_->FreeTensor(src).ok());
  EXPECT_TRUE(memory_->FreeTensor(done->result->id).ok());
}

// Verifies that a result for the host above the reply limit is refused up
// front on every path to the host (dst_device -1 used to skip the check and
// fail only when the reply could not be sent, losing the data).
TEST_F(TransferEngineTest, HostResultAboveTheReplyLimitIsRefused) {
  TransferEngineOptions o = Options();
  o.max_host_result_bytes = 4 * kChunk;
  Build(o);
  TensorId big = MakeTensor(0, DataType::kUint8, {8 * kChunk}, Pattern(8 * kChunk, 1));
  TransferRequest r;
  r.source_tensor = big;
  r.dst_device = kHostEndpoint;
  absl::Status st = engine_->AsyncTransfer(r).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(st.message(), "server.max_send_message_bytes")) << st;
  TensorId small = MakeTensor(0, DataType::kUint8, {4 * kChunk}, Pattern(4 * kChunk, 2));
  r.source_tensor = small;
  auto id = engine_->AsyncTransfer(r);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(Wait(*id).state, TransferState::kSucceeded);
}

// Verifies that unfetched host results are bounded: beyond
// max_held_host_bytes the oldest are dropped (they used to stay, up to
// 1,024 transfers of any size).
TEST_F(TransferEngineTest, UnfetchedHostResultsAreBoundedOldestFirst) {
  TransferEngineOptions o = Options();
  o.max_held_host_bytes = 3 * kChunk;
  Build(o);
  TensorId src = MakeTensor(0, DataType::kUint8, {kChunk}, Pattern(kChunk, 3));
  std::vector<TransferId> ids;
  for (int i = 0; i < 5; ++i) {
    TransferRequest r;
    r.source_tensor = src;
    r.dst_device = kHostEndpoint;
    auto id = engine_->AsyncTransfer(r);
    ASSERT_TRUE(id.ok()) << id.status();
    ASSERT_EQ(Wait(*id).state, TransferState::kSucceeded);
    ids.push_back(*id);
  }
  for (int i = 0; i < 5; ++i) {
    auto info = engine_->GetTransfer(ids[static_cast<size_t>(i)]);
    ASSERT_TRUE(info.ok()) << info.status();
    if (i < 2) {
      EXPECT_EQ(info->host_data, nullptr) << i;
      EXPECT_TRUE(info->host_data_released) << i;
    } else {
      ASSERT_NE(info->host_data, nullptr) << i;
      EXPECT_EQ(info->host_data->size(), kChunk);
    }
  }
  // A result larger than the whole budget cannot be held at all.
  TensorId big = MakeTensor(0, DataType::kUint8, {4 * kChunk}, Pattern(4 * kChunk, 4));
  TransferRequest r;
  r.source_tensor = big;
  r.dst_device = kHostEndpoint;
  EXPECT_EQ(engine_->AsyncTransfer(r).status().code(), absl::StatusCode::kResourceExhausted);
}

// Verifies that host BYTES are checked before they are stored (ff ff ff ff
// used to become a tensor whose one element claimed 4 GiB).
TEST_F(TransferEngineTest, HostBytesWithABadLayoutAreRefused) {
  Build();
  auto bad = std::make_shared<std::string>("\xff\xff\xff\xff");
  TransferRequest r;
  r.host_source = HostSource{bad->data(), bad->size(), false, bad};
  r.dtype = DataType::kBytes;
  r.shape = {1};
  r.dst_device = 0;
  absl::Status st = engine_->AsyncTransfer(r).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(st.message(), "data: BYTES element 0")) << st;
  auto good = std::make_shared<std::string>(std::string("\x02\x00\x00\x00hi", 6));
  r.host_source = HostSource{good->data(), good->size(), false, good};
  auto id = engine_->AsyncTransfer(r);
  ASSERT_TRUE(id.ok()) << id.status();
  TransferInfo done = Wait(*id);
  ASSERT_EQ(done.state, TransferState::kSucceeded) << done.status;
  EXPECT_TRUE(memory_->Pin(done.result->id).ok());  // usable at once
}

}  // namespace
}  // namespace inferd
