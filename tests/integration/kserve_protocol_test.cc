// The KServe v2 / Triton protocol beyond plain ModelInfer, against the real
// daemon serving the quick-start models (examples/triton_models), driven by
// a client written as tritonclient speaks the protocol: streaming,
// statistics, shared memory, classification, model configuration.
#include <atomic>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "inferd/v1/scheduler.grpc.pb.h"
#include "tests/integration/daemon_process.h"
#include "tests/integration/shm_test_util.h"
#include "tests/integration/triton_client.h"

namespace inferd {
namespace {

using ::testing::HasSubstr;
using testing::InferInput;
using testing::RequestedOutput;

std::string Repository() { return std::string(INFERD_BINARY_DIR) + "/triton_models"; }

// Polls `done` every 20 ms for up to 60 s.
template <typename F>
bool Eventually(F done) {
  for (int i = 0; i < 3000; ++i) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return done();
}

// The "simple" request of Triton's simple_grpc_infer_client: [1, 16] INT32.
std::vector<InferInput> SimpleInputs(int32_t scale = 1) {
  std::vector<int32_t> a(16), b(16, scale);
  for (int i = 0; i < 16; ++i) a[i] = i * scale;
  return {{"INPUT0", {1, 16}, "INT32", testing::Raw(a)},
          {"INPUT1", {1, 16}, "INT32", testing::Raw(b)}};
}

class KServeProtocolTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    daemon_ = new testing::ConfiguredDaemon(
        // One slot, so that a running decoupled request queues the rest.
        absl::StrCat("models: {repository: \"", Repository(), "\"}\n"
                     "server: {max_stream_held_responses: 2048}\n"
                     "device:\n  multi_gpu:\n    performance_optimization:\n"
                     "      max_tasks_per_device: 1\n"),
        1);
    ASSERT_TRUE(daemon_->process().started()) << daemon_->process().Stderr();
  }
  static void TearDownTestSuite() {
    EXPECT_EQ(daemon_->Stop(), 0) << daemon_->process().Stderr();
    delete daemon_;
  }
  void SetUp() override {
    client_ = std::make_unique<testing::TritonClient>(daemon_->process().target());
  }
  uint64_t Successes(const std::string& model) {
    auto stats = client_->GetInferenceStatistics(model);
    return stats.ok() ? stats->model_stats(0).inference_stats().success().count() : 0;
  }

  static testing::ConfiguredDaemon* daemon_;
  std::unique_ptr<testing::TritonClient> client_;
};

testing::ConfiguredDaemon* KServeProtocolTest::daemon_ = nullptr;

TEST_F(KServeProtocolTest, ServerMetadataListsOnlyWorkingExtensions) {
  auto meta = client_->GetServerMetadata();
  ASSERT_TRUE(meta.ok()) << meta.status();
  std::vector<std::string> ext(meta->extensions().begin(), meta->extensions().end());
  EXPECT_THAT(ext, ::testing::IsSupersetOf({"statistics", "model_repository",
                                            "model_repository(unload_dependents)",
                                            "system_shared_memory", "classification"}));
  EXPECT_THAT(ext, ::testing::Not(::testing::Contains("sequence")));
  EXPECT_THAT(ext, ::testing::Not(::testing::Contains("trace")));
}

TEST_F(KServeProtocolTest, UnsupportedRpcsSayWhatAndWhy) {
  grpc::ClientContext ctx;
  inference::TraceSettingResponse trace;
  grpc::Status st = client_->stub().TraceSetting(&ctx, {}, &trace);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_THAT(st.error_message(), HasSubstr("TraceSetting"));
  grpc::ClientContext ctx2;
  inference::LogSettingsResponse log;
  st = client_->stub().LogSettings(&ctx2, {}, &log);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_THAT(st.error_message(), HasSubstr("log level"));
}

