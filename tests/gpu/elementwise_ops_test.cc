// Checks, on the CPU, that the per-element functions the CUDA kernels run
// (core/device/cuda/elementwise_ops.h) compute exactly what the host kernels
// compute, for every dtype and op. Needs no GPU.
#include "core/device/cuda/elementwise_ops.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "core/device/host_device.h"
#include "core/tensor/dtype.h"
#include "gtest/gtest.h"
#include "tests/gpu/test_data.h"

namespace inferd {
namespace {

using elementwise::BHalf;
using elementwise::Half;
using testing_gpu::CompareElements;
using testing_gpu::TestElements;

template <typename Fn>
void Dispatch(DataType dtype, Fn&& fn) {
  switch (dtype) {
    case DataType::kBool: fn(bool{}); break;
    case DataType::kUint8: fn(uint8_t{}); break;
    case DataType::kUint16: fn(uint16_t{}); break;
    case DataType::kUint32: fn(uint32_t{}); break;
    case DataType::kUint64: fn(uint64_t{}); break;
    case DataType::kInt8: fn(int8_t{}); break;
    case DataType::kInt16: fn(int16_t{}); break;
    case DataType::kInt32: fn(int32_t{}); break;
    case DataType::kInt64: fn(int64_t{}); break;
    case DataType::kFp16: fn(Half{}); break;
    case DataType::kBf16: fn(BHalf{}); break;
    case DataType::kFp32: fn(float{}); break;
    case DataType::kFp64: fn(double{}); break;
    default: FAIL() << "no element type for " << DataTypeName(dtype);
  }
}

constexpr Kernels::ReduceOp kReduceOps[] = {Kernels::ReduceOp::kSum, Kernels::ReduceOp::kProd,
                                            Kernels::ReduceOp::kMin, Kernels::ReduceOp::kMax};

class ElementwiseOpsTest : public ::testing::TestWithParam<DataType> {
 protected:
  ElementwiseOpsTest() : host_(HostDeviceOptions{}) {}

  // Runs `op` on the host device's stream 0 and waits for it.
  template <typename Op>
  void OnHost(Op&& op) {
    ASSERT_TRUE(op(host_.kernels(), host_.stream(0)).ok());
    ASSERT_TRUE(host_.stream(0).Synchronize().ok());
  }

  static constexpr size_t kN = 20000;
  HostDevice host_;
};

TEST_P(ElementwiseOpsTest, AddMatchesHostKernels) {
  const DataType dtype = GetParam();
  auto a = TestElements(dtype, kN, 1, 1), b = TestElements(dtype, kN, 2, 2);
  std::vector<uint8_t> want(a.size()), got(a.size());
  OnHost([&](Kernels& k, Stream& s) { return k.Add(s, dtype, a.data(), b.data(), want.data(), kN); });
  Dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    auto* x = reinterpret_cast<const T*>(a.data());
    auto* y = reinterpret_cast<const T*>(b.data());
    auto* z = reinterpret_cast<T*>(got.data());
    for (size_t i = 0; i < kN; ++i) z[i] = elementwise::AddOne<T>(x[i], y[i]);
  });
  EXPECT_EQ(CompareElements(dtype, want.data(), got.data(), kN), "");
}

TEST_P(ElementwiseOpsTest, ScaleMatchesHostKernels) {
  const DataType dtype = GetParam();
  auto in = TestElements(dtype, kN, 3);
  for (double factor : testing_gpu::ScaleFactors()) {
    std::vector<uint8_t> want(in.size()), got(in.size());
    OnHost([&](Kernels& k, Stream& s) { return k.Scale(s, dtype, in.data(), factor, want.data(), kN); });
    Dispatch(dtype, [&](auto tag) {
      using T = decltype(tag);
      auto* x = reinterpret_cast<const T*>(in.data());
      auto* z = reinterpret_cast<T*>(got.data());
      const auto f = static_cast<elementwise::ScaleFactor<T>>(factor);
      for (size_t i = 0; i < kN; ++i) z[i] = elementwise::ScaleOne<T>(x[i], f);
    });
    EXPECT_EQ(CompareElements(dtype, want.data(), got.data(), kN), "") << "factor " << factor;
  }
}

