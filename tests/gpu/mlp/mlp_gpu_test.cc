// The mlp backend on CUDA (libinferd_mlp_cuda.so, cuBLASLt) against the
// host reference path. Skips without a GPU.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "core/device/device_allocator.h"
#include "core/infer/device_execution.h"
#include "core/models/mlp_model.h"
#include "core/models/model_repository.h"
#include "core/models/safetensors.h"
#include "gtest/gtest.h"
#include "tests/gpu/gpu_fixture.h"

namespace inferd {
namespace {

using testing_gpu::DeviceBuffer;

uint64_t SplitMix64(uint64_t* s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

float Uniform(uint64_t* s, float bound) {
  return (2.0f * static_cast<float>(SplitMix64(s) >> 40) / 16777216.0f - 1.0f) * bound;
}

float RoundTo(DataType dtype, float v) {
  if (dtype == DataType::kFp16) return HalfToFloat(FloatToHalf(v));
  if (dtype == DataType::kBf16) return Bf16ToFloat(FloatToBf16(v));
  return v;
}

// A network whose weights are exactly representable in `dtype`.
MlpNetwork RandomNetwork(DataType dtype, const std::vector<int64_t>& sizes, MlpActivation act,
                         bool bias, uint64_t seed) {
  MlpNetwork net;
  net.dtype = dtype;
  for (size_t l = 0; l + 1 < sizes.size(); ++l) {
    MlpLayerWeights layer;
    layer.in_features = sizes[l];
    layer.out_features = sizes[l + 1];
    layer.activation = l + 2 == sizes.size() ? MlpActivation::kNone : act;
    const float bound = 1.0f / std::sqrt(static_cast<float>(sizes[l]));
    layer.weight.resize(sizes[l] * sizes[l + 1]);
    for (float& w : layer.weight) w = RoundTo(dtype, Uniform(&seed, bound));
    if (bias) {
      layer.bias.resize(sizes[l + 1]);
      for (float& b : layer.bias) b = RoundTo(dtype, Uniform(&seed, bound));
    }
    net.layers.push_back(std::move(layer));
  }
  return net;
}

ModelSignature Signature(const MlpNetwork& net, int max_batch) {
  ModelSignature sig;
  sig.name = "gpu_mlp";
  sig.platform = "inferd_mlp";
  sig.max_batch_size = max_batch;
  sig.inputs = {{"INPUT0", net.dtype, {-1, net.layers.front().in_features}}};
  sig.outputs = {{"OUTPUT0", net.dtype, {-1, net.layers.back().out_features}}};
  return sig;
}

std::string Encode(DataType dtype, const std::vector<float>& v) {
  const size_t size = DataTypeSize(dtype);
  std::string out(v.size() * size, '\0');
  for (size_t i = 0; i < v.size(); ++i) {
    if (dtype == DataType::kFp32) {
      std::memcpy(&out[4 * i], &v[i], 4);
    } else {
      const uint16_t h = dtype == DataType::kFp16 ? FloatToHalf(v[i]) : FloatToBf16(v[i]);
      std::memcpy(&out[2 * i], &h, 2);
    }
  }
  return out;
}

std::vector<float> Decode(DataType dtype, const std::string& bytes) {
  const size_t size = DataTypeSize(dtype);
  std::vector<float> out(bytes.size() / size);
  for (size_t i = 0; i < out.size(); ++i) {
    if (dtype == DataType::kFp32) {
      std::memcpy(&out[i], &bytes[4 * i], 4);
    } else {
      uint16_t h;
      std::memcpy(&h, &bytes[2 * i], 2);
      out[i] = dtype == DataType::kFp16 ? HalfToFloat(h) : Bf16ToFloat(h);
    }
  }
  return out;
}

std::vector<float> RandomInput(int64_t n, uint64_t seed) {
  std::vector<float> x(n);
  for (float& v : x) v = Uniform(&seed, 2.0f);
  return x;
}

// Expects |gpu - ref| <= rel * max(|ref|, rms(ref)) elementwise: relative,
// with the output's RMS as the floor near zero.
void ExpectClose(const std::vector<float>& gpu, const std::vector<float>& ref, double rel,
                 const std::string& what) {
  ASSERT_EQ(gpu.size(), ref.size());
  double sq = 0;
  for (float r : ref) sq += static_cast<double>(r) * r;
  const double rms = std::sqrt(sq / std::max<size_t>(1, ref.size()));
  double worst = 0;
  size_t bad = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double err = std::abs(static_cast<double>(gpu[i]) - ref[i]);
    const double scale = std::max(std::abs(static_cast<double>(ref[i])), rms);
    worst = std::max(worst, err / scale);
    if (err > rel * scale && bad++ < 5) {
      ADD_FAILURE() << what << ": element " << i << " gpu " << gpu[i] << " ref " << ref[i];
    }
  }
  ::testing::Test::RecordProperty(what, absl::StrCat(worst));
  std::printf("[ worst relative error ] %s %.3g\n", what.c_str(), worst);
  EXPECT_EQ(bad, 0u) << what << ": worst relative error " << worst;
}

class MlpGpuTest : public testing_gpu::GpuTest {
 protected:
  void SetUp() override {
    GpuTest::SetUp();
    if (IsSkipped()) return;
    auto lib = MlpCudaLibrary::LoadDefault();
    ASSERT_TRUE(lib.ok()) << lib.status();
    lib_ = *lib;
  }

