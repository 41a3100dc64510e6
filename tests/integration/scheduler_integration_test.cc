// inferd.v1.Scheduler against the real daemon on two host devices whose
// streams run on worker threads, one task at a time per device, so bursts of
// submissions queue: a diamond DAG chained by device handles, 1,000
// concurrent mixed-priority submissions, cancellation, timeouts, watches,
// validation errors and stats.
#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "clients/cpp/inferd_client.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "inferd/v1/memory.grpc.pb.h"
#include "inferd/v1/scheduler.grpc.pb.h"
#include "tests/integration/daemon_process.h"

namespace inferd {
namespace {

using testing::DaemonProcess;
using ::testing::HasSubstr;

constexpr char kConfig[] =
    "device:\n"
    "  host_inline_when_idle: false\n"
    "  multi_gpu:\n"
    "    performance_optimization:\n"
    "      max_tasks_per_device: 1\n"
    "      scheduling_strategy: least_loaded\n";

class SchedulerIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    config_path_ = new std::string(testing::WriteTempFile(kConfig));
    std::vector<std::string> args = testing::DeviceArgs(2);
    args.push_back("--config=" + *config_path_);
    daemon_ = new DaemonProcess(args);
    ASSERT_TRUE(daemon_->started()) << daemon_->Stderr();
  }
  static void TearDownTestSuite() {
    daemon_->Signal(SIGTERM);
    EXPECT_EQ(daemon_->Wait(absl::Seconds(30)), 0) << daemon_->Stderr();
    delete daemon_;
    std::remove(config_path_->c_str());
    delete config_path_;
  }
  void SetUp() override {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    args.SetMaxSendMessageSize(64 << 20);
    channel_ =
        grpc::CreateCustomChannel(daemon_->target(), grpc::InsecureChannelCredentials(), args);
    stub_ = v1::Scheduler::NewStub(channel_);
  }

