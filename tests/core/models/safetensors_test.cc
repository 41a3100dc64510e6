#include "core/models/safetensors.h"

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/core/models/model_test_util.h"

namespace inferd {
namespace {

using ::testing::HasSubstr;
using testing_models::Decode;
using testing_models::Encode;

// Builds a file from a header and data, as the format lays it out.
std::string MakeFile(const std::string& header, const std::string& data) {
  std::string out;
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  return out + header + data;
}

std::string Bytes(size_t n) { return std::string(n, '\x01'); }

TEST(SafetensorsTest, RoundTripsTensorsAndMetadata) {
  const std::string w = Encode(DataType::kFp32, {1, 2, 3, 4, 5, 6});
  const std::string b = Encode(DataType::kBf16, {0.5f, -1.5f});
  const std::string i = std::string("\x07\x00\x00\x00\x00\x00\x00\x00", 8);
  std::vector<SafetensorsEntry> entries = {{"layer.weight", DataType::kFp32, {2, 3}, w},
                                           {"layer.bias", DataType::kBf16, {2}, b},
                                           {"step", DataType::kInt64, {}, i}};
  absl::StatusOr<std::string> bytes = SerializeSafetensors(entries, {{"format", "pt"}});
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes->data(), 8);
  EXPECT_EQ(header_len % 8, 0u);

  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Parse(*bytes);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ((*file)->tensors().size(), 3u);
  const SafetensorsTensor* t = (*file)->Find("layer.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dtype, DataType::kFp32);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(Decode(DataType::kFp32, t->data.data(), 6), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  t = (*file)->Find("layer.bias");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(Decode(DataType::kBf16, t->data.data(), 2), (std::vector<float>{0.5f, -1.5f}));
  t = (*file)->Find("step");
  ASSERT_NE(t, nullptr);
  EXPECT_TRUE(t->shape.empty());
  EXPECT_EQ(t->data.size(), 8u);
  EXPECT_EQ((*file)->Find("nope"), nullptr);
  using P = std::pair<std::string, std::string>;
  EXPECT_EQ((*file)->metadata(), (std::vector<P>{{"format", "pt"}}));
}

// The exact bytes torch's save_file writes for {"w": torch.tensor([1., 2.])}
// with metadata {"format": "pt"} (tensor order in the header is free).
TEST(SafetensorsTest, ReadsReferenceLayout) {
  const std::string header =
      R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"format":"pt"}})";
  std::string padded = header;
  while ((padded.size() + 8) % 8 != 0) padded.push_back(' ');
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file =
      SafetensorsFile::Parse(MakeFile(padded, Encode(DataType::kFp32, {1, 2})));
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ((*file)->tensors().size(), 1u);
  EXPECT_EQ(Decode(DataType::kFp32, (*file)->tensors()[0].data.data(), 2),
            (std::vector<float>{1, 2}));
}

TEST(SafetensorsTest, AcceptsTensorsListedOutOfDataOrder) {
  const std::string header =
      R"({"b":{"dtype":"U8","shape":[2],"data_offsets":[3,5]},)"
      R"("a":{"dtype":"U8","shape":[3],"data_offsets":[0,3]}})";
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file =
      SafetensorsFile::Parse(MakeFile(header, "abcde"));
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ((*file)->tensors().size(), 2u);
  EXPECT_EQ((*file)->tensors()[0].name, "a");
  const SafetensorsTensor* b = (*file)->Find("b");
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(b->data.data()), 2), "de");
}

TEST(SafetensorsTest, ReadsTheGeneratedDemoModel) {
  const std::string path =
      std::string(INFERD_BINARY_DIR) + "/model_repository/demo_mlp/model.safetensors";
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file =
      SafetensorsFile::ReadFile(path, 1 << 30);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ((*file)->tensors().size(), 6u);
  const SafetensorsTensor* w = (*file)->Find("2.weight");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->dtype, DataType::kFp32);
  EXPECT_EQ(w->shape, (std::vector<int64_t>{256, 256}));
  // nn.Linear's init range: |w| <= 1/sqrt(in_features).
  for (float v : Decode(DataType::kFp32, w->data.data(), 256 * 256)) {
    ASSERT_LE(std::abs(v), 1.0f / 16.0f);
  }
  EXPECT_EQ((*file)->Find("4.bias")->shape, (std::vector<int64_t>{16}));
  using P = std::pair<std::string, std::string>;
  EXPECT_THAT((*file)->metadata(), ::testing::Contains(P{"format", "pt"}));
}

TEST(SafetensorsTest, ReadFileErrors) {
  EXPECT_EQ(SafetensorsFile::ReadFile("/nonexistent/x.safetensors", 100).status().code(),
            absl::StatusCode::kNotFound);
  testing_models::ScratchDir dir;
  const std::string header = R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})";
  testing_models::WriteFile(dir / "w.safetensors", MakeFile(header, "abcd"));
  EXPECT_TRUE(SafetensorsFile::ReadFile(dir / "w.safetensors", 1000).ok());
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> small =
      SafetensorsFile::ReadFile(dir / "w.safetensors", 10);
  ASSERT_FALSE(small.ok());
  EXPECT_EQ(small.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(small.status().message()), HasSubstr("exceeds the limit"));
}

struct Malformed {
  const char* label;
  std::string bytes;
  std::string message;
};

void PrintTo(const Malformed& c, std::ostream* os) { *os << c.label; }

class SafetensorsMalformedTest : public ::testing::TestWithParam<Malformed> {};