TEST_F(KServeProtocolTest, QuickStartModelsAnswerAsTritonsDo) {
  auto simple = client_->Infer("simple", SimpleInputs(), {{"OUTPUT0"}, {"OUTPUT1"}}, "req-1");
  ASSERT_TRUE(simple.ok()) << simple.status();
  EXPECT_EQ(simple->id(), "req-1");
  std::vector<int32_t> sum = testing::Values<int32_t>(*testing::OutputRaw(*simple, "OUTPUT0"));
  std::vector<int32_t> diff = testing::Values<int32_t>(*testing::OutputRaw(*simple, "OUTPUT1"));
  ASSERT_EQ(sum.size(), 16u);
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(sum[i], i + 1);
    EXPECT_EQ(diff[i], i - 1);
  }

  std::vector<int8_t> a(16, 5), b(16, 7);
  auto int8 = client_->Infer("simple_int8", {{"INPUT0", {1, 16}, "INT8", testing::Raw(a)},
                                             {"INPUT1", {1, 16}, "INT8", testing::Raw(b)}});
  ASSERT_TRUE(int8.ok()) << int8.status();
  EXPECT_EQ(testing::Values<int8_t>(*testing::OutputRaw(*int8, "OUTPUT1"))[0], -2);

  std::vector<std::string> sa, sb;
  for (int i = 0; i < 16; ++i) {
    sa.push_back(std::to_string(i));
    sb.push_back("1");
  }
  auto str = client_->Infer("simple_string",
                            {{"INPUT0", {1, 16}, "BYTES", testing::RawStrings(sa)},
                             {"INPUT1", {1, 16}, "BYTES", testing::RawStrings(sb)}});
  ASSERT_TRUE(str.ok()) << str.status();
  std::vector<std::string> sums = testing::ParseStrings(*testing::OutputRaw(*str, "OUTPUT0"));
  ASSERT_EQ(sums.size(), 16u);
  EXPECT_EQ(sums[15], "16");
  EXPECT_EQ(testing::ParseStrings(*testing::OutputRaw(*str, "OUTPUT1"))[0], "-1");

  auto id = client_->Infer("simple_identity",
                           {{"INPUT0", {1, 2}, "BYTES", testing::RawStrings({"hello", "world"})}});
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(testing::ParseStrings(*testing::OutputRaw(*id, "OUTPUT0")),
            (std::vector<std::string>{"hello", "world"}));
}

TEST_F(KServeProtocolTest, ModelConfigFollowsTritonsConvention) {
  auto config = client_->GetModelConfig("simple");
  ASSERT_TRUE(config.ok()) << config.status();
  const auto& c = config->config();
  EXPECT_EQ(c.max_batch_size(), 8);
  ASSERT_EQ(c.input_size(), 2);
  EXPECT_THAT(c.input(0).dims(), ::testing::ElementsAre(16));  // batch dim left out
  EXPECT_EQ(c.input(0).data_type(), inference::TYPE_INT32);
  EXPECT_TRUE(c.has_dynamic_batching());
  EXPECT_EQ(c.dynamic_batching().max_queue_delay_microseconds(), 100u);
  ASSERT_EQ(c.instance_group_size(), 1);
  EXPECT_GE(c.instance_group(0).count(), 1);
  EXPECT_EQ(c.backend(), "inferd_builtin");
  auto repeat = client_->GetModelConfig("repeat_int32");
  ASSERT_TRUE(repeat.ok()) << repeat.status();
  EXPECT_TRUE(repeat->config().model_transaction_policy().decoupled());
  EXPECT_THAT(repeat->config().input(0).dims(), ::testing::ElementsAre(-1));
}

TEST_F(KServeProtocolTest, ClassificationReturnsTopKAsValueIndexStrings) {
  auto r = client_->Infer("simple", SimpleInputs(), {{"OUTPUT0", /*class_count=*/3}});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->outputs_size(), 1);
  EXPECT_EQ(r->outputs(0).datatype(), "BYTES");
  EXPECT_THAT(r->outputs(0).shape(), ::testing::ElementsAre(1, 3));
  std::vector<std::string> top = testing::ParseStrings(r->raw_output_contents(0));
  EXPECT_EQ(top, (std::vector<std::string>{"16:15", "15:14", "14:13"}));
}