  static std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout = absl::Seconds(30)) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    return ctx;
  }

  // A task running `model` on an inline FP32 tensor [1, n] of base + i.
  static v1::TaskSpec Inline(const std::string& model, int n, float base,
                             v1::Priority priority = v1::PRIORITY_NORMAL) {
    v1::TaskSpec spec;
    spec.set_model_name(model);
    spec.set_priority(priority);
    v1::TaskInput* in = spec.add_inputs();
    in->set_name("INPUT0");
    v1::InlineTensor* t = in->mutable_tensor();
    t->set_datatype("FP32");
    t->add_shape(1);
    t->add_shape(n);
    std::vector<float> v(n);
    for (int i = 0; i < n; ++i) v[i] = base + static_cast<float>(i);
    t->set_data(std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)));
    return spec;
  }

  static void FromTask(v1::TaskSpec* spec, const std::string& input, const std::string& task) {
    v1::TaskInput* in = spec->add_inputs();
    in->set_name(input);
    in->mutable_task_output()->set_task(task);
    in->mutable_task_output()->set_output("OUTPUT0");
  }

  static std::vector<float> Floats(const std::string& bytes) {
    std::vector<float> v(bytes.size() / sizeof(float));
    std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
    return v;
  }

  v1::Task Wait(const std::string& id, bool omit_outputs = false) {
    v1::WaitTaskRequest req;
    req.set_task_id(id);
    req.set_omit_outputs(omit_outputs);
    v1::WaitTaskResponse resp;
    grpc::Status st = stub_->WaitTask(Context(absl::Seconds(60)).get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    EXPECT_TRUE(resp.finished());
    return resp.task();
  }

  std::string Submit(const v1::TaskSpec& spec) {
    v1::SubmitTaskRequest req;
    *req.mutable_task() = spec;
    v1::SubmitTaskResponse resp;
    grpc::Status st = stub_->SubmitTask(Context().get(), req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.task_id();
  }

  static DaemonProcess* daemon_;
  static std::string* config_path_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Scheduler::Stub> stub_;
};

DaemonProcess* SchedulerIntegrationTest::daemon_ = nullptr;
std::string* SchedulerIntegrationTest::config_path_ = nullptr;

// Verifies a diamond DAG whose intermediate outputs stay on the device and
// feed their dependents by handle: a = 2x; b = 3a; c = a; d = b + c = 8x.
TEST_F(SchedulerIntegrationTest, DiamondDagChainedByDeviceHandles) {
  v1::SubmitTasksRequest req;
  v1::TaskSpec d;
  d.set_key("d");
  d.set_model_name("add");
  FromTask(&d, "INPUT0", "b");
  FromTask(&d, "INPUT1", "c");
  *req.add_tasks() = d;
  v1::TaskSpec a = Inline("scale", 4, 1);
  a.set_key("a");
  (*a.mutable_parameters())["factor"] = 2;
  a.set_keep_outputs_on_device(true);
  *req.add_tasks() = a;
  v1::TaskSpec b;
  b.set_key("b");
  b.set_model_name("scale");
  (*b.mutable_parameters())["factor"] = 3;
  b.set_keep_outputs_on_device(true);
  FromTask(&b, "INPUT0", "a");
  *req.add_tasks() = b;
  v1::TaskSpec c;
  c.set_key("c");
  c.set_model_name("identity");
  c.set_keep_outputs_on_device(true);
  FromTask(&c, "INPUT0", "a");
  *req.add_tasks() = c;
  v1::SubmitTasksResponse resp;
  grpc::Status st = stub_->SubmitTasks(Context().get(), req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(resp.task_ids_size(), 4);

  v1::Task done = Wait(resp.task_ids(0));
  ASSERT_EQ(done.state(), v1::TASK_STATE_SUCCEEDED) << done.status_message();
  ASSERT_EQ(done.outputs_size(), 1);
  EXPECT_EQ(Floats(done.outputs(0).data()), (std::vector<float>{8, 16, 24, 32}));
  EXPECT_THAT(done.depends_on(), ::testing::ElementsAre(resp.task_ids(2), resp.task_ids(3)));
  for (int i = 1; i < 4; ++i) {
    v1::Task t = Wait(resp.task_ids(i));
    ASSERT_EQ(t.state(), v1::TASK_STATE_SUCCEEDED);
    ASSERT_EQ(t.outputs_size(), 1);
    EXPECT_EQ(t.outputs(0).tensor_id().size(), 32u) << "kept on the device";
    EXPECT_TRUE(t.outputs(0).data().empty());
    EXPECT_LE(t.start_unix_ms(), done.start_unix_ms());
  }
}

// Verifies priorities under contention: 1,000 tasks from 8 concurrent
// clients; queue time (from each task's own timestamps) of CRITICAL and
// HIGH tasks at p99 is below NORMAL's.
TEST_F(SchedulerIntegrationTest, CriticalAndHighQueueLessThanNormalUnderLoad) {
  constexpr int kClients = 8;
  constexpr int kPerClient = 125;
  const v1::Priority kMix[] = {v1::PRIORITY_NORMAL, v1::PRIORITY_CRITICAL,  v1::PRIORITY_NORMAL,
                               v1::PRIORITY_HIGH,   v1::PRIORITY_NORMAL,    v1::PRIORITY_LOW,
                               v1::PRIORITY_NORMAL, v1::PRIORITY_BACKGROUND};
  std::vector<std::vector<std::string>> ids(kClients);
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      v1::SubmitTasksRequest req;
      for (int i = 0; i < kPerClient; ++i) {
        v1::TaskSpec spec = Inline("scale", 32768, static_cast<float>(i), kMix[(c + i) % 8]);
        spec.set_owner("burst");
        *req.add_tasks() = std::move(spec);
      }
      v1::SubmitTasksResponse resp;
      grpc::Status st = stub_->SubmitTasks(Context().get(), req, &resp);
      ASSERT_TRUE(st.ok()) << st.error_message();
      ids[c].assign(resp.task_ids().begin(), resp.task_ids().end());
    });
  }
  for (auto& t : clients) t.join();
  std::map<v1::Priority, std::vector<double>> queue_seconds;
  for (const auto& client_ids : ids) {
    ASSERT_EQ(client_ids.size(), static_cast<size_t>(kPerClient));
    for (const std::string& id : client_ids) {
      v1::Task t = Wait(id, /*omit_outputs=*/true);
      ASSERT_EQ(t.state(), v1::TASK_STATE_SUCCEEDED) << t.status_message();
      queue_seconds[t.priority()].push_back(t.queue_seconds());
    }
  }
  auto p99 = [&](v1::Priority p) {
    std::vector<double>& v = queue_seconds[p];
    std::sort(v.begin(), v.end());
    return v[static_cast<size_t>(0.99 * static_cast<double>(v.size() - 1))];
  };
  const double normal = p99(v1::PRIORITY_NORMAL);
  const double critical = p99(v1::PRIORITY_CRITICAL);
  const double high = p99(v1::PRIORITY_HIGH);
  EXPECT_LT(critical, normal) << "critical " << critical << " s, normal " << normal << " s";
  EXPECT_LT(high, normal) << "high " << high << " s, normal " << normal << " s";
  std::printf("queue p99: critical %.6f s, high %.6f s, normal %.6f s, low %.6f s\n", critical,
              high, normal, p99(v1::PRIORITY_LOW));
}

