#include "core/memory/tensor_id.h"

#include "absl/container/flat_hash_set.h"
#include "gtest/gtest.h"

namespace inferd {
namespace {

TEST(TensorIdTest, FormatsAs32HexDigitsAndParsesBack) {
  const TensorId id{0x0123456789abcdefull, 0xfedcba9876543210ull};
  EXPECT_EQ(FormatTensorId(id), "0123456789abcdeffedcba9876543210");
  auto parsed = ParseTensorId("0123456789ABCDEFfedcba9876543210");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, id);
}

TEST(TensorIdTest, RejectsMalformedText) {
  for (const char* bad :
       {"", "abc", "0123456789abcdeffedcba987654321", "0123456789abcdeffedcba98765432100",
        "0123456789abcdeffedcba987654321g", "00000000000000000000000000000000"}) {
    auto parsed = ParseTensorId(bad, "tensor_id");
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(parsed.status().message().find("tensor_id"), std::string::npos);
  }
}

TEST(TensorIdTest, NewIdsAreValidAndDistinct) {
  absl::flat_hash_set<TensorId> seen;
  for (int i = 0; i < 10000; ++i) {
    const TensorId id = NewTensorId();
    ASSERT_TRUE(id.valid());
    ASSERT_TRUE(seen.insert(id).second);
    auto round = ParseTensorId(FormatTensorId(id));
    ASSERT_TRUE(round.ok());
    ASSERT_EQ(*round, id);
  }
}

}  // namespace
}  // namespace inferd
