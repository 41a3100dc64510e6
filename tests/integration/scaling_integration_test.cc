// Starts the real inferd and drives its dynamic scaler over gRPC
// (inferd.v1.Scaling): client samples, stats, policy changes, decisions in
// the event history, and the inferd_scaler_* metrics.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "inferd/v1/scaling.grpc.pb.h"
#include "tests/integration/daemon_process.h"

namespace inferd {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using testing::DaemonProcess;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// One evaluation a second, no cooldowns, a lenient stability check, and two
// rules on the client-fed queue length: up above 50 at once, down below 1
// after 5 s.
constexpr char kConfig[] = R"(device:
  multi_gpu:
    performance_optimization:
      scale_up_cooldown: 0.0
      scale_down_cooldown: 0.0
      scaling_evaluation_interval: 1.0
      scaling_stability_threshold: 0.5
scaling:
  window_length_seconds: 30.0
  max_replicas: 4
  rules:
    - {direction: up, metric: queue_length, comparison: ">", threshold: 50, hold_seconds: 0}
    - {direction: down, metric: queue_length, comparison: "<", threshold: 1, hold_seconds: 5}
)";

class ScalingIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_path_ = testing::WriteTempFile(kConfig);
    std::vector<std::string> args = testing::DeviceArgs(2);
    args.push_back("--config=" + config_path_);
    daemon_ = std::make_unique<DaemonProcess>(args);
    ASSERT_TRUE(daemon_->started()) << daemon_->Stderr();
    channel_ = grpc::CreateChannel(daemon_->target(), grpc::InsecureChannelCredentials());
    stub_ = v1::Scaling::NewStub(channel_);
  }
  void TearDown() override {
    stub_.reset();
    channel_.reset();
    if (daemon_ != nullptr && daemon_->started()) {
      daemon_->Signal(SIGTERM);
      EXPECT_EQ(daemon_->Wait(absl::Seconds(30)), 0) << daemon_->Stderr();
    }
    std::remove(config_path_.c_str());
  }

  std::unique_ptr<grpc::ClientContext> Context() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    return ctx;
  }

  grpc::Status Collect(double queue_length, double processing_time, double throughput) {
    v1::CollectWorkloadMetricsRequest req;
    req.set_queue_length(queue_length);
    req.set_processing_time(processing_time);
    req.set_throughput(throughput);
    v1::CollectWorkloadMetricsResponse resp;
    return stub_->CollectWorkloadMetrics(Context().get(), req, &resp);
  }

  v1::GetScalingStatsResponse Stats() {
    v1::GetScalingStatsResponse resp;
    const grpc::Status st = stub_->GetScalingStats(Context().get(), {}, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp;
  }

  v1::ScalingPolicy Policy() {
    v1::GetScalingPolicyResponse resp;
    const grpc::Status st = stub_->GetScalingPolicy(Context().get(), {}, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.policy();
  }

  grpc::Status SetPolicy(const v1::ScalingPolicy& policy, v1::ScalingPolicy* in_force = nullptr) {
    v1::SetScalingPolicyRequest req;
    *req.mutable_policy() = policy;
    v1::SetScalingPolicyResponse resp;
    grpc::Status st = stub_->SetScalingPolicy(Context().get(), req, &resp);
    if (in_force != nullptr) *in_force = resp.policy();
    return st;
  }

  // Calls `step` until it returns true or 30 s pass (the daemon evaluates
  // once a second); returns whether it did.
  static bool WaitFor(const std::function<bool()>& step) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      if (step()) return true;
      absl::SleepFor(absl::Milliseconds(100));
    }
    return false;
  }

  static const v1::ScalingMetricWindow& Window(const v1::GetScalingStatsResponse& stats,
                                               v1::ScalingMetric metric) {
    for (const auto& w : stats.window()) {
      if (w.metric() == metric) return w;
    }
    ADD_FAILURE() << "no window for " << v1::ScalingMetric_Name(metric);
    return v1::ScalingMetricWindow::default_instance();
  }

  std::string config_path_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Scaling::Stub> stub_;
};

