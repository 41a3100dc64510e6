#include "core/config/yaml_util.h"

#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>

namespace inferd::config_internal {
namespace {

struct TooManyEvents {};

// Counts events and nothing else; throws TooManyEvents past `max`, so even
// a document whose events never end stops.
class EventCounter final : public YAML::EventHandler {
 public:
  explicit EventCounter(size_t max) : max_(max) {}

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override { Count(); }
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override { Count(); }
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {
    Count();
  }
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    Count();
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    Count();
  }
  void OnMapEnd() override {}

 private:
  void Count() {
    if (++events_ > max_) throw TooManyEvents{};
  }

  const size_t max_;
  size_t events_ = 0;
};

}  // namespace

absl::StatusOr<std::vector<YAML::Node>> LoadDocuments(absl::string_view text,
                                                      absl::string_view what) {
  const std::string copy(text.data(), text.size());
  {
    std::istringstream in(copy);
    YAML::Parser parser(in);
    // A node takes at least one byte of text except empty values ("a:"),
    // which take at least two: more events than this cannot come from text.
    EventCounter counter(2 * copy.size() + 64);
    size_t documents = 0;
    try {
      while (parser.HandleNextDocument(counter)) {
        if (++documents > kMaxYamlDocuments) {
          return absl::InvalidArgumentError(absl::StrCat(
              what, " holds more than ", kMaxYamlDocuments, " YAML documents; expected one"));
        }
      }
    } catch (const TooManyEvents&) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " produces more YAML nodes than its ", copy.size(), " bytes hold"));
    }
  }
  return YAML::LoadAll(copy);
}

std::string Quote(absl::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20 || c == 0x7f) {
      out += absl::StrFormat("\\x%02x", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  out.push_back('"');
  return out;
}

std::string Got(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "null";
    case YAML::NodeType::Scalar:
      return Quote(node.Scalar());
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

bool IsPlainScalar(const YAML::Node& node) { return node.IsScalar() && node.Tag() == "?"; }

}  // namespace inferd::config_internal