TEST_P(SafetensorsMalformedTest, IsInvalidArgument) {
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Parse(GetParam().bytes);
  ASSERT_FALSE(file.ok()) << GetParam().label;
  EXPECT_EQ(file.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(file.status().message()), HasSubstr(GetParam().message));
}

std::string Tensor(const std::string& name, const std::string& dtype, const std::string& shape,
                   const std::string& offsets) {
  return absl::StrCat("\"", name, "\":{\"dtype\":\"", dtype, "\",\"shape\":", shape,
                      ",\"data_offsets\":", offsets, "}");
}

std::vector<Malformed> MalformedCases() {
  const std::string ok_a = Tensor("a", "F32", "[2]", "[0,8]");
  std::string huge_len(8, '\0');
  huge_len[4] = 1;  // 2^32
  std::string past_eof = MakeFile("{}", "");
  past_eof[0] = 100;
  return {
      {"empty", "", "shorter than the 8-byte header length"},
      {"truncated length", std::string("\x02\x00\x00", 3), "shorter than the 8-byte"},
      {"length past eof", past_eof, "runs past the end of the file"},
      {"length over limit", huge_len + "{}", "exceeds the limit"},
      {"truncated header", MakeFile("{\"a\":{\"dtype\":\"F32\"", ""), "JSON at byte"},
      {"not an object", MakeFile("[1,2]", ""), "does not start with '{'"},
      {"trailing garbage", MakeFile("{} x", ""), "unexpected characters"},
      {"end past data", MakeFile("{" + Tensor("a", "F32", "[2]", "[0,8]") + "}", Bytes(4)),
       "is past the data section"},
      {"end before begin", MakeFile("{" + Tensor("a", "U8", "[0]", "[4,2]") + "}", Bytes(4)),
       "end 2 is before begin 4"},
      {"shape bytes mismatch", MakeFile("{" + Tensor("a", "F32", "[3]", "[0,8]") + "}", Bytes(8)),
       "needs 12 bytes but data_offsets span 8"},
      {"gap", MakeFile("{" + ok_a + "," + Tensor("b", "U8", "[2]", "[10,12]") + "}", Bytes(12)),
       "tensor 'b': data_offsets: begins at 10, leaving a gap (expected 8)"},
      {"overlap", MakeFile("{" + ok_a + "," + Tensor("b", "U8", "[4]", "[4,8]") + "}", Bytes(8)),
       "overlapping"},
      {"trailing data", MakeFile("{" + ok_a + "}", Bytes(9)), "tensors cover 8 of the 9 data bytes"},
      {"missing data", MakeFile("{" + ok_a + "}", Bytes(7)), "past the data section"},
      {"unknown dtype", MakeFile("{" + Tensor("a", "F8_E4M3", "[8]", "[0,8]") + "}", Bytes(8)),
       "dtype: 'F8_E4M3' is not supported"},
      {"dtype not string",
       MakeFile(R"({"a":{"dtype":4,"shape":[1],"data_offsets":[0,1]}})", Bytes(1)),
       "dtype: not a string"},
      {"negative dim", MakeFile("{" + Tensor("a", "U8", "[-1]", "[0,1]") + "}", Bytes(1)),
       "shape: item 0 is not a non-negative integer"},
      {"fractional offset", MakeFile("{" + Tensor("a", "U8", "[1]", "[0,1.0]") + "}", Bytes(1)),
       "data_offsets: item 1 is not a non-negative integer"},
      {"shape overflow",
       MakeFile("{" + Tensor("a", "F32", "[4611686018427387904,8]", "[0,8]") + "}", Bytes(8)),
       "element count overflows"},
      {"three offsets", MakeFile("{" + Tensor("a", "U8", "[1]", "[0,1,2]") + "}", Bytes(1)),
       "expected [begin, end]"},
      {"unknown field",
       MakeFile(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1}})", Bytes(1)),
       "unknown field 'x'"},
      {"missing field", MakeFile(R"({"a":{"dtype":"U8","shape":[1]}})", Bytes(1)),
       "needs dtype, shape and data_offsets"},
      {"duplicate tensor",
       MakeFile("{" + Tensor("a", "U8", "[1]", "[0,1]") + "," + Tensor("a", "U8", "[1]", "[1,2]") +
                    "}",
                Bytes(2)),
       "duplicate key \"a\""},
      {"metadata not strings", MakeFile(R"({"__metadata__":{"n":1}})", ""),
       "__metadata__.n: expected a string"},
      {"too deep", MakeFile(R"({"a":{"dtype":"U8","shape":[[1]],"data_offsets":[0,1]}})", Bytes(1)),
       "nesting deeper than 3"},
  };
}

INSTANTIATE_TEST_SUITE_P(Cases, SafetensorsMalformedTest, ::testing::ValuesIn(MalformedCases()),
                         [](const ::testing::TestParamInfo<Malformed>& info) {
                           std::string name = info.param.label;
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

TEST(SafetensorsTest, SerializeRejectsBadEntries) {
  const std::string four = Bytes(4);
  std::vector<SafetensorsEntry> mismatch = {{"a", DataType::kFp32, {2}, four}};
  EXPECT_EQ(SerializeSafetensors(mismatch).status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<SafetensorsEntry> dup = {{"a", DataType::kUint8, {4}, four},
                                       {"a", DataType::kUint8, {4}, four}};
  EXPECT_EQ(SerializeSafetensors(dup).status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<SafetensorsEntry> bytes = {{"a", DataType::kBytes, {4}, four}};
  EXPECT_EQ(SerializeSafetensors(bytes).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace inferd