  // Runs `model` on the GPU (stream `s`) for `x`; returns the output.
  std::vector<float> RunOnGpu(const MlpModel& model, const std::vector<float>& x, int64_t batch,
                              int s = 0) {
    const DataType dtype = model.network().dtype;
    const std::string xb = Encode(dtype, x);
    TensorDesc in{dtype, {batch, model.network().layers.front().in_features}, xb.size()};
    TensorDesc out;
    EXPECT_TRUE(model.Validate({&in, 1}, {}, {&out, 1}).ok());
    DeviceBuffer xd(gpu(), xb.size());
    DeviceBuffer yd(gpu(), out.byte_size);
    std::string yb(out.byte_size, '\0');
    Stream& stream = gpu().stream(s);
    EXPECT_TRUE(stream.CopyHostToDevice(xd.get(), xb.data(), xb.size()).ok());
    DeviceTensor din{&in, xd.get()};
    DeviceTensor dout{&out, yd.get()};
    absl::Status st = model.Execute(stream, {&din, 1}, {}, {&dout, 1});
    EXPECT_TRUE(st.ok()) << st;
    EXPECT_TRUE(stream.CopyDeviceToHost(yb.data(), yd.get(), yb.size()).ok());
    st = stream.Synchronize();
    EXPECT_TRUE(st.ok()) << st;
    return Decode(dtype, yb);
  }

  std::vector<float> RunOnHost(const MlpNetwork& net, const std::vector<float>& x,
                               int64_t batch) {
    const std::string xb = Encode(net.dtype, x);
    std::string yb(batch * net.layers.back().out_features * DataTypeSize(net.dtype), '\0');
    RunMlpReference(net, xb.data(), yb.data(), batch);
    return Decode(net.dtype, yb);
  }

  std::unique_ptr<MlpModel> Make(MlpNetwork net, int max_batch, MlpOptions options = {}) {
    Device* devices[] = {&gpu()};
    ModelSignature sig = Signature(net, max_batch);  // before `net` is moved from
    auto model = MlpModel::Create(std::move(sig), std::move(net), devices, lib_, options);
    EXPECT_TRUE(model.ok()) << model.status();
    return model.ok() ? *std::move(model) : nullptr;
  }

