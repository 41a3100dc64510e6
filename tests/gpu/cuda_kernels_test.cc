// The CUDA kernels against the host kernels on the same inputs: every op,
// every dtype, bit for bit (any two NaNs count as equal).
#include "core/device/cuda/cuda_kernels.h"

#include <string>
#include <vector>

#include "core/device/host_device.h"
#include "gtest/gtest.h"
#include "tests/gpu/gpu_fixture.h"
#include "tests/gpu/test_data.h"

namespace inferd {
namespace {

using testing_gpu::CompareElements;
using testing_gpu::DeviceBuffer;
using testing_gpu::TestElements;

constexpr Kernels::ReduceOp kReduceOps[] = {Kernels::ReduceOp::kSum, Kernels::ReduceOp::kProd,
                                            Kernels::ReduceOp::kMin, Kernels::ReduceOp::kMax};

class CudaKernelsTest : public ::testing::TestWithParam<DataType> {
 protected:
  // Odd, more than one block, and more than one grid-stride pass would need
  // far more; the specials come first.
  static constexpr size_t kN = 100003;

  CudaKernelsTest() : host_(HostDeviceOptions{}) {}

  void SetUp() override {
    auto devices = DiscoverCudaDevices({}, 1);
    ASSERT_TRUE(devices.ok()) << devices.status();
    if (devices->empty()) GTEST_SKIP() << "no CUDA device";
    devices_ = std::move(*devices);
  }

  Device& gpu() { return *devices_[0]; }
  Stream& stream() { return gpu().stream(0); }

  std::unique_ptr<DeviceBuffer> Upload(const std::vector<uint8_t>& host) {
    auto buf = std::make_unique<DeviceBuffer>(gpu(), host.size());
    EXPECT_TRUE(stream().CopyHostToDevice(buf->get(), host.data(), host.size()).ok());
    return buf;
  }

  std::vector<uint8_t> Download(const DeviceBuffer& buf, size_t bytes) {
    std::vector<uint8_t> out(bytes);
    EXPECT_TRUE(stream().CopyDeviceToHost(out.data(), buf.get(), bytes).ok());
    absl::Status st = stream().Synchronize();
    EXPECT_TRUE(st.ok()) << st;
    return out;
  }

  template <typename Op>
  void OnHost(Op&& op) {
    ASSERT_TRUE(op(host_.kernels(), host_.stream(0)).ok());
    ASSERT_TRUE(host_.stream(0).Synchronize().ok());
  }