TEST_F(ScalingIntegrationTest, CollectedSamplesShowUpInStatsAggregates) {
  ASSERT_TRUE(Collect(2, 0.5, 10).ok());
  ASSERT_TRUE(Collect(4, 0.5, 10).ok());
  ASSERT_TRUE(Collect(6, 0.5, 10).ok());

  const v1::GetScalingStatsResponse stats = Stats();
  EXPECT_EQ(stats.counts().client_samples(), 3);
  // The window also holds the scheduler's own samples (an idle daemon feeds
  // zeros), so the client's values show up as the maxima, and the means
  // lie between the scheduler's zeros and the client's values.
  const v1::ScalingMetricWindow& queue = Window(stats, v1::SCALING_METRIC_QUEUE_LENGTH);
  EXPECT_GE(queue.count(), 3);
  EXPECT_LE(queue.min(), 2.0);
  EXPECT_DOUBLE_EQ(queue.max(), 6.0);
  EXPECT_GT(queue.mean(), 0.0);
  EXPECT_LE(queue.mean(), 4.0);
  EXPECT_GT(queue.newest_unix_ms(), 0);
  const v1::ScalingMetricWindow& time = Window(stats, v1::SCALING_METRIC_PROCESSING_TIME);
  EXPECT_DOUBLE_EQ(time.max(), 0.5);
  EXPECT_GT(time.mean(), 0.0);
  EXPECT_LE(time.mean(), 0.5);
  EXPECT_DOUBLE_EQ(Window(stats, v1::SCALING_METRIC_THROUGHPUT).max(), 10.0);
  EXPECT_EQ(stats.window_size(), 6);
  EXPECT_DOUBLE_EQ(stats.window_length_seconds(), 30.0);

  // Every discovered device starts active and healthy; the policy in force
  // is the config file's.
  EXPECT_TRUE(stats.enabled());
  EXPECT_GT(stats.active_devices_size(), 0);
  EXPECT_EQ(stats.active_devices_size(), stats.healthy_devices_size());
  EXPECT_EQ(stats.unhealthy_devices_size(), 0);
  EXPECT_EQ(stats.policy().rules_size(), 2);
  EXPECT_EQ(stats.policy().max_replicas(), 4);
  EXPECT_DOUBLE_EQ(stats.policy().evaluation_interval_seconds(), 1.0);
  EXPECT_TRUE(MessageDifferencer::Equals(stats.policy(), Policy()));
}

// Verifies that the daemon samples its devices on the scaler's own
// evaluation tick (no client or scheduler involved).
TEST_F(ScalingIntegrationTest, EvaluationsSampleTheDevices) {
  v1::GetScalingStatsResponse stats;
  ASSERT_TRUE(WaitFor([&] {
    stats = Stats();
    return stats.counts().evaluations() >= 2;
  }));
  EXPECT_GE(stats.counts().device_samples(), stats.healthy_devices_size());
  EXPECT_GT(Window(stats, v1::SCALING_METRIC_MEMORY_USED).count(), 0);
  EXPECT_GT(stats.last_evaluation_unix_ms(), 0);
  EXPECT_TRUE(stats.has_last_decision());
}

TEST_F(ScalingIntegrationTest, RejectsBadSamplesNamingTheField) {
  const grpc::Status st = Collect(-1, 0.5, 10);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), StartsWith("queue_length: -1 is negative"));
  EXPECT_EQ(Stats().counts().client_samples(), 0);
}