// Concurrent ModelInfer calls on a batched model: the members of a batch
// are answered from the front end's threads (all but the last), each with
// its own rows.
TEST_F(KServeProtocolTest, BatchMembersEachGetTheirOwnRows) {
  constexpr int kThreads = 16;
  constexpr int kCalls = 25;
  auto batched_executions = [&] {
    auto stats = client_->GetInferenceStatistics("simple");
    uint64_t n = 0;
    if (!stats.ok()) return n;
    for (const auto& b : stats->model_stats(0).batch_stats()) {
      if (b.batch_size() >= 2) n += b.compute_infer().count();
    }
    return n;
  };
  const uint64_t batched_before = batched_executions();
  std::atomic<int> wrong{0};
  auto round = [&] {
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        testing::TritonClient client(daemon_->process().target());
        for (int i = 0; i < kCalls; ++i) {
          const int32_t scale = t * 1000 + i + 1;
          auto r = client.Infer("simple", SimpleInputs(scale));
          bool ok = r.ok() && r->raw_output_contents_size() == 2;
          for (int o = 0; ok && o < 2; ++o) {
            const std::string& raw = r->raw_output_contents(o);
            std::vector<int32_t> got(raw.size() / sizeof(int32_t));
            std::memcpy(got.data(), raw.data(), got.size() * sizeof(int32_t));
            ok = got.size() == 16;
            for (int k = 0; ok && k < 16; ++k) {
              ok = got[k] == (o == 0 ? (k + 1) * scale : (k - 1) * scale);
            }
          }
          if (!ok) wrong.fetch_add(1);
        }
      });
    }
    for (std::thread& th : threads) th.join();
  };
  // On a starved machine the calls may arrive one at a time; run rounds
  // until some shared an execution (at most 20).
  for (int rounds = 0; rounds < 20 && batched_executions() == batched_before; ++rounds) round();
  EXPECT_EQ(wrong.load(), 0);
  // The calls did share executions (else this test covers nothing).
  EXPECT_GT(batched_executions(), batched_before);
}

TEST_F(KServeProtocolTest, StatisticsCountTrafficPerModel) {
  auto before = client_->GetInferenceStatistics("simple_int8");
  ASSERT_TRUE(before.ok()) << before.status();
  const uint64_t ok0 = before->model_stats(0).inference_stats().success().count();
  const uint64_t fail0 = before->model_stats(0).inference_stats().fail().count();
  std::vector<int8_t> a(32, 1);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(client_
                    ->Infer("simple_int8", {{"INPUT0", {2, 16}, "INT8", testing::Raw(a)},
                                            {"INPUT1", {2, 16}, "INT8", testing::Raw(a)}})
                    .ok());
  }
  EXPECT_FALSE(client_->Infer("simple_int8", {{"INPUT0", {2, 16}, "INT8", testing::Raw(a)},
                                              {"INPUT1", {1, 16}, "INT8", "short"}})
                   .ok());
  auto stats = client_->GetInferenceStatistics("simple_int8");
  ASSERT_TRUE(stats.ok()) << stats.status();
  const auto& m = stats->model_stats(0);
  EXPECT_EQ(m.name(), "simple_int8");
  EXPECT_EQ(m.version(), "1");
  EXPECT_EQ(m.inference_stats().success().count(), ok0 + 5);
  EXPECT_EQ(m.inference_stats().fail().count(), fail0 + 1);
  EXPECT_GE(m.inference_count(), 10u);  // batch rows, not requests
  EXPECT_GE(m.execution_count(), 1u);
  EXPECT_GT(m.inference_stats().success().ns(), 0u);
  EXPECT_EQ(m.inference_stats().queue().count(), m.inference_stats().success().count());
  EXPECT_GT(m.last_inference(), 0u);
  uint64_t batch2_executions = 0;
  for (const auto& b : m.batch_stats()) {
    if (b.batch_size() == 2) batch2_executions = b.compute_infer().count();
  }
  EXPECT_GE(batch2_executions, 1u);

  auto all = client_->GetInferenceStatistics();
  ASSERT_TRUE(all.ok());
  std::vector<std::string> names;
  for (const auto& s : all->model_stats()) names.push_back(s.name());
  EXPECT_THAT(names, ::testing::IsSupersetOf({"add", "identity", "simple", "repeat_int32"}));
  EXPECT_EQ(client_->GetInferenceStatistics("nope").status().code(), absl::StatusCode::kNotFound);
}

