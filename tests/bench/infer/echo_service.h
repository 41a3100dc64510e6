// The bare gRPC echo the request-path benchmarks measure the daemon
// against: ModelInfer answered with each input back as an output, nothing
// else (no model, no scheduler).
#ifndef INFERD_TESTS_BENCH_INFER_ECHO_SERVICE_H_
#define INFERD_TESTS_BENCH_INFER_ECHO_SERVICE_H_

#include "grpcpp/grpcpp.h"
#include "inference/grpc_service.grpc.pb.h"

namespace inferd {

// Fills `resp` as the echo answers `req`.
inline void FillEchoResponse(const inference::ModelInferRequest& req,
                             inference::ModelInferResponse* resp) {
  resp->set_model_name(req.model_name());
  resp->set_id(req.id());
  for (const auto& in : req.inputs()) {
    auto* out = resp->add_outputs();
    out->set_name("OUTPUT0");
    out->set_datatype(in.datatype());
    *out->mutable_shape() = in.shape();
  }
  *resp->mutable_raw_output_contents() = req.raw_input_contents();
}

class EchoService final : public inference::GRPCInferenceService::CallbackService {
  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* ctx,
                                       const inference::ModelInferRequest* req,
                                       inference::ModelInferResponse* resp) override {
    FillEchoResponse(*req, resp);
    auto* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }
};

}  // namespace inferd

#endif  // INFERD_TESTS_BENCH_INFER_ECHO_SERVICE_H_
