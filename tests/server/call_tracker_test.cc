// TransportCalls against a real gRPC server in process: it counts a call
// from its first bytes, also one whose request has not arrived (which
// CallTracker cannot see), until it ends.
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "inference/grpc_service.grpc.pb.h"
#include "server/call_tracker.h"
#include "tests/testing/unsent_unary_call.h"

namespace inferd {
namespace {

// ServerLive holds each call until Release.
class HeldLive final : public inference::GRPCInferenceService::CallbackService {
 public:
  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* ctx,
                                       const inference::ServerLiveRequest*,
                                       inference::ServerLiveResponse* resp) override {
    resp->set_live(true);
    absl::MutexLock lock(&mu_);
    held_ = ctx->DefaultReactor();
    return held_;
  }
  bool Holding() {
    absl::MutexLock lock(&mu_);
    return held_ != nullptr;
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    if (held_ != nullptr) held_->Finish(grpc::Status::OK);
    held_ = nullptr;
  }

 private:
  absl::Mutex mu_;
  grpc::ServerUnaryReactor* held_ ABSL_GUARDED_BY(mu_) = nullptr;
};

class TransportInFlightTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    b.RegisterService(&service_);
    transport_ = std::make_unique<TransportCalls>();
    server_ = b.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    transport_->Identify();
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                                   grpc::InsecureChannelCredentials());
  }
  void TearDown() override {
    service_.Release();
    server_->Shutdown(std::chrono::system_clock::now());
  }

  // Polls until the count is `want` (a call's end reaches channelz once
  // its stream closes, just after the client has its answer).
  bool Reaches(int64_t want) {
    for (int i = 0; i < 5000; ++i) {
      if (transport_->InFlight() == want) return true;
      absl::SleepFor(absl::Milliseconds(2));
    }
    return false;
  }

  HeldLive service_;
  int port_ = 0;
  std::unique_ptr<TransportCalls> transport_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST(TransportCallsTest, NoServerMadeIsUnknown) {
  TransportCalls none;
  none.Identify();
  EXPECT_EQ(none.InFlight(), std::nullopt);
}

TEST_F(TransportInFlightTest, CountsAHandledCallUntilItEnds) {
  EXPECT_EQ(transport_->InFlight(), 0);
  auto stub = inference::GRPCInferenceService::NewStub(channel_);
  grpc::ClientContext ctx;
  inference::ServerLiveRequest req;
  inference::ServerLiveResponse resp;
  absl::Notification done;
  grpc::Status status;
  stub->async()->ServerLive(&ctx, &req, &resp, [&](grpc::Status s) {
    status = std::move(s);
    done.Notify();
  });
  for (int i = 0; i < 5000 && !service_.Holding(); ++i) absl::SleepFor(absl::Milliseconds(2));
  ASSERT_TRUE(service_.Holding());
  EXPECT_EQ(transport_->InFlight(), 1);
  service_.Release();
  done.WaitForNotification();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(Reaches(0));
}

// The case the drain needs it for: the call's headers arrived, its request
// message has not, so no handler has it yet.
TEST_F(TransportInFlightTest, CountsACallWhoseRequestIsStillArriving) {
  testing::UnsentUnaryCall call(channel_, "/inference.GRPCInferenceService/ServerLive");
  ASSERT_TRUE(call.started());
  EXPECT_TRUE(Reaches(1));
  EXPECT_FALSE(service_.Holding());  // no handler has the call
  // The request arrives: the handler takes it; released, the call ends.
  ASSERT_TRUE(call.Send(inference::ServerLiveRequest()));
  for (int i = 0; i < 5000 && !service_.Holding(); ++i) absl::SleepFor(absl::Milliseconds(2));
  ASSERT_TRUE(service_.Holding());
  EXPECT_EQ(transport_->InFlight(), 1);
  service_.Release();
  std::string reply;
  grpc::Status status = call.Finish(&reply);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(Reaches(0));
}

}  // namespace
}  // namespace inferd
