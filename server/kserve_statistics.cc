// KServeService::ModelStatistics: the statistics extension. Reads each
// loaded model's ModelStatistics (core/models/model_statistics.h) and
// converts it to the protocol's messages.
#include "absl/strings/str_cat.h"
#include "server/kserve_service.h"
#include "server/server_call.h"

namespace inferd {
namespace {

void Fill(const StatDuration& d, inference::StatisticDuration* out) {
  out->set_count(d.count);
  out->set_ns(d.ns);
}

void FillModel(const Model& model, inference::ModelStatistics* out) {
  const ModelSignature& sig = model.signature();
  const ModelStatisticsSnapshot s = model.statistics().Snapshot();
  out->set_name(sig.name);
  out->set_version(sig.version);
  out->set_last_inference(s.last_inference_ms);
  out->set_inference_count(s.inference_count);
  out->set_execution_count(s.execution_count);
  inference::InferStatistics* is = out->mutable_inference_stats();
  Fill(s.success, is->mutable_success());
  Fill(s.fail, is->mutable_fail());
  Fill(s.queue, is->mutable_queue());
  Fill(s.compute_input, is->mutable_compute_input());
  Fill(s.compute_infer, is->mutable_compute_infer());
  Fill(s.compute_output, is->mutable_compute_output());
  is->mutable_cache_hit();
  is->mutable_cache_miss();
  for (const ModelStatisticsSnapshot::Batch& b : s.batches) {
    inference::InferBatchStatistics* bs = out->add_batch_stats();
    bs->set_batch_size(b.batch_size);
    Fill(b.compute_input, bs->mutable_compute_input());
    Fill(b.compute_infer, bs->mutable_compute_infer());
    Fill(b.compute_output, bs->mutable_compute_output());
  }
}

}  // namespace

grpc::ServerUnaryReactor* KServeService::ModelStatistics(
    grpc::CallbackServerContext* ctx, const inference::ModelStatisticsRequest* req,
    inference::ModelStatisticsResponse* resp) {
  UnaryCall call(ctx, m_statistics_);
  if (req->name().empty()) {
    if (!req->version().empty()) {
      return call.Finish(absl::InvalidArgumentError("version: needs a model name"));
    }
    for (const auto& model : models_->List()) FillModel(*model, resp->add_model_stats());
    return call.Finish(absl::OkStatus());
  }
  auto model = models_->Find(req->name(), req->version());
  if (!model.ok()) return call.Finish(model.status());
  FillModel(**model, resp->add_model_stats());
  return call.Finish(absl::OkStatus());
}

}  // namespace inferd
