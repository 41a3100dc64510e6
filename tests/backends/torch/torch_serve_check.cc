// torch_serve_check: sends each case of a cases folder (the format of
// make_torch_fixtures.py and scripts/gpu/torch_export.py) to a running
// daemon through ModelInfer and compares the outputs with the ones Python
// computed: max |error| / max |output| within 1e-2 for FP16/BF16 outputs and
// 1e-4 for FP32/FP64 (the GPU acceptance bounds), exact for integers.
//
//   torch_serve_check --target=127.0.0.1:50051 --cases=DIR [MODEL...]
//
// Prints one JSON line per model; exits 1 when any model fails.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "clients/cpp/inferd_client.h"
#include "tests/backends/torch/torch_fixtures.h"

namespace inferd {
namespace {

double Tolerance(DataType t) {
  switch (t) {
    case DataType::kFp16:
    case DataType::kBf16:
      return 1e-2;
    case DataType::kFp32:
    case DataType::kFp64:
      return 1e-4;
    default:
      return 0;
  }
}

int Main(int argc, char** argv) {
  std::string target = "127.0.0.1:50051";
  std::string cases;
  std::vector<std::string> models;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (absl::StartsWith(arg, "--target=")) {
      target = arg.substr(9);
    } else if (absl::StartsWith(arg, "--cases=")) {
      cases = arg.substr(8);
    } else if (!absl::StartsWith(arg, "-")) {
      models.push_back(arg);
    } else {
      std::fprintf(stderr, "usage: torch_serve_check --target=HOST:PORT --cases=DIR [MODEL...]\n");
      return 2;
    }
  }
  if (models.empty()) {
    for (const auto& e : std::filesystem::directory_iterator(cases)) {
      models.push_back(e.path().filename().string());
    }
  }
  ClientOptions o;
  o.target = target;
  o.timeout = absl::Seconds(120);
  InferdClient client(o);
  int failed = 0;
  for (const std::string& model : models) {
    const torch_testing::ModelCase c = torch_testing::ReadCaseDir(cases + "/" + model);
    inference::ModelInferRequest r;
    r.set_model_name(model);
    for (const torch_testing::CaseTensor& t : c.inputs) {
      auto* in = r.add_inputs();
      in->set_name(t.name);
      in->set_datatype(std::string(DataTypeName(t.dtype)));
      for (int64_t d : t.shape) in->add_shape(d);
      r.add_raw_input_contents(t.bytes);
    }
    absl::StatusOr<inference::ModelInferResponse> got = client.Infer(r);
    std::string error;
    double worst = 0;
    double bound = 0;
    if (!got.ok()) {
      error = got.status().ToString();
    } else if (got->raw_output_contents_size() != static_cast<int>(c.outputs.size())) {
      error = absl::StrCat("got ", got->raw_output_contents_size(), " outputs, want ",
                           c.outputs.size());
    } else {
      for (size_t i = 0; i < c.outputs.size(); ++i) {
        const double e = torch_testing::RelativeError(c.outputs[i], got->raw_output_contents(i));
        const double tol = Tolerance(c.outputs[i].dtype);
        if (e > tol && error.empty()) {
          error = absl::StrCat(c.outputs[i].name, ": relative error ", e, " > ", tol);
        }
        if (e >= worst) {
          worst = e;
          bound = tol;
        }
      }
    }
    if (!error.empty()) ++failed;
    std::printf("{\"model\":\"%s\",\"ok\":%s,\"max_rel_err\":%.3g,\"tolerance\":%.0e%s%s%s}\n",
                model.c_str(), error.empty() ? "true" : "false", worst, bound,
                error.empty() ? "" : ",\"error\":\"", error.c_str(), error.empty() ? "" : "\"");
  }
  return failed == 0 ? 0 : 1;
}

}  // namespace
}  // namespace inferd

int main(int argc, char** argv) { return inferd::Main(argc, argv); }
