// Starts the real inferd on host devices and calls it over gRPC.
#include <csignal>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "clients/cpp/inferd_client.h"
#include "clients/cpp/tensor_helpers.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/integration/daemon_process.h"

namespace inferd {
namespace {


class KServeIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    daemon_ = new testing::ConfiguredDaemon(
        "server:\n  max_receive_message_bytes: 1048576\n", 2);
    ASSERT_TRUE(daemon_->process().started()) << daemon_->process().Stderr();
  }
  static void TearDownTestSuite() {
    EXPECT_EQ(daemon_->Stop(), 0) << daemon_->process().Stderr();
    delete daemon_;
  }
  void SetUp() override {
    ClientOptions o;
    o.target = daemon_->process().target();
    o.timeout = absl::Seconds(20);
    client_ = std::make_unique<InferdClient>(o);
  }

  absl::StatusOr<inference::ModelInferResponse> Infer(const inference::ModelInferRequest& r) {
    return client_->Infer(r);
  }

  static testing::ConfiguredDaemon* daemon_;
  std::unique_ptr<InferdClient> client_;
};

testing::ConfiguredDaemon* KServeIntegrationTest::daemon_ = nullptr;

TEST_F(KServeIntegrationTest, HealthReportsServingForServerAndNamedService) {
  EXPECT_EQ(client_->Health("").value_or(false), true);
  EXPECT_EQ(client_->Health("inferd").value_or(false), true);
  absl::StatusOr<bool> unknown = client_->Health("nope");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);

  inference::ServerReadyResponse ready;
  EXPECT_TRUE(client_
                  ->WithRetries([&](grpc::ClientContext* ctx) {
                    return client_->kserve().ServerReady(ctx, {}, &ready);
                  })
                  .ok());
  EXPECT_TRUE(ready.ready());
  auto meta = client_->ServerMetadata();
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_EQ(meta->name(), "inferd");
}

