#include "core/util/strict_json.h"

#include <charconv>
#include <system_error>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/util/status_macros.h"

namespace inferd {
namespace {

using NodeId = JsonDocument::NodeId;
using Node = JsonDocument::Node;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

// One pass over the text with an explicit stack of open containers.
class Parser {
 public:
  Parser(absl::string_view text, const JsonLimits& limits, std::vector<Node>* nodes)
      : s_(text), limits_(limits), nodes_(nodes) {}

  absl::Status Run() {
    enum class Expect { kValue, kValueOrClose, kKey, kKeyOrClose, kColon, kCommaOrClose };
    Expect expect = Expect::kValue;
    bool done = false;
    // The container on top of the stack ends at pos_.
    auto close = [&] {
      ++pos_;
      stack_.pop_back();
      done = stack_.empty();
      expect = Expect::kCommaOrClose;
    };
    while (!done) {
      SkipWhitespace();
      if (pos_ >= s_.size()) return Error("unexpected end of input");
      const char c = s_[pos_];
      switch (expect) {
        case Expect::kValueOrClose:
          if (c == ']') {
            close();
            break;
          }
          [[fallthrough]];
        case Expect::kValue: {
          ASSIGN_OR_RETURN(const NodeId id, NewNode());
          if (c == '{' || c == '[') {
            ++pos_;
            if (static_cast<int>(stack_.size()) >= limits_.max_depth) {
              return Error(absl::StrCat("nesting deeper than ", limits_.max_depth));
            }
            const bool is_object = c == '{';
            (*nodes_)[id].type = is_object ? JsonType::kObject : JsonType::kArray;
            stack_.push_back(Frame{id, is_object, {}});
            expect = is_object ? Expect::kKeyOrClose : Expect::kValueOrClose;
          } else {
            RETURN_IF_ERROR(ParseScalar(&(*nodes_)[id]));
            done = stack_.empty();
            expect = Expect::kCommaOrClose;
          }
          break;
        }
        case Expect::kKeyOrClose:
          if (c == '}') {
            close();
            break;
          }
          [[fallthrough]];
        case Expect::kKey: {
          if (c != '"') return Error("expected a string key");
          const size_t key_at = pos_;
          pending_key_.clear();
          RETURN_IF_ERROR(ParseString(&pending_key_));
          if (!stack_.back().keys.insert(pending_key_).second) {
            pos_ = key_at;
            return Error(absl::StrCat("duplicate key \"", pending_key_, "\""));
          }
          expect = Expect::kColon;
          break;
        }
        case Expect::kColon:
          if (c != ':') return Error("expected ':'");
          ++pos_;
          expect = Expect::kValue;
          break;
        case Expect::kCommaOrClose: {
          const Frame& frame = stack_.back();
          if (c == ',') {
            ++pos_;
            expect = frame.is_object ? Expect::kKey : Expect::kValue;
          } else if (c == (frame.is_object ? '}' : ']')) {
            close();
          } else {
            return Error(frame.is_object ? "expected ',' or '}'" : "expected ',' or ']'");
          }
          break;
        }
      }
    }
    SkipWhitespace();
    if (pos_ != s_.size()) return Error("unexpected characters after the document");
    return absl::OkStatus();
  }

 private:
  struct Frame {
    NodeId id;
    bool is_object;
    absl::flat_hash_set<std::string> keys;
  };

  absl::Status Error(absl::string_view problem) const {
    return absl::InvalidArgumentError(absl::StrCat("JSON at byte ", pos_, ": ", problem));
  }

  void SkipWhitespace() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }

  // Appends a node and links it to the open container (with the pending key).
  absl::StatusOr<NodeId> NewNode() {
    if (static_cast<int64_t>(nodes_->size()) >= limits_.max_nodes) {
      return Error(absl::StrCat("more than ", limits_.max_nodes, " values"));
    }
    const auto id = static_cast<NodeId>(nodes_->size());
    nodes_->emplace_back();
    if (!stack_.empty()) {
      Node& parent = (*nodes_)[stack_.back().id];
      parent.items.push_back(id);
      if (stack_.back().is_object) parent.keys.push_back(pending_key_);
    }
    return id;
  }

  absl::Status ParseScalar(Node* node) {
    const char c = s_[pos_];
    if (c == '"') {
      node->type = JsonType::kString;
      return ParseString(&node->text);
    }
    for (const auto& [word, type, value] :
         {std::tuple<absl::string_view, JsonType, bool>{"true", JsonType::kBool, true},
          {"false", JsonType::kBool, false},
          {"null", JsonType::kNull, false}}) {
      if (s_.substr(pos_, word.size()) == word) {
        pos_ += word.size();
        node->type = type;
        node->bool_value = value;
        return absl::OkStatus();
      }
    }
    if (c == '-' || IsDigit(c)) return ParseNumber(node);
    return Error("expected a value");
  }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  absl::Status ParseNumber(Node* node) {
    const size_t start = pos_;
    if (s_[pos_] == '-') ++pos_;
    if (pos_ >= s_.size() || !IsDigit(s_[pos_])) return Error("expected a digit");
    if (s_[pos_] == '0') {
      ++pos_;
    } else {
      while (pos_ < s_.size() && IsDigit(s_[pos_])) ++pos_;
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      if (pos_ >= s_.size() || !IsDigit(s_[pos_])) return Error("expected a digit after '.'");
      while (pos_ < s_.size() && IsDigit(s_[pos_])) ++pos_;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (pos_ >= s_.size() || !IsDigit(s_[pos_])) return Error("expected an exponent");
      while (pos_ < s_.size() && IsDigit(s_[pos_])) ++pos_;
    }
    node->type = JsonType::kNumber;
    node->text = std::string(s_.substr(start, pos_ - start));
    return absl::OkStatus();
  }

