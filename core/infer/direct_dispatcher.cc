#include "core/infer/direct_dispatcher.h"

#include <utility>

#include "core/infer/device_execution.h"

namespace inferd {
namespace {

// Stands between the execution and the client's responder to add the
// request to its model's statistics when it completes.
class StatisticsResponder final : public InferResponder {
 public:
  StatisticsResponder(InferResponder* sink, std::shared_ptr<const Model> model, int64_t count,
                      Clock* clock)
      : sink_(sink), model_(std::move(model)), count_(count), clock_(clock),
        start_(clock->Now()) {
    model_->statistics().AddPending(1);
  }

  void* AllocateOutput(int index, const TensorSpec& spec, const TensorDesc& desc) override {
    return sink_->AllocateOutput(index, spec, desc);
  }
  void* AllocateDeviceOutput(int index, const TensorSpec& spec, const TensorDesc& desc,
                             Device& device) override {
    return sink_->AllocateDeviceOutput(index, spec, desc, device);
  }
  void ReportTiming(const ExecutionTiming& timing) override {
    timing_ = timing;
    sink_->ReportTiming(timing);
  }
  bool IsCancelled() const override { return sink_->IsCancelled(); }
  absl::Status SendResponse(absl::Span<const HostTensor> outputs) override {
    return sink_->SendResponse(outputs);
  }
  void Complete(absl::Status status) override {
    const absl::Time now = clock_->Now();
    ModelStatistics& stats = model_->statistics();
    if (status.ok()) {
      stats.RecordSuccess(count_, now - start_, absl::ZeroDuration(), timing_, now);
    } else {
      stats.RecordFailure(now - start_, now);
    }
    stats.AddPending(-1);
    InferResponder* sink = sink_;
    delete this;
    sink->Complete(std::move(status));
  }

 private:
  InferResponder* const sink_;
  const std::shared_ptr<const Model> model_;
  const int64_t count_;
  Clock* const clock_;
  const absl::Time start_;
  ExecutionTiming timing_;
};

}  // namespace

void DirectDispatcher::Submit(InferRequest request, InferResponder* responder) {
  const uint64_t n = next_.fetch_add(1, std::memory_order_relaxed);
  Device& device = *devices_[n % devices_.size()];
  Stream& stream = device.stream(static_cast<int>((n / devices_.size()) % device.num_streams()));
  auto* wrapped =
      new StatisticsResponder(responder, request.model, InferenceCount(request), clock_);
  ExecuteOnDevice(std::move(request), stream, *allocator_, wrapped);
}

}  // namespace inferd