// Verifies that requests through the inferd.v1.Scheduler service (tasks)
// count in the model's statistics like ModelInfer requests.
TEST_F(KServeProtocolTest, SchedulerTasksCountInModelStatistics) {
  const uint64_t before = Successes("scale");
  testing::CommandResult r = testing::RunCommand(
      {testing::InferctlBinary(), "--target=" + daemon_->process().target(), "tasks", "submit",
       "scale", "--input=INPUT0:FP32:3:1,2,3", "--wait"},
      absl::Seconds(60));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(Successes("scale"), before + 1);
}

TEST_F(KServeProtocolTest, UnaryInferOfADecoupledModelIsRefused) {
  auto r = client_->Infer("repeat_int32", {{"IN", {1}, "INT32", testing::Raw<int32_t>({1})},
                                           {"DELAY", {1}, "UINT32", testing::Raw<uint32_t>({0})},
                                           {"WAIT", {1}, "UINT32", testing::Raw<uint32_t>({0})}});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("ModelStreamInfer"));
}

// Collects stream responses by request id.
struct Collected {
  absl::Mutex mu;
  std::map<std::string, std::vector<inference::ModelStreamInferResponse>> by_id
      ABSL_GUARDED_BY(mu);
  int total ABSL_GUARDED_BY(mu) = 0;
  void Add(const inference::ModelStreamInferResponse& r) {
    absl::MutexLock lock(&mu);
    by_id[r.infer_response().id()].push_back(r);
    ++total;
  }
  void WaitFor(int n) {
    absl::MutexLock lock(&mu);
    auto done = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return total >= n; };
    mu.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(120));
  }
};

// Verifies the acceptance case: 10,000 requests on one stream, every tenth
// failing, each answered once with its id; the stream stays open.
TEST_F(KServeProtocolTest, StreamOfTenThousandWithInterleavedFailures) {
  Collected got;
  client_->StartStream([&](const auto& r) { got.Add(r); });
  constexpr int kRequests = 10000;
  for (int i = 0; i < kRequests; ++i) {
    std::vector<InferInput> in = SimpleInputs(i % 7);
    if (i % 10 == 3) in[1].shape = {1, 15};  // wrong shape: fails
    ASSERT_TRUE(client_->AsyncStreamInfer(
        client_->MakeRequest("simple", in, {}, absl::StrCat("r", i))));
  }
  got.WaitFor(kRequests);
  EXPECT_TRUE(client_->StopStream().ok());
  absl::MutexLock lock(&got.mu);
  EXPECT_EQ(got.total, kRequests);
  int failures = 0;
  for (int i = 0; i < kRequests; ++i) {
    auto it = got.by_id.find(absl::StrCat("r", i));
    ASSERT_NE(it, got.by_id.end()) << i;
    ASSERT_EQ(it->second.size(), 1u) << i;
    const auto& r = it->second[0];
    if (i % 10 == 3) {
      ++failures;
      EXPECT_THAT(r.error_message(), HasSubstr("inputs[1]")) << i;
    } else {
      ASSERT_TRUE(r.error_message().empty()) << r.error_message();
      std::vector<int32_t> sum =
          testing::Values<int32_t>(*testing::OutputRaw(r.infer_response(), "OUTPUT0"));
      EXPECT_EQ(sum[1], 2 * (i % 7)) << i;
    }
  }
  EXPECT_EQ(failures, kRequests / 10);
}

