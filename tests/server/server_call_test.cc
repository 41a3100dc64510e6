#include "server/server_call.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "core/util/clock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "server/grpc_metrics.h"
#include "server/status_util.h"
#include "tests/server/server_test_util.h"

namespace inferd {
namespace {

using testing_server::Latency;
using testing_server::RequestCount;

constexpr char kMethod[] = "test.Service/Method";

// Stands in for a gRPC reactor: counts Finish calls.
struct FakeReactor {
  void Finish(const grpc::Status& status) {
    ++finishes;
    last = status;
  }
  int finishes = 0;
  grpc::Status last;
};

class ServerCallTest : public ::testing::Test {
 protected:
  prometheus::Registry registry_;
  GrpcMetrics metrics_{registry_};
  MethodMetrics* method_ = metrics_.ForMethod(kMethod);
  FakeClock clock_;
};

TEST_F(ServerCallTest, FinishesOnceAndRecordsTheFirstStatusOnly) {
  ServerCall call(method_, &clock_);
  FakeReactor reactor;
  EXPECT_FALSE(call.finished());
  EXPECT_TRUE(call.Finish(&reactor, absl::NotFoundError("tensor_id: no tensor 'x'")));
  EXPECT_TRUE(call.finished());
  EXPECT_FALSE(call.Finish(&reactor, absl::OkStatus()));
  EXPECT_FALSE(call.Finish(&reactor, absl::InternalError("late")));

  EXPECT_EQ(reactor.finishes, 1);
  EXPECT_EQ(reactor.last.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(reactor.last.error_message(), "tensor_id: no tensor 'x'");
  EXPECT_EQ(RequestCount(registry_, kMethod, "NOT_FOUND"), 1);
  EXPECT_EQ(RequestCount(registry_, kMethod, "OK"), 0);
  EXPECT_EQ(RequestCount(registry_, kMethod, "INTERNAL"), 0);
  EXPECT_EQ(Latency(registry_, kMethod).count, 1u);
}

TEST_F(ServerCallTest, EndReturnsTheWireStatusOnce) {
  ServerCall call(method_, &clock_);
  std::optional<grpc::Status> first = call.End(absl::OkStatus());
  ASSERT_TRUE(first.has_value());
  EXPECT_TRUE(first->ok());
  EXPECT_FALSE(call.End(absl::OkStatus()).has_value());
  EXPECT_EQ(RequestCount(registry_, kMethod, "OK"), 1);
}

TEST_F(ServerCallTest, RecordsEachCodeUnderItsName) {
  const std::vector<std::pair<absl::Status, std::string>> cases = {
      {absl::OkStatus(), "OK"},
      {absl::InvalidArgumentError("x"), "INVALID_ARGUMENT"},
      {absl::ResourceExhaustedError("x"), "RESOURCE_EXHAUSTED"},
      {absl::CancelledError("x"), "CANCELLED"},
      {absl::UnavailableError("x"), "UNAVAILABLE"},
  };
  for (const auto& [status, name] : cases) {
    ServerCall call(method_, &clock_);
    FakeReactor reactor;
    call.Finish(&reactor, status);
    EXPECT_EQ(static_cast<int>(reactor.last.error_code()), static_cast<int>(status.code()));
    EXPECT_EQ(RequestCount(registry_, kMethod, name), 1) << name;
  }
}

TEST_F(ServerCallTest, LatencyRunsFromConstructionToFinish) {
  ServerCall call(method_, &clock_);
  EXPECT_EQ(call.start(), clock_.Now());
  clock_.Advance(absl::Milliseconds(250));
  FakeReactor reactor;
  call.Finish(&reactor, absl::OkStatus());
  clock_.Advance(absl::Seconds(10));  // after the finish: not counted
  EXPECT_DOUBLE_EQ(Latency(registry_, kMethod).sum, 0.25);
}

TEST_F(ServerCallTest, LongMessagesAreCutByTheOneConversion) {
  ServerCall call(method_, &clock_);
  FakeReactor reactor;
  call.Finish(&reactor, absl::InvalidArgumentError(std::string(5000, 'x')));
  EXPECT_LT(reactor.last.error_message().size(), 5000u);
  EXPECT_EQ(reactor.last.error_message(),
            ToGrpcStatus(absl::InvalidArgumentError(std::string(5000, 'x'))).error_message());
}

TEST_F(ServerCallTest, RacingFinishesHaveOneWinner) {
  for (int round = 0; round < 50; ++round) {
    ServerCall call(method_, &clock_);
    std::atomic<int> won{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        if (call.End(absl::CancelledError("race")).has_value()) won.fetch_add(1);
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(won.load(), 1);
  }
  EXPECT_EQ(RequestCount(registry_, kMethod, "CANCELLED"), 50);
}

TEST_F(ServerCallTest, NoMetricsStillFinishes) {
  ServerCall call(nullptr, &clock_);
  FakeReactor reactor;
  EXPECT_TRUE(call.Finish(&reactor, absl::OkStatus()));
  EXPECT_EQ(reactor.finishes, 1);
}

}  // namespace
}  // namespace inferd