TEST_F(ScalingIntegrationTest, SetScalingPolicyRejectsABadPolicyNamingTheField) {
  const v1::ScalingPolicy original = Policy();

  v1::ScalingPolicy bad = original;
  bad.mutable_rules(1)->set_threshold(-2);
  grpc::Status st = SetPolicy(bad);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), StartsWith("policy.rules[1].threshold: -2 must be >= 0"));

  bad = original;
  bad.mutable_rules(0)->set_metric(v1::SCALING_METRIC_UNSPECIFIED);
  st = SetPolicy(bad);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), StartsWith("policy.rules[0].metric: SCALING_METRIC_UNSPECIFIED"));

  bad = original;
  bad.mutable_rules(1)->set_hold_seconds(60);
  st = SetPolicy(bad);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(),
              StartsWith("policy.rules[1].hold_seconds: 60 exceeds window_length (30)"));

  bad = original;
  bad.set_evaluation_interval_seconds(0);
  st = SetPolicy(bad);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), StartsWith("policy.evaluation_interval_seconds: 0 "));

  v1::SetScalingPolicyRequest empty;
  v1::SetScalingPolicyResponse resp;
  st = stub_->SetScalingPolicy(Context().get(), empty, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), StartsWith("policy: must be set"));

  EXPECT_TRUE(MessageDifferencer::Equals(Policy(), original))
      << "a rejected policy changed nothing";
}

TEST_F(ScalingIntegrationTest, SetScalingPolicyAcceptsAGoodPolicy) {
  v1::ScalingPolicy good = Policy();
  good.set_max_replicas(2);
  good.set_stability_threshold(0.25);
  good.set_scale_down_cooldown_seconds(12.5);
  v1::ScalingRule* rule = good.add_rules();
  rule->set_direction(v1::SCALING_DIRECTION_UP);
  rule->set_metric(v1::SCALING_METRIC_UTILIZATION);
  rule->set_comparison(v1::SCALING_COMPARISON_GREATER_EQUAL);
  rule->set_threshold(0.75);
  rule->set_hold_seconds(2.5);

  v1::ScalingPolicy in_force;
  const grpc::Status st = SetPolicy(good, &in_force);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_TRUE(MessageDifferencer::Equals(in_force, good)) << in_force.DebugString();
  EXPECT_TRUE(MessageDifferencer::Equals(Policy(), good)) << Policy().DebugString();

  v1::GetScalingEventsRequest req;
  req.set_limit(1);
  v1::GetScalingEventsResponse events;
  ASSERT_TRUE(stub_->GetScalingEvents(Context().get(), req, &events).ok());
  ASSERT_EQ(events.events_size(), 1);
  EXPECT_EQ(events.events(0).action(), v1::SCALING_ACTION_POLICY_CHANGED);
}

// Verifies that a queue above the up rule's threshold, fed by a client,
// leads to a recorded decision: every local device is already active, so
// the scaler raises the replica figure.
TEST_F(ScalingIntegrationTest, LoadThatTriggersARuleRecordsADecision) {
  v1::ScalingEvent decision;
  ASSERT_TRUE(WaitFor([&] {
    EXPECT_TRUE(Collect(100, 0.1, 5).ok());
    v1::GetScalingEventsResponse events;
    EXPECT_TRUE(stub_->GetScalingEvents(Context().get(), {}, &events).ok());
    for (const auto& e : events.events()) {
      if (e.action() == v1::SCALING_ACTION_RAISE_REPLICAS) {
        decision = e;
        return true;
      }
    }
    return false;
  })) << daemon_->Stderr();
  EXPECT_EQ(decision.direction(), v1::SCALING_DIRECTION_UP);
  EXPECT_EQ(decision.scope(), v1::SCALING_SCOPE_REPLICA);
  EXPECT_EQ(decision.device(), -1);
  EXPECT_EQ(decision.rule_index(), 0);
  EXPECT_EQ(decision.rule(), "up: queue_length > 50 for 0");
  // The interval mean also holds the scheduler's own samples (an idle
  // daemon feeds zeros), so the deciding value is above the threshold and
  // at most the client's 100.
  EXPECT_GT(decision.value(), 50.0);
  EXPECT_LE(decision.value(), 100.0);
  EXPECT_DOUBLE_EQ(decision.threshold(), 50.0);
  EXPECT_LT(decision.cv(), 0.5);
  EXPECT_EQ(decision.desired_replicas(), 2);
  EXPECT_GT(decision.time_unix_ms(), 0);
  EXPECT_GT(decision.sequence(), 0u);
  EXPECT_THAT(decision.reason(), HasSubstr("raise desired_replicas to 2"));

  const v1::GetScalingStatsResponse stats = Stats();
  EXPECT_GE(stats.desired_replicas(), 2);
  EXPECT_GE(stats.counts().replica_raises(), 1);
  EXPECT_GE(stats.replica_demand(), 2.0);

  // The history is bounded by the request's limit, newest last.
  v1::GetScalingEventsRequest req;
  req.set_limit(1);
  v1::GetScalingEventsResponse last;
  ASSERT_TRUE(stub_->GetScalingEvents(Context().get(), req, &last).ok());
  ASSERT_EQ(last.events_size(), 1);
  EXPECT_GE(last.events(0).sequence(), decision.sequence());
}

