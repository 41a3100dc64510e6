#include "core/models/builtin_op_model.h"

#include <charconv>
#include <cstring>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/models/declared_signature.h"
#include "core/util/checked_math.h"

namespace inferd {
namespace {

absl::Status SignatureError(absl::string_view op, absl::string_view want) {
  return absl::InvalidArgumentError(
      absl::StrCat("inputs/outputs: builtin op ", op, " needs ", want));
}

bool AllOf(const std::vector<TensorSpec>& specs, DataType dtype) {
  for (const TensorSpec& s : specs) {
    if (s.dtype != dtype) return false;
  }
  return true;
}

// The check add_sub, string_add_sub and repeat share: input 1's shape
// equals input 0's (elementwise ops, one delay per value).
absl::Status SameShape(const ModelSignature& sig, absl::Span<const TensorDesc> inputs) {
  if (inputs[1].shape == inputs[0].shape) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("inputs[1] (", sig.inputs[1].name,
                                                 ").shape: must equal ", sig.inputs[0].name,
                                                 "'s shape"));
}

// What every op model shares: the declared signature, its checks (then the
// op's own, Check), and no device execution unless the op has one.
class OpModel : public Model {
 public:
  explicit OpModel(ModelSignature sig) : sig_(std::move(sig)) {}
  const ModelSignature& signature() const override { return sig_; }
  absl::Status Validate(absl::Span<const TensorDesc> inputs, const ModelParams&,
                        absl::Span<TensorDesc> outputs) const override {
    if (absl::Status st = ValidateDeclared(sig_, inputs, outputs); !st.ok()) return st;
    return Check(inputs, outputs);
  }
  absl::Status Execute(Stream&, absl::Span<const DeviceTensor>, const ModelParams&,
                       absl::Span<const DeviceTensor>) const override {
    return absl::InternalError(
        absl::StrCat("model '", sig_.name, "' does not run on a device stream"));
  }

 protected:
  // The op's checks after the declared ones; may refine `outputs`.
  virtual absl::Status Check(absl::Span<const TensorDesc> inputs,
                             absl::Span<TensorDesc> outputs) const = 0;

  const ModelSignature sig_;
};

// add_sub on the device: OUTPUT1 = INPUT1 * -1, then both sums.
class AddSubModel final : public OpModel {
 public:
  using OpModel::OpModel;
  absl::Status Execute(Stream& stream, absl::Span<const DeviceTensor> inputs, const ModelParams&,
                       absl::Span<const DeviceTensor> outputs) const override {
    Kernels& k = stream.device().kernels();
    const DataType dtype = inputs[0].desc->dtype;
    uint64_t n = 0;
    (void)ShapeElementCount(inputs[0].desc->shape, &n);  // checked by Validate
    absl::Status st = k.Add(stream, dtype, inputs[0].data, inputs[1].data, outputs[0].data, n);
    if (st.ok()) st = k.Scale(stream, dtype, inputs[1].data, -1.0, outputs[1].data, n);
    if (st.ok()) st = k.Add(stream, dtype, inputs[0].data, outputs[1].data, outputs[1].data, n);
    return st;
  }

 protected:
  absl::Status Check(absl::Span<const TensorDesc> inputs,
                     absl::Span<TensorDesc> outputs) const override {
    outputs[0] = outputs[1] = inputs[0];
    return SameShape(sig_, inputs);
  }
};

// identity on the device (any type; BYTES keep their serialized layout).
class IdentityOpModel final : public OpModel {
 public:
  using OpModel::OpModel;
  absl::Status Execute(Stream& stream, absl::Span<const DeviceTensor> inputs, const ModelParams&,
                       absl::Span<const DeviceTensor> outputs) const override {
    return stream.CopyDeviceToDevice(outputs[0].data, inputs[0].data, inputs[0].desc->byte_size);
  }
  void ExecuteMany(Stream& stream, absl::Span<DeviceCall> calls) const override {
    ExecuteIdentityMany(stream, calls);
  }

