#include "core/tensor/dtype_dispatch.h"

#include <type_traits>

#include "gtest/gtest.h"

namespace inferd {
namespace {

TEST(DtypeDispatchTest, EveryFixedTypeGetsAnElementOfItsSize) {
  for (DataType dtype : kAllFixedDataTypes) {
    size_t size = 0;
    EXPECT_TRUE(DispatchNumeric(dtype, [&](auto tag) { size = sizeof(tag); }))
        << DataTypeName(dtype);
    EXPECT_EQ(size, DataTypeSize(dtype)) << DataTypeName(dtype);
  }
}

TEST(DtypeDispatchTest, TypesMatchTheirNames) {
  auto is = [](DataType dtype, auto expected) {
    bool same = false;
    DispatchNumeric(dtype, [&](auto tag) {
      same = std::is_same_v<decltype(tag), decltype(expected)>;
    });
    return same;
  };
  EXPECT_TRUE(is(DataType::kBool, bool{}));
  EXPECT_TRUE(is(DataType::kInt8, int8_t{}));
  EXPECT_TRUE(is(DataType::kUint64, uint64_t{}));
  EXPECT_TRUE(is(DataType::kFp16, Fp16Bits{}));
  EXPECT_TRUE(is(DataType::kBf16, Bf16Bits{}));
  EXPECT_TRUE(is(DataType::kFp32, float{}));
  EXPECT_TRUE(is(DataType::kFp64, double{}));
}

TEST(DtypeDispatchTest, BytesAndInvalidAreRefused) {
  bool called = false;
  EXPECT_FALSE(DispatchNumeric(DataType::kBytes, [&](auto) { called = true; }));
  EXPECT_FALSE(DispatchNumeric(DataType::kInvalid, [&](auto) { called = true; }));
  EXPECT_FALSE(called);
}

}  // namespace
}  // namespace inferd
