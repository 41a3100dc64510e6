#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "clients/cpp/load_generator.h"
#include "clients/cpp/proto_text.h"
#include "clients/cpp/tensor_helpers.h"
#include "clients/inferctl/commands.h"

// health, models, infer and bench: the KServe v2 and health services.
namespace inferd::inferctl {

int HealthCommand(InferdClient& client, const std::vector<std::string>& args) {
  std::string service = "inferd";
  bool json = false;
  for (absl::string_view a : args) {
    if (absl::ConsumePrefix(&a, "--service=")) {
      service = std::string(a);
    } else if (a == "--json") {
      json = true;
    } else {
      std::fprintf(stderr, "inferctl health: unknown argument '%s'\n", std::string(a).c_str());
      return 2;
    }
  }
  absl::StatusOr<bool> serving = client.Health(service);
  if (!serving.ok()) return Fail(serving.status());
  const char* status = *serving ? "SERVING" : "NOT_SERVING";
  if (json) {
    std::printf("{\"service\": \"%s\", \"status\": \"%s\"}\n", service.c_str(), status);
  } else {
    std::printf("%s\n", status);
  }
  return *serving ? 0 : 1;
}

namespace {

// models load|unload NAME: RepositoryModelLoad / RepositoryModelUnload.
int ModelControl(InferdClient& client, const std::string& verb,
                 const std::vector<std::string>& args) {
  bool json = false;
  std::vector<std::string> names;
  if (!ParseFlags("models " + verb, args, {{"json", &json}}, &names)) return 2;
  if (names.size() != 1) return UsageError("models " + verb, "needs one MODEL name");
  absl::Status st;
  if (verb == "load") {
    inference::RepositoryModelLoadRequest req;
    req.set_model_name(names[0]);
    inference::RepositoryModelLoadResponse resp;
    st = client.WithRetries([&](grpc::ClientContext* ctx) {
      return client.kserve().RepositoryModelLoad(ctx, req, &resp);
    });
  } else {
    inference::RepositoryModelUnloadRequest req;
    req.set_model_name(names[0]);
    inference::RepositoryModelUnloadResponse resp;
    st = client.WithRetries([&](grpc::ClientContext* ctx) {
      return client.kserve().RepositoryModelUnload(ctx, req, &resp);
    });
  }
  if (!st.ok()) return Fail(st);
  const char* done = verb == "load" ? "loaded" : "unloaded";
  if (json) {
    std::printf("{\"model\": \"%s\", \"state\": \"%s\"}\n", names[0].c_str(), done);
  } else {
    std::printf("%s %s\n", names[0].c_str(), done);
  }
  return 0;
}

}  // namespace

int ModelsCommand(InferdClient& client, const std::vector<std::string>& args) {
  if (!args.empty() && (args[0] == "load" || args[0] == "unload")) {
    return ModelControl(client, args[0], {args.begin() + 1, args.end()});
  }
  // `models` and `models index`: the repository index, with signatures
  // (`models`) or as the daemon reports it (`models index`, every state).
  const bool index_only = !args.empty() && args[0] == "index";
  bool json = false;
  std::vector<std::string> extra;
  const std::string name = index_only ? "models index" : "models";
  if (!ParseFlags(name, {args.begin() + (index_only ? 1 : 0), args.end()}, {{"json", &json}},
                  &extra)) {
    return 2;
  }
  if (!extra.empty()) return UsageError(name, absl::StrCat("unknown argument '", extra[0], "'"));
  auto index = client.ListModels();
  if (!index.ok()) return Fail(index.status());
  if (index_only) {
    if (json) {
      std::printf("%s\n", MessageToJson(*index).c_str());
      return 0;
    }
    for (const auto& m : index->models()) {
      std::printf("%-16s v%-4s %-12s %s\n", m.name().c_str(), m.version().c_str(),
                  m.state().c_str(), m.reason().c_str());
    }
    return 0;
  }
  std::vector<std::string> json_models;
  for (const auto& m : index->models()) {
    auto meta = client.ModelMetadata(m.name());
    if (json) {
      json_models.push_back(absl::StrCat(
          "{\"index\": ", MessageToJson(m, /*indent=*/false),
          ", \"metadata\": ", meta.ok() ? MessageToJson(*meta, /*indent=*/false) : "null", "}"));
      continue;
    }
    std::string sig;
    if (meta.ok()) {
      auto fmt = [](const auto& tensors) {
        std::vector<std::string> parts;
        for (const auto& t : tensors) {
          parts.push_back(
              absl::StrCat(t.name(), ":", t.datatype(), "[", absl::StrJoin(t.shape(), ","), "]"));
        }
        return absl::StrJoin(parts, " ");
      };
      sig = absl::StrCat(meta->platform(), "  in: ", fmt(meta->inputs()),
                         "  out: ", fmt(meta->outputs()));
    }
    std::printf("%-16s v%-4s %-8s %s\n", m.name().c_str(), m.version().c_str(), m.state().c_str(),
                sig.c_str());
  }
  if (json) std::printf("{\"models\": [%s]}\n", absl::StrJoin(json_models, ", ").c_str());
  return 0;
}

int InferCommand(InferdClient& client, const std::vector<std::string>& args) {
  if (args.empty()) {
    return UsageError("infer",
                      "needs a MODEL, e.g. inferctl infer add --input=INPUT0:FP32:2:1,2 "
                      "--input=INPUT1:FP32:2:3,4");
  }
  inference::ModelInferRequest req;
  req.set_model_name(args[0]);
  bool json = false;
  for (size_t i = 1; i < args.size(); ++i) {
    absl::string_view a = args[i];
    if (absl::ConsumePrefix(&a, "--input=")) {
      if (absl::Status st = AddInputSpec(a, &req); !st.ok()) {
        std::fprintf(stderr, "inferctl: %s\n", std::string(st.message()).c_str());
        return 2;
      }
    } else if (absl::ConsumePrefix(&a, "--output=")) {
      req.add_outputs()->set_name(std::string(a));
    } else if (absl::ConsumePrefix(&a, "--param=")) {
      const size_t eq = a.find('=');
      if (eq == absl::string_view::npos) {
        std::fprintf(stderr, "inferctl: --param needs KEY=VALUE\n");
        return 2;
      }
      inference::InferParameter p;
      absl::string_view v = a.substr(eq + 1);
      int64_t iv;
      double dv;
      if (absl::SimpleAtoi(v, &iv))
        p.set_int64_param(iv);
      else if (absl::SimpleAtod(v, &dv))
        p.set_double_param(dv);
      else if (v == "true" || v == "false")
        p.set_bool_param(v == "true");
      else
        p.set_string_param(std::string(v));
      (*req.mutable_parameters())[std::string(a.substr(0, eq))] = p;
    } else if (a == "--json") {
      json = true;
    } else {
      std::fprintf(stderr, "inferctl infer: unknown argument '%s'\n", args[i].c_str());
      return 2;
    }
  }
  auto resp = client.Infer(req);
  if (!resp.ok()) return Fail(resp.status());
  if (json) {
    // Outputs as value lists ("data"), not the raw bytes.
    std::vector<std::string> outputs;
    for (int i = 0; i < resp->outputs_size(); ++i) {
      const auto& out = resp->outputs(i);
      std::optional<DataType> dt = ParseDataType(out.datatype());
      const bool numeric = dt && *dt != DataType::kBytes && i < resp->raw_output_contents_size();
      outputs.push_back(absl::StrCat(
          "{\"name\": \"", out.name(), "\", \"datatype\": \"", out.datatype(),
          "\", \"shape\": [", absl::StrJoin(out.shape(), ", "), "], \"data\": [",
          numeric ? FormatValues(*dt, resp->raw_output_contents(i), SIZE_MAX) : std::string(), "]}"));
    }
    std::printf("{\"model_name\": \"%s\", \"model_version\": \"%s\", \"id\": \"%s\", "
                "\"outputs\": [%s]}\n",
                resp->model_name().c_str(), resp->model_version().c_str(), resp->id().c_str(),
                absl::StrJoin(outputs, ", ").c_str());
    return 0;
  }
  for (int i = 0; i < resp->outputs_size(); ++i) {
    const auto& out = resp->outputs(i);
    std::optional<DataType> dt = ParseDataType(out.datatype());
    const std::string values = (dt && i < resp->raw_output_contents_size())
                                   ? FormatValues(*dt, resp->raw_output_contents(i))
                                   : std::string("?");
    std::printf("%s %s [%s]: %s\n", out.name().c_str(), out.datatype().c_str(),
                absl::StrJoin(out.shape(), ",").c_str(), values.c_str());
  }
  return 0;
}


}  // namespace inferd::inferctl