  HostDevice host_;
  std::vector<std::unique_ptr<Device>> devices_;
};

TEST_P(CudaKernelsTest, AddMatchesHost) {
  const DataType dtype = GetParam();
  auto a = TestElements(dtype, kN, 11, 1), b = TestElements(dtype, kN, 12, 2);
  std::vector<uint8_t> want(a.size());
  OnHost([&](Kernels& k, Stream& s) { return k.Add(s, dtype, a.data(), b.data(), want.data(), kN); });

  auto da = Upload(a), db = Upload(b);
  DeviceBuffer out(gpu(), a.size());
  ASSERT_TRUE(gpu().kernels().Add(stream(), dtype, da->get(), db->get(), out.get(), kN).ok());
  EXPECT_EQ(CompareElements(dtype, want.data(), Download(out, a.size()).data(), kN), "");

  // In place: out aliases the first operand.
  ASSERT_TRUE(gpu().kernels().Add(stream(), dtype, da->get(), db->get(), da->get(), kN).ok());
  EXPECT_EQ(CompareElements(dtype, want.data(), Download(*da, a.size()).data(), kN), "");
}

TEST_P(CudaKernelsTest, ScaleMatchesHost) {
  const DataType dtype = GetParam();
  auto in = TestElements(dtype, kN, 13);
  auto din = Upload(in);
  DeviceBuffer out(gpu(), in.size());
  for (double factor : testing_gpu::ScaleFactors()) {
    std::vector<uint8_t> want(in.size());
    OnHost([&](Kernels& k, Stream& s) { return k.Scale(s, dtype, in.data(), factor, want.data(), kN); });
    ASSERT_TRUE(gpu().kernels().Scale(stream(), dtype, din->get(), factor, out.get(), kN).ok());
    EXPECT_EQ(CompareElements(dtype, want.data(), Download(out, in.size()).data(), kN), "")
        << "factor " << factor;
  }
}

TEST_P(CudaKernelsTest, ReduceMatchesHost) {
  const DataType dtype = GetParam();
  auto in = TestElements(dtype, kN, 14, 1), start = TestElements(dtype, kN, 15, 2);
  auto din = Upload(in);
  for (Kernels::ReduceOp op : kReduceOps) {
    std::vector<uint8_t> want = start;
    OnHost([&](Kernels& k, Stream& s) { return k.Reduce(s, dtype, op, in.data(), want.data(), kN); });
    auto dinout = Upload(start);
    ASSERT_TRUE(gpu().kernels().Reduce(stream(), dtype, op, din->get(), dinout->get(), kN).ok());
    EXPECT_EQ(CompareElements(dtype, want.data(), Download(*dinout, start.size()).data(), kN), "")
        << "op " << static_cast<int>(op);
  }
}

TEST_P(CudaKernelsTest, DivideByMatchesHost) {
  const DataType dtype = GetParam();
  auto start = TestElements(dtype, kN, 16);
  if (dtype == DataType::kBool) {
    DeviceBuffer buf(gpu(), start.size());
    EXPECT_EQ(gpu().kernels().DivideBy(stream(), dtype, buf.get(), 2, kN).code(),
              absl::StatusCode::kInvalidArgument);
    return;
  }
  for (uint64_t divisor : testing_gpu::Divisors()) {
    std::vector<uint8_t> want = start;
    OnHost([&](Kernels& k, Stream& s) { return k.DivideBy(s, dtype, want.data(), divisor, kN); });
    auto dinout = Upload(start);
    ASSERT_TRUE(gpu().kernels().DivideBy(stream(), dtype, dinout->get(), divisor, kN).ok());
    EXPECT_EQ(CompareElements(dtype, want.data(), Download(*dinout, start.size()).data(), kN), "")
        << "divisor " << divisor;
  }
}

TEST_P(CudaKernelsTest, HandlesOneElementAndNone) {
  const DataType dtype = GetParam();
  auto a = TestElements(dtype, 1, 17, 0), b = TestElements(dtype, 1, 18, 0);
  std::vector<uint8_t> want(a.size());
  OnHost([&](Kernels& k, Stream& s) { return k.Add(s, dtype, a.data(), b.data(), want.data(), 1); });
  auto da = Upload(a), db = Upload(b);
  DeviceBuffer out(gpu(), a.size());
  ASSERT_TRUE(gpu().kernels().Add(stream(), dtype, da->get(), db->get(), out.get(), 1).ok());
  EXPECT_EQ(CompareElements(dtype, want.data(), Download(out, a.size()).data(), 1), "");
  EXPECT_TRUE(gpu().kernels().Add(stream(), dtype, nullptr, nullptr, nullptr, 0).ok());
}

INSTANTIATE_TEST_SUITE_P(AllDtypes, CudaKernelsTest, ::testing::ValuesIn(kAllFixedDataTypes),
                         [](const ::testing::TestParamInfo<DataType>& info) {
                           return std::string(DataTypeName(info.param));
                         });

// Argument checks happen before any CUDA call, so they run without a GPU.
TEST(CudaKernelsArgumentsTest, RejectsWhatCannotRun) {
  auto kernels = NewCudaKernels();
  HostDevice host(HostDeviceOptions{});
  int32_t x[4] = {};
  absl::Status st = kernels->Add(host.stream(0), DataType::kBytes, x, x, x, 4);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("BYTES"), std::string::npos) << st;

  st = kernels->Add(host.stream(0), DataType::kInt32, x, x, x, 4);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("not a CUDA stream"), std::string::npos) << st;

  EXPECT_EQ(kernels->DivideBy(host.stream(0), DataType::kInt32, x, 0, 4).code(),
            absl::StatusCode::kInvalidArgument);
  // 256 is 0 as an 8-bit integer: the host kernel would divide by zero.
  st = kernels->DivideBy(host.stream(0), DataType::kUint8, x, 256, 4);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("UINT8"), std::string::npos) << st;
  EXPECT_EQ(kernels->DivideBy(host.stream(0), DataType::kBool, x, 2, 4).code(),
            absl::StatusCode::kInvalidArgument);
}

class CudaKernelsDeviceTest : public testing_gpu::GpuTest {};

// Verifies that a misaligned pointer is refused up front instead of
// faulting (which would poison the whole device).
TEST_F(CudaKernelsDeviceTest, RejectsMisalignedPointer) {
  DeviceBuffer buf(gpu(), 4096);
  Stream& s = gpu().stream(0);
  absl::Status st = gpu().kernels().Scale(s, DataType::kFp32, buf.bytes() + 2, 2.0, buf.get(), 8);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("aligned"), std::string::npos) << st;
  EXPECT_TRUE(gpu().kernels().Scale(s, DataType::kFp32, buf.get(), 2.0, buf.get(), 8).ok());
  EXPECT_TRUE(s.Synchronize().ok());
}

}  // namespace
}  // namespace inferd