TEST_F(KServeProtocolTest, DecoupledModelStreamsEachResponseThenTheFinalFlag) {
  Collected got;
  client_->StartStream([&](const auto& r) { got.Add(r); });
  auto req = client_->MakeRequest(
      "repeat_int32",
      {{"IN", {4}, "INT32", testing::Raw<int32_t>({4, 2, 0, 1})},
       {"DELAY", {4}, "UINT32", testing::Raw<uint32_t>({1, 2, 3, 4})},
       {"WAIT", {1}, "UINT32", testing::Raw<uint32_t>({5})}},
      {}, "rep");
  (*req.mutable_parameters())["triton_enable_empty_final_response"].set_bool_param(true);
  ASSERT_TRUE(client_->AsyncStreamInfer(req));
  got.WaitFor(5);
  EXPECT_TRUE(client_->StopStream().ok());
  absl::MutexLock lock(&got.mu);
  const auto& rs = got.by_id["rep"];
  ASSERT_EQ(rs.size(), 5u);
  const std::vector<int32_t> want = {4, 2, 0, 1};
  for (int i = 0; i < 4; ++i) {
    const auto& ir = rs[i].infer_response();
    EXPECT_EQ(testing::Values<int32_t>(*testing::OutputRaw(ir, "OUT"))[0], want[i]);
    EXPECT_EQ(testing::Values<uint32_t>(*testing::OutputRaw(ir, "IDX"))[0], uint32_t(i));
    EXPECT_FALSE(ir.parameters().at("triton_final_response").bool_param());
  }
  EXPECT_TRUE(rs[4].infer_response().parameters().at("triton_final_response").bool_param());
  EXPECT_EQ(rs[4].infer_response().outputs_size(), 0);
}

// Verifies that cancelling a stream drops its queued requests unrun: a
// decoupled request holds the only slot while 1,000 more queue behind it.
TEST_F(KServeProtocolTest, CancelledStreamDropsItsThousandQueuedRequests) {
  const uint64_t before = Successes("simple_identity");
  Collected got;
  client_->StartStream([&](const auto& r) { got.Add(r); });
  auto slow = client_->MakeRequest("repeat_int32",
                                   {{"IN", {1}, "INT32", testing::Raw<int32_t>({1})},
                                    {"DELAY", {1}, "UINT32", testing::Raw<uint32_t>({0})},
                                    {"WAIT", {1}, "UINT32", testing::Raw<uint32_t>({1500})}},
                                   {}, "slow");
  ASSERT_TRUE(client_->AsyncStreamInfer(slow));
  got.WaitFor(1);  // it runs: the slot is taken
  // BYTES requests are not batched: each waits in the queue on its own.
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(client_->AsyncStreamInfer(client_->MakeRequest(
        "simple_identity", {{"INPUT0", {1, 1}, "BYTES", testing::RawStrings({"x"})}}, {},
        absl::StrCat("q", i))));
  }
  // A write returns once the transport has the message: wait until the
  // daemon has queued all 1,000 before cancelling.
  auto scheduler = v1::Scheduler::NewStub(client_->channel());
  ASSERT_TRUE(Eventually([&] {
    v1::GetSchedulerStatsResponse stats;
    grpc::ClientContext ctx;
    return scheduler->GetSchedulerStats(&ctx, {}, &stats).ok() && stats.queued() >= 1000;
  }));
  grpc::Status st = client_->StopStream(/*cancel=*/true);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::CANCELLED);
  // Every queued request ends (failed, as cancelled) and none ran.
  EXPECT_TRUE(Eventually([&] {
    auto stats = client_->GetInferenceStatistics("simple_identity");
    return stats.ok() && stats->model_stats(0).inference_stats().fail().count() >= 1000;
  }));
  auto stats = client_->GetInferenceStatistics("simple_identity");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->model_stats(0).inference_stats().fail().count(), 1000u);
  EXPECT_EQ(stats->model_stats(0).inference_stats().success().count(), before);
  EXPECT_TRUE(client_->Infer("simple", SimpleInputs()).ok());  // still serving
}