// Verifies cancellation while waiting for a dependency, while queued and
// while running. A task scaling a 256 MiB tensor made on device 0 (no
// upload) keeps device 0's only slot busy meanwhile.
TEST_F(SchedulerIntegrationTest, CancelPaths) {
  auto memory = v1::Memory::NewStub(channel_);
  v1::AllocateTensorRequest alloc;
  alloc.set_device(0);
  alloc.set_datatype("FP32");
  alloc.add_shape(int64_t{64} << 20);
  alloc.set_owner("cancel-test");
  v1::TensorInfo big;
  grpc::Status st = memory->AllocateTensor(Context().get(), alloc, &big);
  ASSERT_TRUE(st.ok()) << st.error_message();

  v1::SubmitTasksRequest req;
  v1::TaskSpec slow;
  slow.set_key("slow");
  slow.set_model_name("scale");
  slow.set_device(0);
  slow.set_keep_outputs_on_device(true);
  v1::TaskInput* in = slow.add_inputs();
  in->set_name("INPUT0");
  in->set_tensor_id(big.id());
  *req.add_tasks() = slow;
  v1::TaskSpec queued = Inline("identity", 4, 0);
  queued.set_key("queued");
  queued.set_device(0);
  *req.add_tasks() = queued;
  v1::TaskSpec waiting = Inline("identity", 4, 0);
  waiting.add_depends_on("slow");
  *req.add_tasks() = waiting;
  v1::TaskSpec after = Inline("identity", 4, 0);
  after.add_depends_on("queued");
  *req.add_tasks() = after;
  v1::SubmitTasksResponse ids;
  st = stub_->SubmitTasks(Context().get(), req, &ids);
  ASSERT_TRUE(st.ok()) << st.error_message();

  auto cancel = [&](const std::string& id, v1::CancelTaskResponse* out) {
    v1::CancelTaskRequest r;
    r.set_task_id(id);
    return stub_->CancelTask(Context().get(), r, out);
  };
  v1::CancelTaskResponse resp;
  st = cancel(ids.task_ids(2), &resp);  // WAITING_DEPS
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.task().state(), v1::TASK_STATE_CANCELLED);
  st = cancel(ids.task_ids(1), &resp);  // QUEUED behind `slow`
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.task().state(), v1::TASK_STATE_CANCELLED);
  v1::Task dependent = Wait(ids.task_ids(3));
  EXPECT_EQ(dependent.state(), v1::TASK_STATE_FAILED);
  EXPECT_EQ(dependent.status_code(), static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION));
  EXPECT_THAT(dependent.status_message(), HasSubstr(ids.task_ids(1)));
  st = cancel(ids.task_ids(0), &resp);  // RUNNING: dropped when its work ends
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.task().state(), v1::TASK_STATE_CANCELLED);
  EXPECT_EQ(Wait(ids.task_ids(0)).state(), v1::TASK_STATE_CANCELLED);

  st = cancel(ids.task_ids(0), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(st.error_message(), HasSubstr("already finished"));
  st = cancel(std::string(32, 'a'), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  st = cancel("not-an-id", &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("task_id"));
}

TEST_F(SchedulerIntegrationTest, TimeoutPath) {
  v1::TaskSpec spec = Inline("identity", 4, 0);
  spec.set_timeout_seconds(1e-9);  // expires before it can start
  v1::Task t = Wait(Submit(spec));
  EXPECT_EQ(t.state(), v1::TASK_STATE_TIMED_OUT);
  EXPECT_EQ(t.status_code(), static_cast<int>(grpc::StatusCode::DEADLINE_EXCEEDED));
  EXPECT_THAT(t.status_message(), HasSubstr("timeout"));

  // A wait that times out answers with the task as it stands.
  v1::SubmitTasksRequest backlog;
  for (int i = 0; i < 200; ++i) {
    *backlog.add_tasks() = Inline("scale", 8192, 0, v1::PRIORITY_HIGH);
  }
  v1::SubmitTasksResponse backlog_ids;
  ASSERT_TRUE(stub_->SubmitTasks(Context().get(), backlog, &backlog_ids).ok());
  const std::string last = Submit(Inline("identity", 4, 0, v1::PRIORITY_BACKGROUND));
  v1::WaitTaskRequest wait;
  wait.set_task_id(last);
  wait.set_timeout_seconds(1e-6);
  v1::WaitTaskResponse resp;
  ASSERT_TRUE(stub_->WaitTask(Context().get(), wait, &resp).ok());
  EXPECT_EQ(resp.task().task_id(), last);
  if (!resp.finished()) {
    EXPECT_NE(resp.task().state(), v1::TASK_STATE_SUCCEEDED);
  }
  for (const std::string& id : backlog_ids.task_ids()) Wait(id, true);
  EXPECT_EQ(Wait(last).state(), v1::TASK_STATE_SUCCEEDED);
}

TEST_F(SchedulerIntegrationTest, ErrorsNameTheField) {
  v1::SubmitTasksRequest cycle;
  v1::TaskSpec a = Inline("identity", 4, 0);
  a.set_key("a");
  a.add_depends_on("b");
  v1::TaskSpec b = Inline("identity", 4, 0);
  b.set_key("b");
  b.add_depends_on("a");
  *cycle.add_tasks() = a;
  *cycle.add_tasks() = b;
  v1::SubmitTasksResponse resp;
  grpc::Status st = stub_->SubmitTasks(Context().get(), cycle, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("dependency cycle"));

  v1::SubmitTaskRequest req;
  *req.mutable_task() = Inline("nope", 4, 0);
  v1::SubmitTaskResponse one;
  st = stub_->SubmitTask(Context().get(), req, &one);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(st.error_message(), HasSubstr("task.model_name"));

  *req.mutable_task() = Inline("identity", 4, 0);
  req.mutable_task()->mutable_inputs(0)->mutable_tensor()->set_datatype("FP33");
  st = stub_->SubmitTask(Context().get(), req, &one);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("task.inputs[0].tensor.datatype"));

  *req.mutable_task() = Inline("identity", 4, 0);
  req.mutable_task()->add_depends_on(std::string(32, 'b'));
  st = stub_->SubmitTask(Context().get(), req, &one);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("task.depends_on[0]: unknown task"));
}

