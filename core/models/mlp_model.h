// MlpModel: the `mlp` backend. A stack of dense layers
// y = act(x W^T + b), as torch.nn.Linear stores them (W [out, in],
// b [out]), in fp32, fp16 or bf16 with fp32 accumulation. One input
// [batch, in_features], one output [batch, out_features].
//
// On host devices it runs a reference path (plain loops, four batch rows
// per pass over a weight row) on the stream's worker, in stream order.
// Intermediate activations are rounded to the model dtype after each
// layer, as the GPU path stores them. Host scratch is a per-call heap
// buffer of 2 x batch x widest layer floats.
//
// On CUDA devices it runs libinferd_mlp_cuda.so (cuBLASLt with bias and
// activation epilogues), loaded with dlopen. Create uploads the weights to
// every CUDA device once; each device's instance also owns per-stream
// scratch (two activation buffers of max_batch_size x widest hidden layer,
// and a cuBLASLt workspace, 32 MiB from compute capability 9.0 on and 8 MiB
// below; with CUDA graphs, also an input and an
// output staging buffer of max_batch_size rows), allocated with cudaMalloc
// outside the memory engine's pools, for the life of the model. With
// MlpOptions::cuda_graphs (mlp.cuda_graphs in config.yaml, default on)
// each stream's forward at a batch size is captured into a CUDA graph on
// first use and replayed after (mlp_cuda_api.h).
//
// Thread-safety: immutable after Create; Validate and Execute may be
// called concurrently.
#ifndef INFERD_CORE_MODELS_MLP_MODEL_H_
#define INFERD_CORE_MODELS_MLP_MODEL_H_

#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/config/model_config.h"
#include "core/models/mlp_cuda_library.h"
#include "core/models/model.h"
#include "core/models/safetensors.h"

namespace inferd {

// One dense layer's weights, widened to float (exact for fp16/bf16).
struct MlpLayerWeights {
  int64_t in_features = 0;
  int64_t out_features = 0;
  MlpActivation activation = MlpActivation::kNone;
  std::vector<float> weight;  // [out_features, in_features], row-major
  std::vector<float> bias;    // [out_features], or empty for no bias
};

struct MlpNetwork {
  DataType dtype = DataType::kFp32;  // kFp32 | kFp16 | kBf16
  std::vector<MlpLayerWeights> layers;
};

// How the GPU path runs (host devices ignore it).
struct MlpOptions {
  bool cuda_graphs = true;  // replay captured CUDA graphs; false: always eager
};

// Reads the layers `spec.mlp` names from `weights` and checks them against
// each other and against spec's input/output dims. INVALID_ARGUMENT
// naming the key path and tensor (e.g. "mlp.layers[1].weight: tensor
// '2.weight' has shape [16, 32]; expected in_features 256").
absl::StatusOr<MlpNetwork> BuildMlpNetwork(const ModelConfigSpec& spec,
                                           const SafetensorsFile& weights);

// Computes y[batch, out] from x[batch, in] (elements of network.dtype) on
// the calling thread. The host reference path.
void RunMlpReference(const MlpNetwork& network, const void* x, void* y, int64_t batch);

class MlpModel final : public Model {
 public:
  // Makes the model runnable on `devices` (borrowed; must outlive the
  // model): uploads the weights to each CUDA device through `cuda`, which
  // may be null when no device is CUDA. FAILED_PRECONDITION when a CUDA
  // device is given without the library; the library's errors otherwise.
  static absl::StatusOr<std::unique_ptr<MlpModel>> Create(
      ModelSignature signature, MlpNetwork network, absl::Span<Device* const> devices,
      std::shared_ptr<const MlpCudaLibrary> cuda, MlpOptions options = {});
  ~MlpModel() override;

  // inferd::Model
  const ModelSignature& signature() const override { return signature_; }
  absl::Status Validate(absl::Span<const TensorDesc> inputs, const ModelParams& params,
                        absl::Span<TensorDesc> outputs) const override;
  // FAILED_PRECONDITION when `stream` belongs to a CUDA device the model
  // was not created for.
  absl::Status Execute(Stream& stream, absl::Span<const DeviceTensor> inputs,
                       const ModelParams& params,
                       absl::Span<const DeviceTensor> outputs) const override;

  const MlpNetwork& network() const { return network_; }
  // The GPU path's graph/eager counters on `device`; NOT_FOUND when the
  // model has no CUDA instance there.
  absl::StatusOr<inferd_mlp_cuda_stats> CudaStats(const Device& device) const;

 private:
  MlpModel(ModelSignature signature, MlpNetwork network,
           std::shared_ptr<const MlpCudaLibrary> cuda);

  // Constant after construction.
  const ModelSignature signature_;
  const MlpNetwork network_;
  const std::shared_ptr<const MlpCudaLibrary> cuda_;
  absl::flat_hash_map<const Device*, void*> cuda_instances_;  // filled by Create only
};

}  // namespace inferd

#endif  // INFERD_CORE_MODELS_MLP_MODEL_H_
