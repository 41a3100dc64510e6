// The KServe adapter in process: requests decoded (or refused, naming the
// field) without a daemon; the submitter is a fake that copies the input
// to the output (an identity model) or reports what it was given.
#include "server/kserve_service.h"

#include <atomic>
#include <cstring>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "core/models/builtin_op_model.h"
#include "core/models/model_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "inference/grpc_service.grpc.pb.h"
#include "prometheus/registry.h"
#include "server/grpc_metrics.h"
#include "tests/server/server_test_util.h"

namespace inferd {
namespace {

using ::testing::HasSubstr;
using testing_server::InProcessServer;
using testing_server::RequestCount;

constexpr char kInfer[] = "inference.GRPCInferenceService/ModelInfer";

// Runs every request as the identity: OUTPUT0 = INPUT0, on the calling
// thread; or fails it with `fail` when set.
class IdentitySubmitter final : public InferSubmitter {
 public:
  void Submit(InferRequest request, InferResponder* responder) override {
    submitted.fetch_add(1);
    if (!fail.ok()) {
      responder->Complete(fail);
      return;
    }
    const InferInput& in = request.inputs[0];
    void* out = responder->AllocateOutput(0, request.model->signature().outputs[0], in.desc);
    if (out != nullptr) std::memcpy(out, in.data, in.desc.byte_size);
    responder->Complete(absl::OkStatus());
  }
  std::atomic<int> submitted{0};
  absl::Status fail;
};

class KServeServiceTest : public ::testing::Test {
 protected:
  KServeServiceTest() {
    ModelSignature sig;
    sig.name = "simple_identity";
    sig.platform = "inferd_builtin";
    sig.inputs = {{"INPUT0", DataType::kInt32, {-1}}};
    sig.outputs = {{"OUTPUT0", DataType::kInt32, {-1}}};
    auto model = CreateBuiltinOpModel(BuiltinOp::kIdentity, sig);
    EXPECT_TRUE(model.ok()) << model.status();
    models_.Add(*model);
    service_ = std::make_unique<KServeService>(&models_, &submitter_, KServeOptions{}, &metrics_);
    service_->SetReady(true);
    server_ = std::make_unique<InProcessServer>(std::vector<grpc::Service*>{service_.get()});
    stub_ = inference::GRPCInferenceService::NewStub(server_->channel());
  }

  static inference::ModelInferRequest Request(std::vector<int32_t> values) {
    inference::ModelInferRequest req;
    req.set_model_name("simple_identity");
    req.set_id("r1");
    auto* in = req.add_inputs();
    in->set_name("INPUT0");
    in->set_datatype("INT32");
    in->add_shape(static_cast<int64_t>(values.size()));
    req.add_raw_input_contents(
        std::string(reinterpret_cast<const char*>(values.data()), values.size() * 4));
    return req;
  }

  grpc::Status Infer(const inference::ModelInferRequest& req, inference::ModelInferResponse* resp) {
    grpc::ClientContext ctx;
    return stub_->ModelInfer(&ctx, req, resp);
  }