TEST_F(KServeProtocolTest, SystemSharedMemoryInputsAndOutputs) {
  testing::PosixShm in("/inferd_test_in", 128), out("/inferd_test_out", 128);
  ASSERT_TRUE(in.ok() && out.ok());
  std::vector<int32_t> a(16), b(16, 2);
  for (int i = 0; i < 16; ++i) a[i] = i;
  in.Write(0, a.data(), 16);
  in.Write(64, b.data(), 16);
  ASSERT_TRUE(client_->RegisterSystemSharedMemory("input_data", in.key(), 128).ok());
  ASSERT_TRUE(client_->RegisterSystemSharedMemory("output_data", out.key(), 128).ok());
  auto status = client_->GetSystemSharedMemoryStatus();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->regions().at("input_data").key(), "/inferd_test_in");
  EXPECT_EQ(status->regions().at("input_data").byte_size(), 128u);

  std::vector<InferInput> inputs = {{"INPUT0", {1, 16}, "INT32"}, {"INPUT1", {1, 16}, "INT32"}};
  inputs[0].shm_region = inputs[1].shm_region = "input_data";
  inputs[0].shm_byte_size = inputs[1].shm_byte_size = 64;
  inputs[1].shm_offset = 64;
  std::vector<RequestedOutput> outputs = {{"OUTPUT0", 0, "output_data", 64, 0},
                                          {"OUTPUT1", 0, "output_data", 64, 64}};
  auto r = client_->Infer("simple", inputs, outputs);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->outputs_size(), 2);
  EXPECT_EQ(r->raw_output_contents(0), "");  // the data is in the region
  const auto* sums = reinterpret_cast<const int32_t*>(out.data());
  const auto* diffs = reinterpret_cast<const int32_t*>(out.data() + 64);
  EXPECT_EQ(sums[5], 7);
  EXPECT_EQ(diffs[5], 3);

  // Hostile ranges name the parameter.
  inputs[1].shm_offset = 96;
  auto past = client_->Infer("simple", inputs, outputs);
  EXPECT_EQ(past.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(past.status().message(), HasSubstr("inputs[1].parameters.shared_memory_byte_size"));
  inputs[1].shm_offset = 4096;
  past = client_->Infer("simple", inputs, outputs);
  EXPECT_THAT(past.status().message(), HasSubstr("shared_memory_offset"));
  inputs[1].shm_offset = 64;
  outputs[1].shm_byte_size = 8;
  past = client_->Infer("simple", inputs, outputs);
  EXPECT_THAT(past.status().message(), HasSubstr("shared_memory_byte_size"));
  inputs[0].shm_region = "no_such_region";
  past = client_->Infer("simple", inputs, {});
  EXPECT_THAT(past.status().message(), HasSubstr("inputs[0].parameters.shared_memory_region"));

  EXPECT_EQ(client_->RegisterSystemSharedMemory("big", in.key(), 4096).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->RegisterSystemSharedMemory("path", "/../etc/passwd", 8).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->RegisterSystemSharedMemory("none", "/inferd_no_such_key", 8).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->RegisterSystemSharedMemory("input_data", in.key(), 8).code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(client_->UnregisterSystemSharedMemory().ok());
  EXPECT_EQ(client_->GetSystemSharedMemoryStatus("input_data").status().code(),
            absl::StatusCode::kNotFound);
}

// Verifies that a region unregistered while a request writes into it stays
// mapped until the request ends: the decoupled responses land after it.
TEST_F(KServeProtocolTest, RegionUnregisteredDuringARequestServesItToTheEnd) {
  testing::PosixShm out("/inferd_test_live", 64);
  ASSERT_TRUE(out.ok());
  ASSERT_TRUE(client_->RegisterSystemSharedMemory("live", out.key(), 64).ok());
  Collected got;
  client_->StartStream([&](const auto& r) { got.Add(r); });
  auto req = client_->MakeRequest("repeat_int32",
                                  {{"IN", {2}, "INT32", testing::Raw<int32_t>({41, 42})},
                                   {"DELAY", {2}, "UINT32", testing::Raw<uint32_t>({0, 300})},
                                   {"WAIT", {1}, "UINT32", testing::Raw<uint32_t>({0})}},
                                  {{"OUT", 0, "live", 4, 0}, {"IDX", 0, "live", 4, 4}}, "live");
  ASSERT_TRUE(client_->AsyncStreamInfer(req));
  got.WaitFor(1);  // the request runs and has written its first response
  {
    absl::MutexLock lock(&got.mu);
    ASSERT_EQ(got.by_id["live"].size(), 1u);
    ASSERT_TRUE(got.by_id["live"][0].error_message().empty())
        << got.by_id["live"][0].error_message();
  }
  EXPECT_EQ(reinterpret_cast<const int32_t*>(out.data())[0], 41);
  ASSERT_TRUE(client_->UnregisterSystemSharedMemory("live").ok());
  got.WaitFor(2);
  EXPECT_TRUE(client_->StopStream().ok());
  absl::MutexLock lock(&got.mu);
  ASSERT_EQ(got.by_id["live"].size(), 2u);
  EXPECT_TRUE(got.by_id["live"][1].error_message().empty()) << got.by_id["live"][1].error_message();
  EXPECT_EQ(reinterpret_cast<const int32_t*>(out.data())[0], 42);
}

// CUDA shared memory on host devices: the stand-in handle names a POSIX
// object; the request reads it in place as a device input.
TEST_F(KServeProtocolTest, CudaSharedMemoryStandInOnHostDevices) {
  if (testing::DeviceArgs(1).empty()) GTEST_SKIP() << "GPUs take real handles (cuda_shm_gpu_test)";
  testing::PosixShm mem("/inferd_test_cuda", 128);
  ASSERT_TRUE(mem.ok());
  std::vector<int32_t> a(16, 3), b(16, 1);
  mem.Write(0, a.data(), 16);
  mem.Write(64, b.data(), 16);
  ASSERT_TRUE(client_->RegisterCudaSharedMemory("gpu_in", mem.HostIpcHandle(), 0, 128).ok());
  EXPECT_EQ(client_->RegisterCudaSharedMemory("bad", "short", 0, 128).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->RegisterCudaSharedMemory("dev", mem.HostIpcHandle(), 7, 128).code(),
            absl::StatusCode::kNotFound);
  auto status = client_->GetCudaSharedMemoryStatus();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->regions().at("gpu_in").byte_size(), 128u);
  std::vector<InferInput> inputs = {{"INPUT0", {1, 16}, "INT32"}, {"INPUT1", {1, 16}, "INT32"}};
  inputs[0].shm_region = inputs[1].shm_region = "gpu_in";
  inputs[0].shm_byte_size = inputs[1].shm_byte_size = 64;
  inputs[1].shm_offset = 64;
  auto r = client_->Infer("simple", inputs);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(testing::Values<int32_t>(*testing::OutputRaw(*r, "OUTPUT0"))[0], 4);
  inference::CudaSharedMemoryUnregisterRequest unreg;
  inference::CudaSharedMemoryUnregisterResponse unreg_resp;
  grpc::ClientContext ctx;
  EXPECT_TRUE(client_->stub().CudaSharedMemoryUnregister(&ctx, unreg, &unreg_resp).ok());
}