TEST_F(KServeIntegrationTest, ReflectionListsAndDescribesServices) {
  auto stub = grpc::reflection::v1alpha::ServerReflection::NewStub(client_->channel());
  grpc::ClientContext ctx;
  auto stream = stub->ServerReflectionInfo(&ctx);
  grpc::reflection::v1alpha::ServerReflectionRequest req;
  req.set_list_services("*");
  ASSERT_TRUE(stream->Write(req));
  grpc::reflection::v1alpha::ServerReflectionResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  std::vector<std::string> names;
  for (const auto& s : resp.list_services_response().service()) names.push_back(s.name());
  EXPECT_NE(std::find(names.begin(), names.end(), "inference.GRPCInferenceService"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "grpc.health.v1.Health"), names.end());

  // `grpcurl describe grpc.health.v1.Health` needs the file descriptor.
  req.Clear();
  req.set_file_containing_symbol("grpc.health.v1.Health");
  ASSERT_TRUE(stream->Write(req));
  ASSERT_TRUE(stream->Read(&resp));
  EXPECT_GT(resp.file_descriptor_response().file_descriptor_proto_size(), 0);
  req.Clear();
  req.set_file_containing_symbol("inference.ModelInferRequest");
  ASSERT_TRUE(stream->Write(req));
  ASSERT_TRUE(stream->Read(&resp));
  EXPECT_GT(resp.file_descriptor_response().file_descriptor_proto_size(), 0);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(KServeIntegrationTest, ModelMetadataDescribesBuiltins) {
  auto meta = client_->ModelMetadata("add");
  ASSERT_TRUE(meta.ok()) << meta.status();
  ASSERT_EQ(meta->inputs_size(), 2);
  EXPECT_EQ(meta->inputs(0).name(), "INPUT0");
  EXPECT_EQ(meta->outputs(0).name(), "OUTPUT0");
  auto models = client_->ListModels();
  ASSERT_TRUE(models.ok());
  EXPECT_EQ(models->models_size(), 3);
}

std::string Values(DataType t, const char* ints) {
  absl::StatusOr<std::string> b = EncodeValues(t, t == DataType::kBool ? "true,false,true,false" : ints);
  EXPECT_TRUE(b.ok()) << b.status();
  return b.value_or("");
}

// Verifies identity, add and scale on every datatype the protocol has.
TEST_F(KServeIntegrationTest, ModelInferEveryDatatype) {
  for (DataType t : kAllFixedDataTypes) {
    SCOPED_TRACE(DataTypeName(t));
    const std::string a = Values(t, "1,2,3,4");
    const std::string b = Values(t, "5,6,7,8");
    {
      inference::ModelInferRequest req;
      req.set_model_name("identity");
      req.set_id("req-1");
      AddRawInput(&req, "INPUT0", t, {2, 2}, a);
      auto resp = Infer(req);
      ASSERT_TRUE(resp.ok()) << resp.status();
      EXPECT_EQ(resp->id(), "req-1");
      ASSERT_EQ(resp->outputs_size(), 1);
      EXPECT_EQ(resp->outputs(0).datatype(), DataTypeName(t));
      EXPECT_EQ(std::vector<int64_t>(resp->outputs(0).shape().begin(), resp->outputs(0).shape().end()),
                (std::vector<int64_t>{2, 2}));
      EXPECT_EQ(resp->raw_output_contents(0), a);
    }
    {
      inference::ModelInferRequest req;
      req.set_model_name("add");
      AddRawInput(&req, "INPUT0", t, {4}, a);
      AddRawInput(&req, "INPUT1", t, {4}, b);
      auto resp = Infer(req);
      ASSERT_TRUE(resp.ok()) << resp.status();
      const std::string expected =
          t == DataType::kBool ? Values(t, "") : Values(t, "6,8,10,12");
      EXPECT_EQ(FormatValues(t, resp->raw_output_contents(0)), FormatValues(t, expected));
    }
    {
      inference::ModelInferRequest req;
      req.set_model_name("scale");
      (*req.mutable_parameters())["factor"].set_double_param(3.0);
      AddRawInput(&req, "INPUT0", t, {4}, a);
      auto resp = Infer(req);
      ASSERT_TRUE(resp.ok()) << resp.status();
      const std::string expected = t == DataType::kBool ? a : Values(t, "3,6,9,12");
      EXPECT_EQ(FormatValues(t, resp->raw_output_contents(0)), FormatValues(t, expected));
    }
  }
}

TEST_F(KServeIntegrationTest, BytesIdentityAndTypedContents) {
  inference::ModelInferRequest req;
  req.set_model_name("identity");
  auto* in = req.add_inputs();
  in->set_name("INPUT0");
  in->set_datatype("BYTES");
  in->add_shape(3);
  for (const char* s : {"alpha", "", "gamma"}) in->mutable_contents()->add_bytes_contents(s);
  auto resp = Infer(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->raw_output_contents(0), EncodeBytesElements({"alpha", "", "gamma"}));

  inference::ModelInferRequest typed;
  typed.set_model_name("add");
  for (const char* name : {"INPUT0", "INPUT1"}) {
    auto* t = typed.add_inputs();
    t->set_name(name);
    t->set_datatype("INT32");
    t->add_shape(3);
    for (int v : {1, -2, 3}) t->mutable_contents()->add_int_contents(v);
  }
  auto sum = Infer(typed);
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(FromBytes<int32_t>(sum->raw_output_contents(0)), (std::vector<int32_t>{2, -4, 6}));
}

TEST_F(KServeIntegrationTest, RequestedOutputsFilterTheResponse) {
  inference::ModelInferRequest req;
  req.set_model_name("identity");
  AddRawInput(&req, "INPUT0", DataType::kFp32, {1}, ToBytes<float>({1.5f}));
  req.add_outputs()->set_name("OUTPUT0");
  auto resp = Infer(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->outputs_size(), 1);
  req.mutable_outputs(0)->set_name("NOPE");
  auto bad = Infer(req);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(bad.status().message(), "outputs[0].name")) << bad.status();
}

struct BadCase {
  const char* what;
  absl::StatusCode code;
  const char* field;  // must appear in the message
};

