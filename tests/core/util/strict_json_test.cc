#include "core/util/strict_json.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace inferd {
namespace {

using ::testing::HasSubstr;

TEST(StrictJsonTest, ParsesNestedDocument) {
  absl::StatusOr<JsonDocument> doc = JsonDocument::Parse(
      R"( {"a": [1, -2, 3.5e2, true, false, null], "b": {"s": "x\"\\\/\n\u00e9\ud83d\ude00"}} )");
  ASSERT_TRUE(doc.ok()) << doc.status();
  const JsonDocument::Node& root = doc->node(doc->root());
  ASSERT_EQ(root.type, JsonType::kObject);
  ASSERT_EQ(root.keys, (std::vector<std::string>{"a", "b"}));
  const JsonDocument::Node& a = doc->node(*doc->Find(doc->root(), "a"));
  ASSERT_EQ(a.type, JsonType::kArray);
  ASSERT_EQ(a.items.size(), 6u);
  EXPECT_EQ(doc->AsInt64(a.items[0]), 1);
  EXPECT_EQ(doc->AsInt64(a.items[1]), -2);
  EXPECT_EQ(doc->AsInt64(a.items[2]), std::nullopt);  // 3.5e2 is not written as an integer
  EXPECT_EQ(doc->node(a.items[2]).text, "3.5e2");
  EXPECT_TRUE(doc->node(a.items[3]).bool_value);
  EXPECT_EQ(doc->node(a.items[5]).type, JsonType::kNull);
  const auto b = doc->Find(doc->root(), "b");
  const auto s = doc->Find(*b, "s");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(doc->node(*s).text, "x\"\\/\n\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_EQ(doc->Find(doc->root(), "missing"), std::nullopt);
}

TEST(StrictJsonTest, AsInt64RejectsOverflow) {
  absl::StatusOr<JsonDocument> doc = JsonDocument::Parse("[9223372036854775807, 9223372036854775808]");
  ASSERT_TRUE(doc.ok());
  const auto& items = doc->node(doc->root()).items;
  EXPECT_EQ(doc->AsInt64(items[0]), INT64_MAX);
  EXPECT_EQ(doc->AsInt64(items[1]), std::nullopt);
}

class StrictJsonErrorTest : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

TEST_P(StrictJsonErrorTest, Rejects) {
  absl::StatusOr<JsonDocument> doc = JsonDocument::Parse(GetParam().first);
  ASSERT_FALSE(doc.ok()) << GetParam().first;
  EXPECT_EQ(doc.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(doc.status().message()), HasSubstr(GetParam().second));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, StrictJsonErrorTest,
    ::testing::Values(std::make_pair("", "unexpected end"), std::make_pair("{", "unexpected end"),
                      std::make_pair("[1,]", "expected a value"),
                      std::make_pair("{\"a\":1,}", "expected a string key"),
                      std::make_pair("01", "unexpected characters"),
                      std::make_pair("1.", "expected a digit after '.'"),
                      std::make_pair("-", "expected a digit"),
                      std::make_pair("NaN", "expected a value"),
                      std::make_pair("\"abc", "unterminated string"),
                      std::make_pair("\"a\nb\"", "control character"),
                      std::make_pair("\"\\x\"", "invalid escape"),
                      std::make_pair("\"\\ud800\"", "lone high surrogate"),
                      std::make_pair("\"\\udc00\"", "lone low surrogate"),
                      std::make_pair("\"\xff\"", "invalid UTF-8"),
                      std::make_pair("\"\xc0\xaf\"", "invalid UTF-8"),
                      std::make_pair("{\"a\":1,\"a\":2}", "duplicate key \"a\""),
                      std::make_pair("{} x", "unexpected characters after the document"),
                      std::make_pair("{\"a\" 1}", "expected ':'"),
                      std::make_pair("[1 2]", "expected ',' or ']'"),
                      std::make_pair("[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]", "nesting deeper")));

// Verifies that very deep input is rejected by the depth bound rather than
// exhausting the stack (the parser is iterative).
TEST(StrictJsonTest, DeepNestingIsBoundedNotRecursive) {
  JsonLimits limits;
  limits.max_depth = 1 << 20;
  std::string deep(200000, '[');
  absl::StatusOr<JsonDocument> doc = JsonDocument::Parse(deep, limits);
  ASSERT_FALSE(doc.ok());
  EXPECT_THAT(std::string(doc.status().message()), HasSubstr("unexpected end"));
  deep += std::string(200000, ']');
  EXPECT_TRUE(JsonDocument::Parse(deep, limits).ok());
}

TEST(StrictJsonTest, NodeLimit) {
  JsonLimits limits;
  limits.max_nodes = 3;
  EXPECT_TRUE(JsonDocument::Parse("[1,2]", limits).ok());
  absl::StatusOr<JsonDocument> doc = JsonDocument::Parse("[1,2,3]", limits);
  ASSERT_FALSE(doc.ok());
  EXPECT_THAT(std::string(doc.status().message()), HasSubstr("more than 3 values"));
}

}  // namespace
}  // namespace inferd