// A client that never reads its stream: the daemon stops reading at the
// held-response cap, so it runs at most that many requests (plus what the
// transport buffers), not all it was sent.
TEST(KServeStreamFlowControlTest, ClientThatNeverReadsIsPaused) {
  testing::ConfiguredDaemon daemon(absl::StrCat("models: {repository: \"", Repository(), "\"}\n"
                                                "server: {max_stream_held_responses: 8}\n"),
                                   1);
  ASSERT_TRUE(daemon.process().started()) << daemon.process().Stderr();
  testing::TritonClient client(daemon.process().target());
  grpc::ClientContext ctx;
  auto stream = client.stub().ModelStreamInfer(&ctx);
  std::string payload(256 << 10, 'x');  // 256 KiB responses fill windows fast
  std::atomic<int> written{0};
  std::thread writer([&] {
    for (int i = 0; i < 400; ++i) {
      auto req = client.MakeRequest(
          "simple_identity", {{"INPUT0", {1, 1}, "BYTES", testing::RawStrings({payload})}}, {});
      if (!stream->Write(req)) return;
      ++written;
    }
  });
  // Let the daemon take what it will; the count settles well below 400.
  uint64_t ran = 0;
  for (int settled = 0, tries = 0; settled < 10 && tries < 400; ++tries) {
    absl::SleepFor(absl::Milliseconds(50));
    auto stats = client.GetInferenceStatistics("simple_identity");
    ASSERT_TRUE(stats.ok());
    const uint64_t now = stats->model_stats(0).inference_stats().success().count();
    settled = now == ran ? settled + 1 : 0;
    ran = now;
  }
  EXPECT_LT(ran, 100u) << "requests ran although the client read nothing";
  EXPECT_LT(written.load(), 400);
  ctx.TryCancel();
  writer.join();
  (void)stream->Finish();
  EXPECT_TRUE(client.Infer("simple", SimpleInputs()).ok());
  EXPECT_EQ(daemon.Stop(), 0) << daemon.process().Stderr();
}

}  // namespace
}  // namespace inferd