 protected:
  absl::Status Check(absl::Span<const TensorDesc> inputs,
                     absl::Span<TensorDesc> outputs) const override {
    outputs[0] = inputs[0];
    return absl::OkStatus();
  }
};

// Splits serialized BYTES (4-byte little-endian length, then the bytes).
std::vector<std::string_view> SplitBytes(const HostTensor& t) {
  std::vector<std::string_view> out;
  const auto* p = static_cast<const char*>(t.data);
  uint64_t off = 0;
  while (off + 4 <= t.desc->byte_size) {
    uint32_t len = 0;
    for (int b = 0; b < 4; ++b) len |= static_cast<uint32_t>(static_cast<uint8_t>(p[off + b])) << (8 * b);
    off += 4;
    if (len > t.desc->byte_size - off) break;
    out.emplace_back(p + off, len);
    off += len;
  }
  return out;
}

// string_add_sub on the host: decimal integer strings in, strings out.
class StringAddSubModel final : public OpModel {
 public:
  using OpModel::OpModel;
  absl::Status ExecuteHost(absl::Span<const HostTensor> inputs, const ModelParams&,
                           HostOutputs& outputs) const override {
    const std::vector<std::string_view> a = SplitBytes(inputs[0]);
    const std::vector<std::string_view> b = SplitBytes(inputs[1]);
    std::string sums, diffs;
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
      int64_t x = 0, y = 0;
      for (const auto& [text, value, which] :
           {std::tuple(a[i], &x, 0), std::tuple(b[i], &y, 1)}) {
        auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *value);
        if (ec != std::errc() || ptr != text.data() + text.size()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "inputs[", which, "] (", sig_.inputs[which].name, ")[", i,
              "]: not a decimal integer"));
        }
      }
      Append(&sums, std::to_string(x + y));
      Append(&diffs, std::to_string(x - y));
    }
    for (const auto& [index, bytes] : {std::pair<int, std::string*>(0, &sums), {1, &diffs}}) {
      TensorDesc desc{DataType::kBytes, inputs[0].desc->shape, bytes->size()};
      if (void* dst = outputs.Allocate(index, desc); dst != nullptr && !bytes->empty()) {
        std::memcpy(dst, bytes->data(), bytes->size());
      }
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Check(absl::Span<const TensorDesc> inputs,
                     absl::Span<TensorDesc>) const override {
    return SameShape(sig_, inputs);
  }
  static void Append(std::string* out, const std::string& s) {
    const uint32_t len = static_cast<uint32_t>(s.size());
    for (int b = 0; b < 4; ++b) out->push_back(static_cast<char>(len >> (8 * b)));
    out->append(s);
  }
};

// repeat (decoupled): one worker thread answers requests in arrival order.
// Its state is shared with the thread, which may outlive the model: the
// last reference to the model can go on the worker (a request it ended).
class RepeatModel final : public OpModel {
 public:
  explicit RepeatModel(ModelSignature sig)
      : OpModel(std::move(sig)), state_(std::make_shared<State>()) {
    worker_ = std::thread([state = state_] { Work(*state); });
  }
  ~RepeatModel() override {
    {
      absl::MutexLock lock(&state_->mu);
      state_->stop = true;
    }
    if (std::this_thread::get_id() == worker_.get_id()) {
      worker_.detach();
    } else {
      worker_.join();
    }
  }
  void ExecuteDecoupled(absl::Span<const HostTensor> inputs, const ModelParams&,
                        ResponseWriter* writer) const override {
    Request r;
    r.writer = writer;
    const auto* in = static_cast<const int32_t*>(inputs[0].data);
    const auto* delay = static_cast<const uint32_t*>(inputs[1].data);
    const uint64_t n = inputs[0].desc->byte_size / sizeof(int32_t);
    r.values.assign(in, in + n);
    r.delays_ms.assign(delay, delay + n);
    if (inputs[2].desc->byte_size >= sizeof(uint32_t)) {
      std::memcpy(&r.wait_ms, inputs[2].data, sizeof(uint32_t));
    }
    absl::MutexLock lock(&state_->mu);
    state_->queue.push_back(std::move(r));
  }

 private:
  struct Request {
    ResponseWriter* writer = nullptr;
    std::vector<int32_t> values;
    std::vector<uint32_t> delays_ms;
    uint32_t wait_ms = 0;
  };
  absl::Status Check(absl::Span<const TensorDesc> inputs,
                     absl::Span<TensorDesc>) const override {
    return SameShape(sig_, inputs);
  }

