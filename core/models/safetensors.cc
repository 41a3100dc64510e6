#include "core/models/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/util/strict_json.h"
#include "core/util/checked_math.h"
#include "core/util/status_macros.h"

namespace inferd {
namespace {

constexpr int kMaxRank = 64;

struct DtypeName {
  DataType dtype;
  absl::string_view name;
};

constexpr DtypeName kDtypeNames[] = {
    {DataType::kBool, "BOOL"}, {DataType::kUint8, "U8"},   {DataType::kInt8, "I8"},
    {DataType::kUint16, "U16"}, {DataType::kInt16, "I16"}, {DataType::kFp16, "F16"},
    {DataType::kBf16, "BF16"}, {DataType::kUint32, "U32"}, {DataType::kInt32, "I32"},
    {DataType::kFp32, "F32"},  {DataType::kUint64, "U64"}, {DataType::kInt64, "I64"},
    {DataType::kFp64, "F64"},
};

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("safetensors: ", what));
}

absl::Status BadTensor(absl::string_view name, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("safetensors: tensor '", name, "': ", what));
}

uint64_t ReadLe64(const std::string& bytes) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(bytes[i]);
  return v;
}

// Reads a JSON array of non-negative int64 into `out`; "" or the problem.
std::string ReadIndexArray(const JsonDocument& doc, JsonDocument::NodeId id,
                           std::vector<int64_t>* out) {
  const JsonDocument::Node& node = doc.node(id);
  if (node.type != JsonType::kArray) {
    return absl::StrCat("expected an array, got ", JsonTypeName(node.type));
  }
  for (size_t i = 0; i < node.items.size(); ++i) {
    std::optional<int64_t> v = doc.AsInt64(node.items[i]);
    if (!v.has_value() || *v < 0) {
      return absl::StrCat("item ", i, " is not a non-negative integer");
    }
    out->push_back(*v);
  }
  return "";
}

struct Parsed {
  std::string name;
  DataType dtype;
  std::vector<int64_t> shape;
  uint64_t begin;
  uint64_t end;
};

absl::Status ParseTensorEntry(const JsonDocument& doc, const std::string& name,
                              JsonDocument::NodeId id, uint64_t data_len, Parsed* out) {
  const JsonDocument::Node& node = doc.node(id);
  if (node.type != JsonType::kObject) {
    return BadTensor(name, absl::StrCat("expected an object, got ", JsonTypeName(node.type)));
  }
  for (const std::string& key : node.keys) {
    if (key != "dtype" && key != "shape" && key != "data_offsets") {
      return BadTensor(name, absl::StrCat("unknown field '", key, "'"));
    }
  }
  out->name = name;
  std::optional<JsonDocument::NodeId> dtype = doc.Find(id, "dtype");
  std::optional<JsonDocument::NodeId> shape = doc.Find(id, "shape");
  std::optional<JsonDocument::NodeId> offsets = doc.Find(id, "data_offsets");
  if (!dtype || !shape || !offsets) {
    return BadTensor(name, "needs dtype, shape and data_offsets");
  }
  if (doc.node(*dtype).type != JsonType::kString) return BadTensor(name, "dtype: not a string");
  const std::string& dtype_name = doc.node(*dtype).text;
  out->dtype = DataType::kInvalid;
  for (const DtypeName& d : kDtypeNames) {
    if (d.name == dtype_name) out->dtype = d.dtype;
  }
  if (out->dtype == DataType::kInvalid) {
    return BadTensor(name, absl::StrCat("dtype: '", dtype_name, "' is not supported"));
  }
  if (std::string problem = ReadIndexArray(doc, *shape, &out->shape); !problem.empty()) {
    return BadTensor(name, absl::StrCat("shape: ", problem));
  }
  if (out->shape.size() > static_cast<size_t>(kMaxRank)) {
    return BadTensor(name, absl::StrCat("shape: rank ", out->shape.size(), " exceeds ", kMaxRank));
  }
  std::vector<int64_t> range;
  if (std::string problem = ReadIndexArray(doc, *offsets, &range); !problem.empty()) {
    return BadTensor(name, absl::StrCat("data_offsets: ", problem));
  }
  if (range.size() != 2) return BadTensor(name, "data_offsets: expected [begin, end]");
  out->begin = static_cast<uint64_t>(range[0]);
  out->end = static_cast<uint64_t>(range[1]);
  if (out->end < out->begin) {
    return BadTensor(name, absl::StrCat("data_offsets: end ", out->end, " is before begin ",
                                        out->begin));
  }
  if (out->end > data_len) {
    return BadTensor(name, absl::StrCat("data_offsets: end ", out->end,
                                        " is past the data section (", data_len, " bytes)"));
  }
  uint64_t elements = 0;
  uint64_t bytes = 0;
  if (!ShapeElementCount(out->shape, &elements) ||
      !CheckedMul(elements, DataTypeSize(out->dtype), &bytes)) {
    return BadTensor(name, "shape: element count overflows");
  }
  if (bytes != out->end - out->begin) {
    return BadTensor(name, absl::StrCat("shape [", absl::StrJoin(out->shape, ", "), "] of ",
                                        dtype_name, " needs ", bytes, " bytes but data_offsets ",
                                        "span ", out->end - out->begin));
  }
  return absl::OkStatus();
}

}  // namespace

