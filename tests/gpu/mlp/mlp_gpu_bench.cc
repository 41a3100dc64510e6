// mlp_gpu_bench: latency and throughput of the mlp backend on the first
// GPU, for the PyTorch baseline shape (1024 -> 4096 -> 4096 -> 1024, relu)
// in fp32 and fp16. Prints a table; run by hand (not a test):
//   mlp_gpu_bench [iterations]
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/device/discovery.h"
#include "core/models/mlp_model.h"

namespace inferd {
namespace {

MlpNetwork Network(DataType dtype) {
  const std::vector<int64_t> sizes = {1024, 4096, 4096, 1024};
  MlpNetwork net;
  net.dtype = dtype;
  uint64_t s = 1;
  for (size_t l = 0; l + 1 < sizes.size(); ++l) {
    MlpLayerWeights layer;
    layer.in_features = sizes[l];
    layer.out_features = sizes[l + 1];
    layer.activation = l + 2 == sizes.size() ? MlpActivation::kNone : MlpActivation::kRelu;
    layer.weight.resize(sizes[l] * sizes[l + 1]);
    for (float& w : layer.weight) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      w = (static_cast<float>(s >> 40) / 16777216.0f - 0.5f) / 32.0f;
      if (dtype == DataType::kFp16) w = HalfToFloat(FloatToHalf(w));
    }
    layer.bias.assign(sizes[l + 1], 0.01f);
    net.layers.push_back(std::move(layer));
  }
  return net;
}

int Main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 200;
  auto devices = DiscoverCudaDevices({}, 2);
  if (!devices.ok() || devices->empty()) {
    std::printf("no CUDA device\n");
    return 0;
  }
  Device& gpu = *(*devices)[0];
  auto lib = MlpCudaLibrary::LoadDefault();
  if (!lib.ok()) {
    std::printf("%s\n", std::string(lib.status().message()).c_str());
    return 1;
  }
  constexpr int kMaxBatch = 1024;
  std::printf("device: %s; %d iterations per row\n", gpu.info().name.c_str(), iterations);
  std::printf("%-5s %6s %14s %14s %16s\n", "dtype", "batch", "sync_us/call", "piped_us/call",
              "samples/s(piped)");
  for (DataType dtype : {DataType::kFp32, DataType::kFp16}) {
    MlpNetwork net = Network(dtype);
    ModelSignature sig;
    sig.name = "bench";
    sig.max_batch_size = kMaxBatch;
    sig.inputs = {{"INPUT0", dtype, {-1, 1024}}};
    sig.outputs = {{"OUTPUT0", dtype, {-1, 1024}}};
    Device* devs[] = {&gpu};
    auto model = MlpModel::Create(sig, std::move(net), devs, *lib);
    if (!model.ok()) {
      std::printf("%s\n", std::string(model.status().message()).c_str());
      return 1;
    }
    const size_t bytes = kMaxBatch * 1024 * DataTypeSize(dtype);
    void* x = *gpu.AllocateRaw(bytes);
    void* y = *gpu.AllocateRaw(bytes);
    (void)gpu.stream(0).Memset(x, 0, bytes);
    for (int64_t batch : {1, 8, 64, 256, 1024}) {
      TensorDesc in{dtype, {batch, 1024}, batch * 1024 * DataTypeSize(dtype)};
      TensorDesc out = in;
      DeviceTensor din{&in, x};
      DeviceTensor dout{&out, y};
      Stream& s = gpu.stream(0);
      for (int i = 0; i < 20; ++i) (void)(*model)->Execute(s, {&din, 1}, {}, {&dout, 1});
      (void)s.Synchronize();
      absl::Time t0 = absl::Now();
      for (int i = 0; i < iterations; ++i) {
        (void)(*model)->Execute(s, {&din, 1}, {}, {&dout, 1});
        (void)s.Synchronize();
      }
      const double sync_us = absl::ToDoubleMicroseconds(absl::Now() - t0) / iterations;
      t0 = absl::Now();
      for (int i = 0; i < iterations; ++i) (void)(*model)->Execute(s, {&din, 1}, {}, {&dout, 1});
      absl::Status st = s.Synchronize();
      const double piped_us = absl::ToDoubleMicroseconds(absl::Now() - t0) / iterations;
      std::printf("%-5s %6lld %14.1f %14.1f %16.0f%s\n", dtype == DataType::kFp32 ? "fp32" : "fp16",
                  static_cast<long long>(batch), sync_us, piped_us, batch * 1e6 / piped_us,
                  st.ok() ? "" : "  (stream error)");
    }
    gpu.FreeRaw(x);
    gpu.FreeRaw(y);
  }
  return 0;
}

}  // namespace
}  // namespace inferd

int main(int argc, char** argv) { return inferd::Main(argc, argv); }