TEST_P(ElementwiseOpsTest, ReduceMatchesHostKernels) {
  const DataType dtype = GetParam();
  auto in = TestElements(dtype, kN, 4, 1), start = TestElements(dtype, kN, 5, 2);
  for (Kernels::ReduceOp op : kReduceOps) {
    std::vector<uint8_t> want = start, got = start;
    OnHost([&](Kernels& k, Stream& s) { return k.Reduce(s, dtype, op, in.data(), want.data(), kN); });
    Dispatch(dtype, [&](auto tag) {
      using T = decltype(tag);
      auto* x = reinterpret_cast<const T*>(in.data());
      auto* z = reinterpret_cast<T*>(got.data());
      const auto kind = static_cast<elementwise::ReduceKind>(static_cast<int>(op));
      for (size_t i = 0; i < kN; ++i) z[i] = elementwise::ReduceOne<T>(kind, z[i], x[i]);
    });
    EXPECT_EQ(CompareElements(dtype, want.data(), got.data(), kN), "")
        << "op " << static_cast<int>(op);
  }
}

TEST_P(ElementwiseOpsTest, DivideByMatchesHostKernels) {
  const DataType dtype = GetParam();
  if (dtype == DataType::kBool) GTEST_SKIP() << "BOOL has no division";
  auto start = TestElements(dtype, kN, 6);
  for (uint64_t divisor : testing_gpu::Divisors()) {
    std::vector<uint8_t> want = start, got = start;
    OnHost([&](Kernels& k, Stream& s) { return k.DivideBy(s, dtype, want.data(), divisor, kN); });
    Dispatch(dtype, [&](auto tag) {
      using T = decltype(tag);
      if constexpr (!std::is_same_v<T, bool>) {
        auto* z = reinterpret_cast<T*>(got.data());
        for (size_t i = 0; i < kN; ++i) z[i] = elementwise::DivideOne<T>(z[i], divisor);
      }
    });
    EXPECT_EQ(CompareElements(dtype, want.data(), got.data(), kN), "") << "divisor " << divisor;
  }
}

INSTANTIATE_TEST_SUITE_P(AllDtypes, ElementwiseOpsTest, ::testing::ValuesIn(kAllFixedDataTypes),
                         [](const ::testing::TestParamInfo<DataType>& info) {
                           return std::string(DataTypeName(info.param));
                         });

// Verifies that the device-side fp16 conversions equal dtype.h's for every
// half and for a wide sample of floats (every 97th bit pattern).
TEST(HalfConversionTest, MatchesHostConversions) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const float want = HalfToFloat(static_cast<uint16_t>(h));
    const float got = elementwise::HalfToFloat(static_cast<uint16_t>(h));
    ASSERT_TRUE(std::memcmp(&want, &got, 4) == 0 || (std::isnan(want) && std::isnan(got)))
        << "half 0x" << std::hex << h;
  }
  for (uint64_t bits = 0; bits <= 0xffffffffull; bits += 97) {
    float f;
    const uint32_t b = static_cast<uint32_t>(bits);
    std::memcpy(&f, &b, 4);
    ASSERT_EQ(elementwise::FloatToHalf(f), FloatToHalf(f)) << "float bits 0x" << std::hex << b;
    ASSERT_EQ(elementwise::FloatToBf16(f), FloatToBf16(f)) << "float bits 0x" << std::hex << b;
  }
}

TEST(IntRangeTest, MatchesNumericLimits) {
  EXPECT_EQ(elementwise::IntRange<int8_t>::kLowest, std::numeric_limits<int8_t>::lowest());
  EXPECT_EQ(elementwise::IntRange<int8_t>::kMax, std::numeric_limits<int8_t>::max());
  EXPECT_EQ(elementwise::IntRange<int64_t>::kLowest, std::numeric_limits<int64_t>::lowest());
  EXPECT_EQ(elementwise::IntRange<int64_t>::kMax, std::numeric_limits<int64_t>::max());
  EXPECT_EQ(elementwise::IntRange<uint16_t>::kLowest, 0);
  EXPECT_EQ(elementwise::IntRange<uint64_t>::kMax, std::numeric_limits<uint64_t>::max());
}

}  // namespace
}  // namespace inferd