  prometheus::Registry registry_;
  GrpcMetrics metrics_{registry_};
  ModelRegistry models_;
  IdentitySubmitter submitter_;
  std::unique_ptr<KServeService> service_;
  std::unique_ptr<InProcessServer> server_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
};

TEST_F(KServeServiceTest, InferFillsTheResponse) {
  inference::ModelInferResponse resp;
  grpc::Status st = Infer(Request({1, 2, 3}), &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.model_name(), "simple_identity");
  EXPECT_EQ(resp.id(), "r1");
  ASSERT_EQ(resp.outputs_size(), 1);
  EXPECT_EQ(resp.outputs(0).name(), "OUTPUT0");
  EXPECT_EQ(resp.outputs(0).datatype(), "INT32");
  ASSERT_EQ(resp.raw_output_contents_size(), 1);
  std::vector<int32_t> out(3);
  ASSERT_EQ(resp.raw_output_contents(0).size(), 12u);
  std::memcpy(out.data(), resp.raw_output_contents(0).data(), 12);
  EXPECT_EQ(out, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(RequestCount(registry_, kInfer, "OK"), 1);
}

TEST_F(KServeServiceTest, TypedContentsAreDecoded) {
  inference::ModelInferRequest req = Request({});
  req.clear_raw_input_contents();
  req.mutable_inputs(0)->clear_shape();
  req.mutable_inputs(0)->add_shape(2);
  req.mutable_inputs(0)->mutable_contents()->add_int_contents(7);
  req.mutable_inputs(0)->mutable_contents()->add_int_contents(-8);
  inference::ModelInferResponse resp;
  ASSERT_TRUE(Infer(req, &resp).ok());
  std::vector<int32_t> out(2);
  ASSERT_EQ(resp.raw_output_contents(0).size(), 8u);
  std::memcpy(out.data(), resp.raw_output_contents(0).data(), 8);
  EXPECT_EQ(out, (std::vector<int32_t>{7, -8}));
}

// Tensor conversion errors: INVALID_ARGUMENT naming the field, nothing
// submitted, the code counted.
TEST_F(KServeServiceTest, BadTensorsAreRefusedNamingTheField) {
  struct Case {
    std::function<void(inference::ModelInferRequest*)> spoil;
    std::string field;
  };
  const std::vector<Case> cases = {
      {[](inference::ModelInferRequest* r) { r->mutable_inputs(0)->set_datatype("INT33"); },
       "inputs[0]"},
      {[](inference::ModelInferRequest* r) { r->mutable_raw_input_contents(0)->append("x"); },
       "inputs[0] (INPUT0): shape holds 2 INT32 elements but 9 bytes were given"},
      {[](inference::ModelInferRequest* r) { r->mutable_inputs(0)->set_shape(0, -3); },
       "inputs[0]"},
      {[](inference::ModelInferRequest* r) { r->mutable_inputs(0)->set_name("INPUT9"); }, "INPUT9"},
      {[](inference::ModelInferRequest* r) {
         r->mutable_inputs(0)->mutable_contents()->add_int_contents(1);
       },
       "inputs[0]"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    inference::ModelInferRequest req = Request({1, 2});
    c.spoil(&req);
    inference::ModelInferResponse resp;
    grpc::Status st = Infer(req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << "case " << i;
    EXPECT_THAT(st.error_message(), HasSubstr(c.field)) << "case " << i;
    EXPECT_EQ(resp.outputs_size(), 0);
  }
  EXPECT_EQ(submitter_.submitted.load(), 0);
  EXPECT_EQ(RequestCount(registry_, kInfer, "INVALID_ARGUMENT"), cases.size());
}

TEST_F(KServeServiceTest, UnknownModelIsNotFound) {
  inference::ModelInferRequest req = Request({1});
  req.set_model_name("nope");
  inference::ModelInferResponse resp;
  grpc::Status st = Infer(req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(st.error_message(), HasSubstr("nope"));
  EXPECT_EQ(RequestCount(registry_, kInfer, "NOT_FOUND"), 1);
}

TEST_F(KServeServiceTest, AFailedExecutionClearsTheOutputs) {
  submitter_.fail = absl::ResourceExhaustedError("device 0: out of memory");
  inference::ModelInferResponse resp;
  grpc::Status st = Infer(Request({1, 2}), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(st.error_message(), "device 0: out of memory");
  EXPECT_EQ(RequestCount(registry_, kInfer, "RESOURCE_EXHAUSTED"), 1);
}

TEST_F(KServeServiceTest, UnaryRpcsAreCountedByCode) {
  grpc::ClientContext c1;
  inference::ModelReadyRequest ready;
  ready.set_name("simple_identity");
  inference::ModelReadyResponse ready_resp;
  ASSERT_TRUE(stub_->ModelReady(&c1, ready, &ready_resp).ok());
  EXPECT_TRUE(ready_resp.ready());

  grpc::ClientContext c2;
  inference::ModelMetadataRequest meta;
  meta.set_name("missing");
  inference::ModelMetadataResponse meta_resp;
  EXPECT_EQ(stub_->ModelMetadata(&c2, meta, &meta_resp).error_code(), grpc::StatusCode::NOT_FOUND);

  EXPECT_EQ(RequestCount(registry_, "inference.GRPCInferenceService/ModelReady", "OK"), 1);
  EXPECT_EQ(RequestCount(registry_, "inference.GRPCInferenceService/ModelMetadata", "NOT_FOUND"),
            1);
}

}  // namespace
}  // namespace inferd
