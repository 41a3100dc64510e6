#include "core/tensor/dtype.h"

#include <cmath>

#include "gtest/gtest.h"

namespace inferd {
namespace {

TEST(DataTypeTest, NamesRoundTrip) {
  for (DataType t : kAllFixedDataTypes) {
    auto parsed = ParseDataType(DataTypeName(t));
    ASSERT_TRUE(parsed.has_value()) << DataTypeName(t);
    EXPECT_EQ(*parsed, t);
  }
  EXPECT_EQ(ParseDataType("BYTES"), DataType::kBytes);
  EXPECT_FALSE(ParseDataType("FP8").has_value());
  EXPECT_FALSE(ParseDataType("fp32").has_value());
}

TEST(DataTypeTest, Sizes) {
  EXPECT_EQ(DataTypeSize(DataType::kBool), 1u);
  EXPECT_EQ(DataTypeSize(DataType::kFp16), 2u);
  EXPECT_EQ(DataTypeSize(DataType::kBf16), 2u);
  EXPECT_EQ(DataTypeSize(DataType::kInt32), 4u);
  EXPECT_EQ(DataTypeSize(DataType::kFp64), 8u);
  EXPECT_EQ(DataTypeSize(DataType::kBytes), 0u);
}

// Verifies half conversion is exact for every finite half value.
TEST(DataTypeTest, HalfRoundTripsAllFiniteValues) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const uint16_t bits = static_cast<uint16_t>(h);
    if ((bits & 0x7c00) == 0x7c00) continue;  // inf/nan
    EXPECT_EQ(FloatToHalf(HalfToFloat(bits)), bits) << std::hex << h;
  }
  EXPECT_EQ(FloatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalf(65536.0f), 0x7c00);  // overflow to inf
  EXPECT_TRUE(std::isnan(HalfToFloat(FloatToHalf(NAN))));
}

TEST(DataTypeTest, Bf16RoundsToNearestEven) {
  EXPECT_EQ(FloatToBf16(1.0f), 0x3f80);
  EXPECT_FLOAT_EQ(Bf16ToFloat(FloatToBf16(3.140625f)), 3.140625f);
  for (uint32_t b = 0; b < 0x10000; b += 7) {
    const uint16_t bits = static_cast<uint16_t>(b);
    if ((bits & 0x7f80) == 0x7f80) continue;
    EXPECT_EQ(FloatToBf16(Bf16ToFloat(bits)), bits);
  }
}

}  // namespace
}  // namespace inferd