// Verifies each malformed request gets the right code and names the field,
// and that the daemon keeps serving afterwards.
TEST_F(KServeIntegrationTest, MalformedRequestsAreRejectedWithFieldNames) {
  auto run = [&](const BadCase& c, const inference::ModelInferRequest& req) {
    SCOPED_TRACE(c.what);
    auto resp = Infer(req);
    ASSERT_FALSE(resp.ok());
    EXPECT_EQ(resp.status().code(), c.code) << resp.status();
    EXPECT_TRUE(absl::StrContains(resp.status().message(), c.field)) << resp.status();
  };
  inference::ModelInferRequest req;
  req.set_model_name("no_such_model");
  AddRawInput(&req, "INPUT0", DataType::kFp32, {1}, ToBytes<float>({1}));
  run({"unknown model", absl::StatusCode::kNotFound, "model_name"}, req);

  req.set_model_name("add");
  run({"wrong input count", absl::StatusCode::kInvalidArgument, "inputs"}, req);

  req.set_model_name("identity");
  req.mutable_inputs(0)->set_name("WRONG");
  run({"unknown input name", absl::StatusCode::kInvalidArgument, "inputs[0].name"}, req);

  req.mutable_inputs(0)->set_name("INPUT0");
  req.mutable_inputs(0)->set_shape(0, 3);
  run({"shape/byte-size mismatch", absl::StatusCode::kInvalidArgument, "inputs[0]"}, req);

  req.mutable_inputs(0)->set_shape(0, -1);
  run({"negative dim", absl::StatusCode::kInvalidArgument, "inputs[0].shape"}, req);

  req.mutable_inputs(0)->set_shape(0, 1);
  req.mutable_inputs(0)->set_datatype("FP8");
  run({"unknown datatype", absl::StatusCode::kInvalidArgument, "inputs[0].datatype"}, req);

  inference::ModelInferRequest bytes_to_add;
  bytes_to_add.set_model_name("scale");
  AddRawInput(&bytes_to_add, "INPUT0", DataType::kBytes, {1}, EncodeBytesElements({"x"}));
  run({"unsupported datatype for model", absl::StatusCode::kInvalidArgument, "BYTES"},
      bytes_to_add);

  inference::ModelInferRequest raw_count;
  raw_count.set_model_name("identity");
  AddRawInput(&raw_count, "INPUT0", DataType::kFp32, {1}, ToBytes<float>({1}));
  raw_count.add_raw_input_contents("extra");
  run({"raw count mismatch", absl::StatusCode::kInvalidArgument, "raw_input_contents"}, raw_count);

  inference::ModelInferRequest fp16_typed;
  fp16_typed.set_model_name("identity");
  auto* in = fp16_typed.add_inputs();
  in->set_name("INPUT0");
  in->set_datatype("FP16");
  in->add_shape(1);
  in->mutable_contents()->add_fp32_contents(1);
  run({"fp16 typed", absl::StatusCode::kInvalidArgument, "raw_input_contents"}, fp16_typed);

  inference::ModelInferRequest bad_bytes;
  bad_bytes.set_model_name("identity");
  AddRawInput(&bad_bytes, "INPUT0", DataType::kBytes, {2}, EncodeBytesElements({"x"}));
  run({"bytes framing", absl::StatusCode::kInvalidArgument, "BYTES"}, bad_bytes);

  inference::ModelInferRequest big;
  big.set_model_name("identity");
  AddRawInput(&big, "INPUT0", DataType::kUint8, {2 << 20}, std::string(2 << 20, 'x'));
  run({"oversized message", absl::StatusCode::kResourceExhausted, "larger than max"}, big);

  EXPECT_EQ(client_->Health("inferd").value_or(false), true);
}

TEST_F(KServeIntegrationTest, MetricsCountRequestsAndPassPromtool) {
  inference::ModelInferRequest req;
  req.set_model_name("identity");
  AddRawInput(&req, "INPUT0", DataType::kFp32, {1}, ToBytes<float>({1}));
  ASSERT_TRUE(Infer(req).ok());
  const std::string body = testing::HttpGet(daemon_->process().metrics_port(), "/metrics");
  EXPECT_TRUE(absl::StrContains(
      body, "inferd_grpc_requests_total{code=\"OK\",method=\"inference.GRPCInferenceService/ModelInfer\"}"))
      << body.substr(0, 2000);
  EXPECT_TRUE(absl::StrContains(body, "inferd_device_memory_total_bytes{device=\"0\""));
  EXPECT_TRUE(absl::StrContains(body, "inferd_build_info"));
  if (access("/usr/bin/promtool", X_OK) != 0) GTEST_SKIP() << "promtool not installed";
  const std::string path = testing::WriteTempFile(body, ".prom");
  auto r = testing::RunCommand({"/bin/sh", "-c", "/usr/bin/promtool check metrics < " + path},
                               absl::Seconds(30));
  std::remove(path.c_str());
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST_F(KServeIntegrationTest, InferctlTalksToTheDaemon) {
  const std::string target = "--target=" + daemon_->process().target();
  auto health = testing::RunCommand({testing::InferctlBinary(), target, "health"}, absl::Seconds(30));
  EXPECT_EQ(health.exit_code, 0) << health.output;
  EXPECT_TRUE(absl::StrContains(health.output, "SERVING"));
  auto models = testing::RunCommand({testing::InferctlBinary(), target, "models"}, absl::Seconds(30));
  EXPECT_EQ(models.exit_code, 0) << models.output;
  EXPECT_TRUE(absl::StrContains(models.output, "identity"));
  auto infer = testing::RunCommand({testing::InferctlBinary(), target, "infer", "add",
                                    "--input=INPUT0:FP32:2:1,2", "--input=INPUT1:FP32:2:3,4"},
                                   absl::Seconds(30));
  EXPECT_EQ(infer.exit_code, 0) << infer.output;
  EXPECT_TRUE(absl::StrContains(infer.output, "OUTPUT0 FP32 [2]: 4,6")) << infer.output;
  auto bad = testing::RunCommand({testing::InferctlBinary(), target, "infer", "nope",
                                  "--input=INPUT0:FP32:1:1"},
                                 absl::Seconds(30));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(bad.output, "NOT_FOUND")) << bad.output;
}

}  // namespace
}  // namespace inferd