  absl::Status ParseHex4(uint32_t* out) {
    if (pos_ + 4 > s_.size()) return Error("truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const int h = HexValue(s_[pos_ + i]);
      if (h < 0) return Error("bad \\u escape");
      v = v * 16 + static_cast<uint32_t>(h);
    }
    pos_ += 4;
    *out = v;
    return absl::OkStatus();
  }

  // Checks one UTF-8 sequence starting at pos_ (a byte >= 0x80) and copies it.
  absl::Status CopyUtf8(std::string* out) {
    const auto lead = static_cast<unsigned char>(s_[pos_]);
    int len = 0;
    uint32_t cp = 0;
    if ((lead & 0xe0) == 0xc0) {
      len = 2;
      cp = lead & 0x1f;
    } else if ((lead & 0xf0) == 0xe0) {
      len = 3;
      cp = lead & 0x0f;
    } else if ((lead & 0xf8) == 0xf0) {
      len = 4;
      cp = lead & 0x07;
    } else {
      return Error("invalid UTF-8");
    }
    if (pos_ + len > s_.size()) return Error("truncated UTF-8");
    for (int i = 1; i < len; ++i) {
      const auto b = static_cast<unsigned char>(s_[pos_ + i]);
      if ((b & 0xc0) != 0x80) return Error("invalid UTF-8");
      cp = (cp << 6) | (b & 0x3f);
    }
    const uint32_t min_cp = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
    if (cp < min_cp || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return Error("invalid UTF-8");
    }
    out->append(s_.data() + pos_, len);
    pos_ += len;
    return absl::OkStatus();
  }

  absl::Status ParseString(std::string* out) {
    ++pos_;  // opening quote
    while (true) {
      if (pos_ >= s_.size()) return Error("unterminated string");
      const auto c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        ++pos_;
        return absl::OkStatus();
      }
      if (c < 0x20) return Error("control character in string");
      if (c >= 0x80) {
        RETURN_IF_ERROR(CopyUtf8(out));
        continue;
      }
      if (c != '\\') {
        out->push_back(static_cast<char>(c));
        ++pos_;
        continue;
      }
      if (++pos_ >= s_.size()) return Error("unterminated string");
      const char e = s_[pos_++];
      switch (e) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          uint32_t cp = 0;
          RETURN_IF_ERROR(ParseHex4(&cp));
          if (cp >= 0xdc00 && cp <= 0xdfff) return Error("lone low surrogate");
          if (cp >= 0xd800 && cp <= 0xdbff) {
            if (pos_ + 2 > s_.size() || s_[pos_] != '\\' || s_[pos_ + 1] != 'u') {
              return Error("lone high surrogate");
            }
            pos_ += 2;
            uint32_t low = 0;
            RETURN_IF_ERROR(ParseHex4(&low));
            if (low < 0xdc00 || low > 0xdfff) return Error("bad surrogate pair");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
          }
          AppendUtf8(cp, out);
          break;
        }
        default:
          return Error("invalid escape");
      }
    }
  }

  const absl::string_view s_;
  const JsonLimits limits_;
  std::vector<Node>* const nodes_;
  size_t pos_ = 0;
  std::vector<Frame> stack_;
  std::string pending_key_;
};

}  // namespace

absl::StatusOr<JsonDocument> JsonDocument::Parse(absl::string_view text,
                                                 const JsonLimits& limits) {
  JsonDocument doc;
  Parser parser(text, limits, &doc.nodes_);
  RETURN_IF_ERROR(parser.Run());
  return doc;
}

std::optional<JsonDocument::NodeId> JsonDocument::Find(NodeId object,
                                                       absl::string_view key) const {
  const Node& n = nodes_[object];
  if (n.type != JsonType::kObject) return std::nullopt;
  for (size_t i = 0; i < n.keys.size(); ++i) {
    if (n.keys[i] == key) return n.items[i];
  }
  return std::nullopt;
}

std::optional<int64_t> JsonDocument::AsInt64(NodeId id) const {
  const Node& n = nodes_[id];
  if (n.type != JsonType::kNumber) return std::nullopt;
  if (n.text.find_first_of(".eE") != std::string::npos) return std::nullopt;
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(n.text.data(), n.text.data() + n.text.size(), v);
  if (ec != std::errc() || ptr != n.text.data() + n.text.size()) return std::nullopt;
  return v;
}

absl::string_view JsonTypeName(JsonType type) {
  switch (type) {
    case JsonType::kNull: return "null";
    case JsonType::kBool: return "a boolean";
    case JsonType::kNumber: return "a number";
    case JsonType::kString: return "a string";
    case JsonType::kArray: return "an array";
    case JsonType::kObject: return "an object";
  }
  return "?";
}

}  // namespace inferd