TEST_F(ScalingIntegrationTest, MetricsArePresentAndPassPromtool) {
  ASSERT_TRUE(Collect(1, 0.1, 1).ok());
  Stats();
  const std::string body = testing::HttpGet(daemon_->metrics_port(), "/metrics");
  for (const char* name :
       {"inferd_scaler_desired_replicas", "inferd_scaler_active_devices",
        "inferd_scaler_healthy_devices", "inferd_scaler_queue_length",
        "inferd_scaler_utilization_ratio", "inferd_scaler_evaluations_total",
        "inferd_scaler_decisions_total{direction=\"up\",scope=\"replica\"}",
        "inferd_grpc_requests_total{code=\"OK\",method=\"inferd.v1.Scaling/GetScalingStats\"}",
        "inferd_grpc_requests_total{code=\"OK\",method=\"inferd.v1.Scaling/"
        "CollectWorkloadMetrics\"}"}) {
    EXPECT_TRUE(absl::StrContains(body, name)) << name << "\n" << body.substr(0, 3000);
  }
  if (access("/usr/bin/promtool", X_OK) != 0) GTEST_SKIP() << "promtool not installed";
  const std::string path = testing::WriteTempFile(body, ".prom");
  auto r = testing::RunCommand({"/bin/sh", "-c", "/usr/bin/promtool check metrics < " + path},
                               absl::Seconds(30));
  std::remove(path.c_str());
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

// Verifies what `grpcurl ... inferd.v1.Scaling/GetScalingStats` relies on:
// reflection lists the service and serves its file descriptor.
TEST_F(ScalingIntegrationTest, ReflectionDescribesTheScalingService) {
  auto stub = grpc::reflection::v1alpha::ServerReflection::NewStub(channel_);
  grpc::ClientContext ctx;
  auto stream = stub->ServerReflectionInfo(&ctx);
  grpc::reflection::v1alpha::ServerReflectionRequest req;
  req.set_list_services("*");
  ASSERT_TRUE(stream->Write(req));
  grpc::reflection::v1alpha::ServerReflectionResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  std::vector<std::string> names;
  for (const auto& s : resp.list_services_response().service()) names.push_back(s.name());
  EXPECT_THAT(names, ::testing::Contains("inferd.v1.Scaling"));
  req.Clear();
  req.set_file_containing_symbol("inferd.v1.Scaling");
  ASSERT_TRUE(stream->Write(req));
  ASSERT_TRUE(stream->Read(&resp));
  EXPECT_GT(resp.file_descriptor_response().file_descriptor_proto_size(), 0);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

// Verifies that a scaling config whose keys pass one by one but not
// together stops the daemon at start (exit 2) naming the key.
TEST(ScalingConfigTest, DaemonRefusesAWindowShorterThanTheDefaultRulesHold) {
  const std::string path = testing::WriteTempFile("scaling:\n  window_length_seconds: 60\n");
  auto r =
      testing::RunCommand({testing::InferdBinary(), "--config=" + path, "--grpc-listen=127.0.0.1:0",
                           "--metrics-listen=", "--host-devices=1"},
                          absl::Seconds(30));
  std::remove(path.c_str());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("scaling.window_length_seconds: 60"));
}

}  // namespace
}  // namespace inferd
