// CUDA shared memory end to end on a GPU: this test process is the client
// (cudaMalloc + cudaIpcGetMemHandle), the real daemon is another process
// that opens the handles (cudaIpcOpenMemHandle), reads the inputs in place
// and writes the outputs into the client's memory. Skips without a GPU.
#include <cuda_runtime.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/daemon_process.h"
#include "tests/integration/triton_client.h"

namespace inferd {
namespace {

using ::testing::HasSubstr;

class CudaShmGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) GTEST_SKIP() << "no GPU";
    repo_ = std::filesystem::path(::testing::TempDir()) / absl::StrCat("cudashm_", ::getpid());
    std::filesystem::create_directories(repo_ / "simple");
    std::ofstream(repo_ / "simple" / "config.yaml")
        << "backend: builtin\nbuiltin: {op: add_sub}\nmax_batch_size: 8\n"
        << "inputs:\n  - {name: INPUT0, datatype: INT32, dims: [-1, 16]}\n"
        << "  - {name: INPUT1, datatype: INT32, dims: [-1, 16]}\n"
        << "outputs:\n  - {name: OUTPUT0, datatype: INT32, dims: [-1, 16]}\n"
        << "  - {name: OUTPUT1, datatype: INT32, dims: [-1, 16]}\n";
    daemon_ = std::make_unique<testing::DaemonProcess>(std::vector<std::string>{
        "--model-repository=" + repo_.string(), "--metrics-listen="});
    ASSERT_TRUE(daemon_->started()) << daemon_->Stderr();
    client_ = std::make_unique<testing::TritonClient>(daemon_->target());
  }
  void TearDown() override {
    client_.reset();
    daemon_.reset();
    std::filesystem::remove_all(repo_);
  }

  // Exports `ptr` (cudaMalloc memory of this process) as region `name`.
  absl::Status Register(const std::string& name, void* ptr, uint64_t bytes) {
    cudaIpcMemHandle_t handle;
    if (cudaIpcGetMemHandle(&handle, ptr) != cudaSuccess) {
      return absl::InternalError("cudaIpcGetMemHandle");
    }
    return client_->RegisterCudaSharedMemory(
        name, std::string(reinterpret_cast<const char*>(&handle), sizeof(handle)), 0, bytes);
  }

  std::filesystem::path repo_;
  std::unique_ptr<testing::DaemonProcess> daemon_;
  std::unique_ptr<testing::TritonClient> client_;
};

TEST_F(CudaShmGpuTest, DaemonReadsAndWritesTheClientsGpuMemory) {
  constexpr size_t kBytes = 16 * sizeof(int32_t);
  void* in = nullptr;
  void* out = nullptr;
  ASSERT_EQ(cudaMalloc(&in, 2 * kBytes), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&out, 2 * kBytes), cudaSuccess);
  std::vector<int32_t> host(32);
  for (int i = 0; i < 16; ++i) {
    host[i] = i;
    host[16 + i] = 1;
  }
  ASSERT_EQ(cudaMemcpy(in, host.data(), 2 * kBytes, cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_TRUE(Register("input_data", in, 2 * kBytes).ok());
  ASSERT_TRUE(Register("output_data", out, 2 * kBytes).ok());
  auto status = client_->GetCudaSharedMemoryStatus();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->regions().at("input_data").device_id(), 0u);

  std::vector<testing::InferInput> inputs = {{"INPUT0", {1, 16}, "INT32"},
                                             {"INPUT1", {1, 16}, "INT32"}};
  inputs[0].shm_region = inputs[1].shm_region = "input_data";
  inputs[0].shm_byte_size = inputs[1].shm_byte_size = kBytes;
  inputs[1].shm_offset = kBytes;
  std::vector<testing::RequestedOutput> outputs = {{"OUTPUT0", 0, "output_data", kBytes, 0},
                                                   {"OUTPUT1", 0, "output_data", kBytes, kBytes}};
  auto r = client_->Infer("simple", inputs, outputs);
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<int32_t> result(32);
  ASSERT_EQ(cudaMemcpy(result.data(), out, 2 * kBytes, cudaMemcpyDeviceToHost), cudaSuccess);
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(result[i], i + 1);
    EXPECT_EQ(result[16 + i], i - 1);
  }

  inputs[1].shm_offset = kBytes + 4;
  auto past = client_->Infer("simple", inputs, outputs);
  EXPECT_EQ(past.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(past.status().message(), HasSubstr("shared_memory_byte_size"));

  std::string bogus(64, '\x01');
  EXPECT_EQ(client_->RegisterCudaSharedMemory("bogus", bogus, 0, 64).code(),
            absl::StatusCode::kInvalidArgument);
  auto meta = client_->GetServerMetadata();
  ASSERT_TRUE(meta.ok());
  EXPECT_THAT(std::vector<std::string>(meta->extensions().begin(), meta->extensions().end()),
              ::testing::Contains("cuda_shared_memory"));
  client_.reset();
  daemon_.reset();  // closes the handles before the memory goes
  cudaFree(in);
  cudaFree(out);
}

}  // namespace
}  // namespace inferd