absl::string_view SafetensorsDtypeName(DataType dtype) {
  for (const DtypeName& d : kDtypeNames) {
    if (d.dtype == dtype) return d.name;
  }
  return "";
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Parse(std::string bytes) {
  if (bytes.size() < 8) {
    return Bad(absl::StrCat("file of ", bytes.size(),
                            " bytes is shorter than the 8-byte header length"));
  }
  const uint64_t header_len = ReadLe64(bytes);
  if (header_len > kMaxSafetensorsHeaderBytes) {
    return Bad(absl::StrCat("header length ", header_len, " exceeds the limit of ",
                            kMaxSafetensorsHeaderBytes, " bytes"));
  }
  if (header_len > bytes.size() - 8) {
    return Bad(absl::StrCat("header length ", header_len, " runs past the end of the file (",
                            bytes.size(), " bytes)"));
  }
  const absl::string_view header(bytes.data() + 8, header_len);
  if (header.empty() || header.front() != '{') return Bad("header does not start with '{'");
  JsonLimits limits;
  limits.max_depth = 3;  // root -> tensor -> shape
  ASSIGN_OR_RETURN(JsonDocument doc, JsonDocument::Parse(header, limits));
  const JsonDocument::Node& root = doc.node(doc.root());
  if (root.type != JsonType::kObject) return Bad("header is not a JSON object");

  auto file = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  const uint64_t data_start = 8 + header_len;
  const uint64_t data_len = bytes.size() - data_start;
  std::vector<Parsed> parsed;
  parsed.reserve(root.items.size());
  for (size_t i = 0; i < root.items.size(); ++i) {
    const std::string& key = root.keys[i];
    if (key == "__metadata__") {
      const JsonDocument::Node& meta = doc.node(root.items[i]);
      if (meta.type != JsonType::kObject) return Bad("__metadata__: expected an object");
      for (size_t j = 0; j < meta.items.size(); ++j) {
        const JsonDocument::Node& value = doc.node(meta.items[j]);
        if (value.type != JsonType::kString) {
          return Bad(absl::StrCat("__metadata__.", meta.keys[j], ": expected a string"));
        }
        file->metadata_.emplace_back(meta.keys[j], value.text);
      }
      continue;
    }
    Parsed entry;
    RETURN_IF_ERROR(ParseTensorEntry(doc, key, root.items[i], data_len, &entry));
    parsed.push_back(std::move(entry));
  }
  std::sort(file->metadata_.begin(), file->metadata_.end());

  // The tensors must tile [0, data_len) exactly.
  std::sort(parsed.begin(), parsed.end(), [](const Parsed& a, const Parsed& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expected = 0;
  for (const Parsed& p : parsed) {
    if (p.begin != expected) {
      return BadTensor(p.name, absl::StrCat("data_offsets: begins at ", p.begin,
                                            p.begin < expected ? ", overlapping" : ", leaving a gap",
                                            " (expected ", expected, ")"));
    }
    expected = p.end;
  }
  if (expected != data_len) {
    return Bad(absl::StrCat("tensors cover ", expected, " of the ", data_len,
                            " data bytes (the file has trailing or missing bytes)"));
  }

  file->bytes_ = std::move(bytes);
  const auto* base = reinterpret_cast<const uint8_t*>(file->bytes_.data()) + data_start;
  for (Parsed& p : parsed) {
    file->tensors_.push_back(SafetensorsTensor{
        std::move(p.name), p.dtype, std::move(p.shape),
        absl::Span<const uint8_t>(base + p.begin, static_cast<size_t>(p.end - p.begin))});
  }
  return file;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::ReadFile(
    const std::string& path, uint64_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat("cannot open: ", std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError("not a regular file");
  }
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size > max_bytes) {
    ::close(fd);
    return absl::InvalidArgumentError(
        absl::StrCat("file of ", size, " bytes exceeds the limit of ", max_bytes));
  }
  std::string bytes(size, '\0');
  uint64_t done = 0;
  while (done < size) {
    const ssize_t n = ::read(fd, bytes.data() + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return absl::InvalidArgumentError("file shrank or could not be read");
    }
    done += static_cast<uint64_t>(n);
  }
  ::close(fd);
  return Parse(std::move(bytes));
}

const SafetensorsTensor* SafetensorsFile::Find(absl::string_view name) const {
  for (const SafetensorsTensor& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

absl::StatusOr<std::string> SerializeSafetensors(
    absl::Span<const SafetensorsEntry> tensors,
    const std::vector<std::pair<std::string, std::string>>& metadata) {
  auto json_string = [](absl::string_view s) {
    std::string out = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\') {
        out.push_back('\\');
        out.push_back(c);
      } else if (static_cast<unsigned char>(c) < 0x20) {
        out += absl::StrFormat("\\u%04x", static_cast<unsigned char>(c));
      } else {
        out.push_back(c);
      }
    }
    out.push_back('"');
    return out;
  };
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    for (size_t i = 0; i < metadata.size(); ++i) {
      absl::StrAppend(&header, i ? "," : "", json_string(metadata[i].first), ":",
                      json_string(metadata[i].second));
    }
    header += "}";
  }
  absl::flat_hash_set<std::string> names;
  uint64_t offset = 0;
  for (const SafetensorsEntry& t : tensors) {
    if (t.name == "__metadata__" || !names.insert(t.name).second) {
      return BadTensor(t.name, "duplicate or reserved name");
    }
    const absl::string_view dtype = SafetensorsDtypeName(t.dtype);
    if (dtype.empty()) return BadTensor(t.name, "dtype has no safetensors name");
    uint64_t elements = 0;
    uint64_t bytes = 0;
    if (!ShapeElementCount(t.shape, &elements) ||
        !CheckedMul(elements, DataTypeSize(t.dtype), &bytes) || bytes != t.bytes.size()) {
      return BadTensor(t.name, "bytes do not match the shape");
    }
    absl::StrAppend(&header, header.size() > 1 ? "," : "", json_string(t.name), ":{\"dtype\":\"",
                    dtype, "\",\"shape\":[", absl::StrJoin(t.shape, ","), "],\"data_offsets\":[",
                    offset, ",", offset + bytes, "]}");
    offset += bytes;
  }
  header += "}";
  while (header.size() % 8 != 0) header.push_back(' ');
  std::string out;
  out.reserve(8 + header.size() + offset);
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out += header;
  for (const SafetensorsEntry& t : tensors) out.append(t.bytes.data(), t.bytes.size());
  return out;
}

}  // namespace inferd