  struct State {
    absl::Mutex mu;
    std::deque<Request> queue ABSL_GUARDED_BY(mu);
    bool stop ABSL_GUARDED_BY(mu) = false;
  };

  // Waits `ms`, or less when the model goes. Returns false when it went.
  static bool Pause(State& state, uint32_t ms) {
    absl::MutexLock lock(&state.mu);
    state.mu.AwaitWithTimeout(absl::Condition(&state.stop), absl::Milliseconds(ms));
    return !state.stop;
  }

  static void Work(State& state) {
    while (true) {
      Request r;
      {
        absl::MutexLock lock(&state.mu);
        auto ready = [&state]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state.mu) {
          return state.stop || !state.queue.empty();
        };
        state.mu.Await(absl::Condition(&ready));
        if (state.queue.empty()) return;
        r = std::move(state.queue.front());
        state.queue.pop_front();
      }
      r.writer->Finish(Answer(state, r));
    }
  }

  static absl::Status Answer(State& state, const Request& r) {
    for (size_t i = 0; i < r.values.size(); ++i) {
      if (!Pause(state, r.delays_ms[i])) return absl::CancelledError("the model was unloaded");
      const int32_t out = r.values[i];
      const uint32_t idx = static_cast<uint32_t>(i);
      const TensorDesc out_desc{DataType::kInt32, {1}, sizeof(out)};
      const TensorDesc idx_desc{DataType::kUint32, {1}, sizeof(idx)};
      const HostTensor tensors[2] = {{&out_desc, &out}, {&idx_desc, &idx}};
      if (absl::Status st = r.writer->Send(tensors); !st.ok()) return st;
    }
    if (r.wait_ms > 0 && !Pause(state, r.wait_ms)) {
      return absl::CancelledError("the model was unloaded");
    }
    return absl::OkStatus();
  }

  const std::shared_ptr<State> state_;
  std::thread worker_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<const Model>> CreateBuiltinOpModel(BuiltinOp op,
                                                                  ModelSignature sig) {
  const size_t in = sig.inputs.size(), out = sig.outputs.size();
  switch (op) {
    case BuiltinOp::kAddSub: {
      const DataType t = sig.inputs.empty() ? DataType::kInvalid : sig.inputs[0].dtype;
      if (in != 2 || out != 2 || t == DataType::kBytes || !AllOf(sig.inputs, t) ||
          !AllOf(sig.outputs, t)) {
        return SignatureError("add_sub", "2 inputs and 2 outputs of one numeric type");
      }
      return std::shared_ptr<const Model>(std::make_shared<AddSubModel>(std::move(sig)));
    }
    case BuiltinOp::kStringAddSub:
      if (in != 2 || out != 2 || !AllOf(sig.inputs, DataType::kBytes) ||
          !AllOf(sig.outputs, DataType::kBytes)) {
        return SignatureError("string_add_sub", "2 BYTES inputs and 2 BYTES outputs");
      }
      sig.host_execution = true;
      return std::shared_ptr<const Model>(std::make_shared<StringAddSubModel>(std::move(sig)));
    case BuiltinOp::kIdentity:
      if (in != 1 || out != 1 || sig.inputs[0].dtype != sig.outputs[0].dtype) {
        return SignatureError("identity", "1 input and 1 output of the same type");
      }
      return std::shared_ptr<const Model>(std::make_shared<IdentityOpModel>(std::move(sig)));
    case BuiltinOp::kRepeat:
      if (in != 3 || out != 2 || sig.inputs[0].dtype != DataType::kInt32 ||
          sig.inputs[1].dtype != DataType::kUint32 || sig.inputs[2].dtype != DataType::kUint32 ||
          sig.outputs[0].dtype != DataType::kInt32 || sig.outputs[1].dtype != DataType::kUint32 ||
          sig.max_batch_size != 0) {
        return SignatureError("repeat",
                              "inputs IN INT32, DELAY UINT32, WAIT UINT32, outputs OUT INT32, "
                              "IDX UINT32 and max_batch_size 0");
      }
      sig.decoupled = true;
      return std::shared_ptr<const Model>(std::make_shared<RepeatModel>(std::move(sig)));
  }
  return absl::InvalidArgumentError("builtin.op: unknown");
}

}  // namespace inferd