  std::shared_ptr<const MlpCudaLibrary> lib_;
};

struct Case {
  const char* name;
  DataType dtype;
  MlpActivation act;
  bool bias;
  double tolerance;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class MlpGpuCaseTest : public MlpGpuTest, public ::testing::WithParamInterface<Case> {};

TEST_P(MlpGpuCaseTest, MatchesHostReference) {
  const Case& c = GetParam();
  auto model = Make(RandomNetwork(c.dtype, {64, 256, 256, 16}, c.act, c.bias, 7), 64);
  ASSERT_NE(model, nullptr);
  // 1 and 4: the GEMV path's smallest and largest batch; 7, 64: cuBLASLt.
  for (int64_t batch : {1, 4, 7, 64}) {
    const std::vector<float> x = RandomInput(batch * 64, 100 + batch);
    const std::vector<float> in = Decode(c.dtype, Encode(c.dtype, x));  // as the model sees it
    ExpectClose(RunOnGpu(*model, in, batch), RunOnHost(model->network(), in, batch), c.tolerance,
                absl::StrCat(c.name, "_batch", batch));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, MlpGpuCaseTest,
    ::testing::Values(Case{"fp32_relu", DataType::kFp32, MlpActivation::kRelu, true, 1e-4},
                      Case{"fp32_gelu", DataType::kFp32, MlpActivation::kGelu, true, 1e-4},
                      Case{"fp32_gelu_tanh", DataType::kFp32, MlpActivation::kGeluTanh, true, 1e-4},
                      Case{"fp32_none_nobias", DataType::kFp32, MlpActivation::kNone, false, 1e-4},
                      Case{"fp32_relu_nobias", DataType::kFp32, MlpActivation::kRelu, false, 1e-4},
                      Case{"fp32_gelu_nobias", DataType::kFp32, MlpActivation::kGelu, false, 1e-4},
                      Case{"fp16_relu", DataType::kFp16, MlpActivation::kRelu, true, 1e-2},
                      Case{"fp16_gelu", DataType::kFp16, MlpActivation::kGelu, true, 1e-2},
                      Case{"bf16_relu", DataType::kBf16, MlpActivation::kRelu, true, 5e-2},
                      Case{"bf16_gelu_tanh", DataType::kBf16, MlpActivation::kGeluTanh, true, 5e-2}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(MlpGpuTest, PyTorchBaselineShapeFp32) {
  auto model = Make(RandomNetwork(DataType::kFp32, {1024, 4096, 1024}, MlpActivation::kRelu, true, 3),
                    256);
  ASSERT_NE(model, nullptr);
  const int64_t batch = 8;
  const std::vector<float> x = RandomInput(batch * 1024, 5);
  ExpectClose(RunOnGpu(*model, x, batch), RunOnHost(model->network(), x, batch), 1e-4,
              "fp32_1024_4096_1024");
}

// Verifies that two streams of one device use separate scratch: work
// enqueued back to back on both streams gives each its own right answer.
TEST_F(MlpGpuTest, StreamsRunConcurrentlyWithSeparateScratch) {
  auto model = Make(RandomNetwork(DataType::kFp32, {64, 512, 512, 32}, MlpActivation::kRelu, true, 9),
                    64);
  ASSERT_NE(model, nullptr);
  const MlpNetwork& net = model->network();
  struct Run {
    int stream;
    int64_t batch;
    std::string x;
    std::unique_ptr<DeviceBuffer> xd, yd;
    TensorDesc in, out;
    std::string y;
  };
  std::vector<Run> runs(4);
  for (int i = 0; i < 4; ++i) {
    Run& r = runs[i];
    r.stream = i % 2;
    r.batch = i % 2 == 0 ? 64 : 3;
    r.x = Encode(DataType::kFp32, RandomInput(r.batch * 64, 40 + i));
    r.in = TensorDesc{DataType::kFp32, {r.batch, 64}, r.x.size()};
    ASSERT_TRUE(model->Validate({&r.in, 1}, {}, {&r.out, 1}).ok());
    r.xd = std::make_unique<DeviceBuffer>(gpu(), r.x.size());
    r.yd = std::make_unique<DeviceBuffer>(gpu(), r.out.byte_size);
    r.y.assign(r.out.byte_size, '\0');
  }
  for (Run& r : runs) {
    Stream& s = gpu().stream(r.stream);
    ASSERT_TRUE(s.CopyHostToDevice(r.xd->get(), r.x.data(), r.x.size()).ok());
    DeviceTensor din{&r.in, r.xd->get()};
    DeviceTensor dout{&r.out, r.yd->get()};
    ASSERT_TRUE(model->Execute(s, {&din, 1}, {}, {&dout, 1}).ok());
    ASSERT_TRUE(s.CopyDeviceToHost(r.y.data(), r.yd->get(), r.y.size()).ok());
  }
  ASSERT_TRUE(gpu().Synchronize().ok());
  for (size_t i = 0; i < runs.size(); ++i) {
    std::string ref(runs[i].y.size(), '\0');
    RunMlpReference(net, runs[i].x.data(), ref.data(), runs[i].batch);
    ExpectClose(Decode(DataType::kFp32, runs[i].y), Decode(DataType::kFp32, ref), 1e-4,
                absl::StrCat("run", i));
  }
}

// Verifies the CUDA graph path: each (stream, batch size) is captured once
// and replayed, replays with other input/output buffers (the copy nodes
// are repointed) and on other streams give the host reference's answer,
// and with graphs off every call runs eagerly.
TEST_F(MlpGpuTest, CudaGraphsReplayWithNewBuffersAndMatchTheReference) {
  for (bool graphs : {true, false}) {
    SCOPED_TRACE(graphs ? "graphs" : "eager");
    auto model = Make(RandomNetwork(DataType::kFp32, {64, 256, 256, 16}, MlpActivation::kGelu,
                                    true, 21),
                      64, MlpOptions{graphs});
    ASSERT_NE(model, nullptr);
    const MlpNetwork& net = model->network();
    int calls = 0;
    for (int round = 0; round < 3; ++round) {
      for (int64_t batch : {1, 5, 64}) {
        for (int s = 0; s < 2; ++s) {
          // A fresh seed per call: a stale copy node would give another
          // call's rows.
          const std::vector<float> x = RandomInput(batch * 64, 1000 + 10 * round + batch + s);
          ExpectClose(RunOnGpu(*model, x, batch, s), RunOnHost(net, x, batch), 1e-4,
                      absl::StrCat("round", round, "_batch", batch, "_stream", s));
          ++calls;
        }
      }
    }
    absl::StatusOr<inferd_mlp_cuda_stats> stats = model->CudaStats(gpu());
    ASSERT_TRUE(stats.ok()) << stats.status();
    EXPECT_EQ(stats->graph_failures, 0u);
    // Not a failure (the copies then run around the graph), but worth seeing.
    std::printf("[ graph copy-node repoint failures ] %llu\n",
                static_cast<unsigned long long>(stats->repoint_failures));
    if (graphs) {
      EXPECT_EQ(stats->graphs_captured, 6u);  // 3 batch sizes x 2 streams
      EXPECT_EQ(stats->graph_launches, static_cast<uint64_t>(calls));
      EXPECT_EQ(stats->eager_calls, 0u);
    } else {
      EXPECT_EQ(stats->graphs_captured, 0u);
      EXPECT_EQ(stats->graph_launches, 0u);
      EXPECT_EQ(stats->eager_calls, static_cast<uint64_t>(calls));
    }
  }
}

// Verifies that replays enqueued back to back, each with its own buffers,
// all finish with their own answers: repointing a graph's copy nodes does
// not change launches already enqueued.
TEST_F(MlpGpuTest, CudaGraphReplaysInFlightKeepTheirOwnBuffers) {
  auto model = Make(RandomNetwork(DataType::kFp32, {64, 512, 32}, MlpActivation::kRelu, true, 23),
                    8);
  ASSERT_NE(model, nullptr);
  const MlpNetwork& net = model->network();
  constexpr int kCalls = 8;
  const int64_t batch = 8;
  std::vector<std::string> xs, ys(kCalls);
  std::vector<std::unique_ptr<DeviceBuffer>> xd, yd;
  TensorDesc in{DataType::kFp32, {batch, 64}, static_cast<uint64_t>(batch * 64 * 4)};
  TensorDesc out;
  ASSERT_TRUE(model->Validate({&in, 1}, {}, {&out, 1}).ok());
  Stream& s = gpu().stream(0);
  for (int i = 0; i < kCalls; ++i) {
    xs.push_back(Encode(DataType::kFp32, RandomInput(batch * 64, 500 + i)));
    xd.push_back(std::make_unique<DeviceBuffer>(gpu(), xs[i].size()));
    yd.push_back(std::make_unique<DeviceBuffer>(gpu(), out.byte_size));
    ys[i].assign(out.byte_size, '\0');
    ASSERT_TRUE(s.CopyHostToDevice(xd[i]->get(), xs[i].data(), xs[i].size()).ok());
  }
  for (int i = 0; i < kCalls; ++i) {
    DeviceTensor din{&in, xd[i]->get()};
    DeviceTensor dout{&out, yd[i]->get()};
    ASSERT_TRUE(model->Execute(s, {&din, 1}, {}, {&dout, 1}).ok());
  }
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_TRUE(s.CopyDeviceToHost(ys[i].data(), yd[i]->get(), ys[i].size()).ok());
  }
  ASSERT_TRUE(s.Synchronize().ok());
  for (int i = 0; i < kCalls; ++i) {
    std::string ref(ys[i].size(), '\0');
    RunMlpReference(net, xs[i].data(), ref.data(), batch);
    ExpectClose(Decode(DataType::kFp32, ys[i]), Decode(DataType::kFp32, ref), 1e-4,
                absl::StrCat("call", i));
  }
  absl::StatusOr<inferd_mlp_cuda_stats> stats = model->CudaStats(gpu());
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->graph_launches, static_cast<uint64_t>(kCalls));
}

TEST_F(MlpGpuTest, LibraryRejectsBadCalls) {
  auto model = Make(RandomNetwork(DataType::kFp32, {8, 8}, MlpActivation::kNone, true, 1), 4);
  ASSERT_NE(model, nullptr);
  inferd_mlp_cuda_layer layer{8, 8, nullptr, nullptr, 0};
  inferd_mlp_cuda_options options{};
  options.num_layers = 1;
  options.layers = &layer;
  options.max_batch = 4;
  options.num_slots = 1;
  auto handle = lib_->Create(options);  // null weight
  EXPECT_EQ(handle.status().code(), absl::StatusCode::kInvalidArgument);
}

// Loads an mlp from a repository onto the GPU and runs it through the
// request runner, as the daemon does.
TEST_F(MlpGpuTest, RepositoryModelThroughTheRunner) {
  const std::string root = ::testing::TempDir() + "inferd_mlp_gpu_repo";
  std::filesystem::remove_all(root);
  std::filesystem::create_directories(root + "/m");
  MlpNetwork net = RandomNetwork(DataType::kFp32, {32, 128, 8}, MlpActivation::kGelu, true, 11);
  std::vector<std::string> blobs;
  std::vector<SafetensorsEntry> entries;
  blobs.reserve(4);
  for (size_t l = 0; l < net.layers.size(); ++l) {
    blobs.push_back(Encode(DataType::kFp32, net.layers[l].weight));
    entries.push_back({absl::StrCat(l, ".weight"), DataType::kFp32,
                       {net.layers[l].out_features, net.layers[l].in_features}, blobs.back()});
    blobs.push_back(Encode(DataType::kFp32, net.layers[l].bias));
    entries.push_back({absl::StrCat(l, ".bias"), DataType::kFp32, {net.layers[l].out_features},
                       blobs.back()});
  }
  {
    std::ofstream(root + "/m/w.safetensors", std::ios::binary) << *SerializeSafetensors(entries);
    std::ofstream(root + "/m/config.yaml") << R"(backend: mlp
max_batch_size: 16
inputs: [{name: INPUT0, datatype: FP32, dims: [-1, 32]}]
outputs: [{name: OUTPUT0, datatype: FP32, dims: [-1, 8]}]
mlp:
  weights: w.safetensors
  layers: [{weight: 0.weight, bias: 0.bias, activation: gelu}, {weight: 1.weight, bias: 1.bias}]
)";
  }
  ModelRepositoryOptions options;
  options.devices = {&gpu()};
  auto repo = ModelRepository::Open(root, options);
  ASSERT_TRUE(repo.ok()) << repo.status();
  auto model = (*repo)->Load("m");
  ASSERT_TRUE(model.ok()) << model.status();

  const int64_t batch = 5;
  const std::vector<float> x = RandomInput(batch * 32, 77);
  InferRequest request;
  request.model = *model;
  request.inputs.push_back(
      InferInput{"INPUT0", TensorDesc{DataType::kFp32, {batch, 32}, x.size() * 4}, x.data()});
  struct Responder final : InferResponder {
    void* AllocateOutput(int, const TensorSpec&, const TensorDesc& d) override {
      y.assign(d.byte_size, '\0');
      return y.data();
    }
    void Complete(absl::Status s) override {
      status = std::move(s);
      done.Notify();
    }
    std::string y;
    absl::Status status;
    absl::Notification done;
  } responder;
  std::unique_ptr<DeviceAllocator> allocator = NewRawDeviceAllocator();
  ExecuteOnDevice(std::move(request), gpu().stream(1), *allocator, &responder);
  responder.done.WaitForNotification();
  ASSERT_TRUE(responder.status.ok()) << responder.status;
  ExpectClose(Decode(DataType::kFp32, responder.y), RunOnHost(net, x, batch), 1e-4, "runner");
  std::filesystem::remove_all(root);
}

// Compares against PyTorch: tests/gpu/mlp/torch_reference.py writes models
// saved by torch and torch's outputs into $INFERD_TORCH_REFERENCE_DIR.
TEST_F(MlpGpuTest, MatchesPyTorch) {
  const char* dir = std::getenv("INFERD_TORCH_REFERENCE_DIR");
  if (dir == nullptr) GTEST_SKIP() << "INFERD_TORCH_REFERENCE_DIR is not set";
  ModelRepositoryOptions options;
  options.devices = {&gpu()};
  auto repo = ModelRepository::Open(std::string(dir) + "/repo", options);
  ASSERT_TRUE(repo.ok()) << repo.status();
  auto names = (*repo)->List();
  ASSERT_TRUE(names.ok());
  ASSERT_FALSE(names->empty());
  for (const std::string& name : *names) {
    auto model = (*repo)->Load(name);
    ASSERT_TRUE(model.ok()) << model.status();
    const auto* mlp = dynamic_cast<const MlpModel*>(model->get());
    ASSERT_NE(mlp, nullptr);
    auto io = SafetensorsFile::ReadFile(std::string(dir) + "/" + name + ".io.safetensors", 1 << 30);
    ASSERT_TRUE(io.ok()) << io.status();
    const SafetensorsTensor* x = (*io)->Find("x");
    const SafetensorsTensor* y = (*io)->Find("y");
    ASSERT_TRUE(x != nullptr && y != nullptr);
    const DataType dtype = mlp->network().dtype;
    const int64_t batch = x->shape[0];
    const std::vector<float> xs =
        Decode(dtype, std::string(reinterpret_cast<const char*>(x->data.data()), x->data.size()));
    const std::vector<float> ys =
        Decode(dtype, std::string(reinterpret_cast<const char*>(y->data.data()), y->data.size()));
    ExpectClose(RunOnGpu(*mlp, xs, batch), ys, dtype == DataType::kFp32 ? 1e-4 : 2e-2,
                name + "_vs_torch");
  }
}

}  // namespace
}  // namespace inferd