// Verifies WatchTasks: a task submitted after the watch is registered is
// seen in every state, in order. (Registration races the first submissions,
// so a client keeps submitting until one task is seen from PENDING on.)
TEST_F(SchedulerIntegrationTest, WatchStreamsStateChanges) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  v1::WatchTasksRequest req;
  req.set_model_name("identity");
  auto stream = stub_->WatchTasks(&ctx, req);
  std::atomic<bool> stop{false};
  std::thread submitter([&] {
    while (!stop.load()) {
      Submit(Inline("identity", 4, 0));
      absl::SleepFor(absl::Milliseconds(20));  // pacing a load source, not a wait
    }
  });
  std::map<std::string, std::vector<v1::TaskState>> seen;
  std::vector<v1::TaskState> complete;
  v1::WatchTasksResponse event;
  while (complete.empty() && stream->Read(&event)) {
    auto& states = seen[event.event().task_id()];
    states.push_back(event.event().state());
    if (states.front() == v1::TASK_STATE_PENDING &&
        event.event().state() == v1::TASK_STATE_SUCCEEDED) {
      complete = states;
    }
  }
  stop.store(true);
  submitter.join();
  ctx.TryCancel();
  EXPECT_THAT(complete, ::testing::ElementsAre(v1::TASK_STATE_PENDING, v1::TASK_STATE_QUEUED,
                                               v1::TASK_STATE_RUNNING, v1::TASK_STATE_SUCCEEDED));
}

TEST_F(SchedulerIntegrationTest, StatsAndListing) {
  const std::string id = Submit(Inline("identity", 4, 0));
  Wait(id);
  v1::GetSchedulerStatsResponse stats;
  ASSERT_TRUE(stub_->GetSchedulerStats(Context().get(), {}, &stats).ok());
  EXPECT_EQ(stats.devices_size(), 2);
  EXPECT_EQ(stats.strategy(), "least_loaded");
  EXPECT_GE(stats.submitted(), 1u);
  EXPECT_GE(stats.succeeded(), 1u);
  EXPECT_EQ(stats.queues_size(), 5);
  v1::ListTasksRequest list;
  list.set_model_name("identity");
  list.set_page_size(1000);
  v1::ListTasksResponse page;
  ASSERT_TRUE(stub_->ListTasks(Context().get(), list, &page).ok());
  bool found = false;
  for (const v1::Task& t : page.tasks()) found |= t.task_id() == id;
  EXPECT_TRUE(found);
  const std::string metrics = testing::HttpGet(daemon_->metrics_port(), "/metrics");
  EXPECT_THAT(metrics, HasSubstr("inferd_scheduler_tasks_completed_total{"));
  EXPECT_THAT(metrics, HasSubstr("inferd_scheduler_queue_duration_seconds_bucket{"));
}

}  // namespace
}  // namespace inferd
