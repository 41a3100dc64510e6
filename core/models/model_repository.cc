#include "core/models/model_repository.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/models/builtin_op_model.h"
#include "core/models/declared_signature.h"
#include "core/models/mlp_model.h"
#include "core/models/plugin_model.h"
#include "core/models/safetensors.h"
#include "core/models/torch_model.h"
#include "core/util/status_macros.h"

namespace inferd {
namespace {

constexpr char kConfigFile[] = "config.yaml";
constexpr int64_t kMaxLabelsBytes = 16 << 20;

// realpath(3); errno is kept for the caller when it fails.
bool RealPath(const std::string& path, std::string* out) {
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) == nullptr) return false;
  *out = buf;
  return true;
}

bool IsInside(const std::string& dir, const std::string& path) {
  return path.size() > dir.size() + 1 && path.compare(0, dir.size(), dir) == 0 &&
         path[dir.size()] == '/';
}

absl::Status WithPrefix(const absl::Status& status, absl::string_view prefix) {
  return absl::Status(status.code(), absl::StrCat(prefix, status.message()));
}

std::string Shown(absl::string_view s) {
  return absl::CHexEscape(s.substr(0, std::min<size_t>(s.size(), 128)));
}

absl::StatusOr<std::string> ReadSmallFile(const std::string& path, int64_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError("cannot be opened");
  std::string text;
  char buf[4096];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return absl::NotFoundError("cannot be read");
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (static_cast<int64_t>(text.size()) > max_bytes) {
      ::close(fd);
      return absl::InvalidArgumentError(absl::StrCat("larger than ", max_bytes, " bytes"));
    }
  }
  ::close(fd);
  return text;
}

}  // namespace

absl::StatusOr<std::string> ResolveInside(const std::string& dir, absl::string_view relative,
                                          absl::string_view key) {
  if (relative.empty()) return absl::InvalidArgumentError(absl::StrCat(key, ": must not be empty"));
  if (relative.find('\0') != absl::string_view::npos || relative.front() == '/') {
    return absl::InvalidArgumentError(
        absl::StrCat(key, ": must be a path relative to the model folder"));
  }
  for (absl::string_view part : absl::StrSplit(relative, '/')) {
    if (part == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat(key, ": '", Shown(relative), "' must not contain '..'"));
    }
  }
  std::string resolved;
  if (!RealPath(absl::StrCat(dir, "/", relative), &resolved)) {
    if (errno == EACCES) {
      return absl::PermissionDeniedError(
          absl::StrCat(key, ": '", Shown(relative), "' is not accessible"));
    }
    return absl::NotFoundError(
        absl::StrCat(key, ": file '", Shown(relative), "' not found in the model folder"));
  }
  if (!IsInside(dir, resolved)) {
    return absl::PermissionDeniedError(
        absl::StrCat(key, ": '", Shown(relative), "' resolves outside the model folder"));
  }
  struct stat st {};
  if (::stat(resolved.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(key, ": '", Shown(relative), "' is not a regular file"));
  }
  return resolved;
}

ModelRepository::ModelRepository(std::string root, ModelRepositoryOptions options)
    : root_(std::move(root)), options_(std::move(options)) {
  for (Device* d : options_.devices) has_cuda_device_ |= d->info().kind == DeviceKind::kCuda;
}

absl::StatusOr<std::unique_ptr<ModelRepository>> ModelRepository::Open(
    const std::string& root, ModelRepositoryOptions options) {
  std::string resolved;
  struct stat st {};
  if (!RealPath(root, &resolved) || ::stat(resolved.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::NotFoundError(
        absl::StrCat("models.repository: '", root, "' is not a directory"));
  }
  return std::unique_ptr<ModelRepository>(new ModelRepository(resolved, std::move(options)));
}

absl::StatusOr<std::vector<std::string>> ModelRepository::List() const {
  std::vector<std::string> names;
  std::error_code ec;
  std::filesystem::directory_iterator it(root_, ec);
  if (ec) return absl::UnavailableError("the model repository cannot be listed");
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (ec) return absl::UnavailableError("the model repository cannot be listed");
    const std::string name = it->path().filename().string();
    if (!IsValidModelName(name)) continue;
    std::error_code ec2;
    if (!std::filesystem::is_directory(it->path(), ec2)) continue;
    if (!std::filesystem::is_regular_file(it->path() / kConfigFile, ec2)) continue;
    names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

absl::StatusOr<std::string> ModelRepository::ModelDir(absl::string_view name) const {
  if (!IsValidModelName(name)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model_name: '", Shown(name),
        "' is not a valid model name ([A-Za-z0-9_.-], not starting with '.')"));
  }
  std::string dir;
  if (!RealPath(absl::StrCat(root_, "/", name), &dir)) {
    return absl::NotFoundError(absl::StrCat("model '", name, "' is not in the model repository"));
  }
  if (!IsInside(root_, dir)) {
    return absl::PermissionDeniedError(
        absl::StrCat("model '", name, "': its folder resolves outside the model repository"));
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::NotFoundError(absl::StrCat("model '", name, "' is not in the model repository"));
  }
  return dir;
}

bool ModelRepository::Contains(absl::string_view name) const {
  absl::StatusOr<std::string> dir = ModelDir(name);
  return dir.ok() && ResolveInside(*dir, kConfigFile, kConfigFile).ok();
}

absl::StatusOr<ModelConfigSpec> ModelRepository::ReadConfig(absl::string_view name) const {
  ASSIGN_OR_RETURN(const std::string dir, ModelDir(name));
  const std::string prefix = absl::StrCat("model '", name, "': ");
  absl::StatusOr<std::string> config_path = ResolveInside(dir, kConfigFile, kConfigFile);
  if (!config_path.ok()) return WithPrefix(config_path.status(), prefix);
  absl::StatusOr<std::string> text = ReadSmallFile(*config_path, kMaxModelConfigBytes);
  if (!text.ok()) return WithPrefix(text.status(), absl::StrCat(prefix, "config.yaml: "));
  absl::StatusOr<ModelConfigSpec> spec = ParseModelConfig(*text);
  if (!spec.ok()) return WithPrefix(spec.status(), absl::StrCat(prefix, "config.yaml: "));
  if (!spec->name.empty() && spec->name != name) {
    return absl::InvalidArgumentError(absl::StrCat(prefix, "config.yaml: name: '", spec->name,
                                                   "' differs from the folder name"));
  }
  spec->name = std::string(name);
  return spec;
}

absl::StatusOr<std::string> ModelRepository::Fingerprint(absl::string_view name) const {
  ASSIGN_OR_RETURN(const std::string dir, ModelDir(name));
  std::vector<std::string> entries;
  std::error_code ec;
  std::filesystem::recursive_directory_iterator it(dir, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("model '", name, "': cannot be listed"));
  for (; it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return absl::UnavailableError(absl::StrCat("model '", name, "': cannot be listed"));
    if (static_cast<int>(entries.size()) >= kMaxFingerprintFiles) break;
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) continue;
    entries.push_back(absl::StrCat(it->path().lexically_relative(dir).string(), "|", st.st_size,
                                   "|", st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec, "|",
                                   st.st_mode));
  }
  std::sort(entries.begin(), entries.end());
  return absl::StrJoin(entries, "\n");
}

absl::StatusOr<std::shared_ptr<const MlpCudaLibrary>> ModelRepository::MlpCuda() const {
  absl::MutexLock lock(&mu_);
  if (mlp_cuda_ == nullptr) {
    ASSIGN_OR_RETURN(mlp_cuda_, options_.mlp_cuda_library.empty()
                                    ? MlpCudaLibrary::LoadDefault()
                                    : MlpCudaLibrary::Load(options_.mlp_cuda_library));
  }
  return mlp_cuda_;
}

absl::StatusOr<std::shared_ptr<const TorchLibrary>> ModelRepository::Torch() const {
  absl::MutexLock lock(&mu_);
  if (torch_ == nullptr) {
    ASSIGN_OR_RETURN(torch_, TorchLibrary::LoadDefault(options_.torch_backend_library));
  }
  return torch_;
}

namespace {

// Reads each output's label_filename (one label per line) into sig->labels.
absl::Status ReadLabels(const std::string& dir, const ModelConfigSpec& spec,
                        ModelSignature* sig) {
  sig->labels.assign(spec.outputs.size(), {});
  for (size_t i = 0; i < spec.output_label_files.size() && i < spec.outputs.size(); ++i) {
    const std::string& file = spec.output_label_files[i];
    if (file.empty()) continue;
    const std::string key = absl::StrCat("outputs[", i, "].label_filename");
    ASSIGN_OR_RETURN(const std::string path, ResolveInside(dir, file, key));
    absl::StatusOr<std::string> text = ReadSmallFile(path, kMaxLabelsBytes);
    if (!text.ok()) return WithPrefix(text.status(), absl::StrCat(key, ": "));
    std::vector<std::string>& labels = sig->labels[i].labels;
    for (absl::string_view line : absl::StrSplit(*text, '\n')) {
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      labels.emplace_back(line);
    }
    while (!labels.empty() && labels.back().empty()) labels.pop_back();
    sig->labels[i].file = file;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<const Model>> ModelRepository::Load(absl::string_view name) const {
  ASSIGN_OR_RETURN(ModelConfigSpec spec, ReadConfig(name));
  ASSIGN_OR_RETURN(const std::string dir, ModelDir(name));
  const std::string prefix = absl::StrCat("model '", name, "': ");
  const absl::Span<Device* const> devices(options_.devices);
  // The signature the config declares, with the outputs' labels.
  auto declared = [&](absl::string_view platform) -> absl::StatusOr<ModelSignature> {
    absl::StatusOr<ModelSignature> sig = DeclaredSignature(
        spec, name, platform, /*bytes_outputs=*/spec.backend == ModelBackend::kBuiltin);
    if (!sig.ok()) return WithPrefix(sig.status(), prefix);
    if (absl::Status st = ReadLabels(dir, spec, &*sig); !st.ok()) return WithPrefix(st, prefix);
    return sig;
  };

  if (spec.backend == ModelBackend::kBuiltin) {
    ASSIGN_OR_RETURN(ModelSignature sig, declared("inferd_builtin"));
    absl::StatusOr<std::shared_ptr<const Model>> model =
        CreateBuiltinOpModel(spec.builtin.op, std::move(sig));
    if (!model.ok()) return WithPrefix(model.status(), prefix);
    return model;
  }

  if (spec.backend == ModelBackend::kMlp) {
    absl::StatusOr<std::string> weights_path = ResolveInside(dir, spec.mlp.weights, "mlp.weights");
    if (!weights_path.ok()) return WithPrefix(weights_path.status(), prefix);
    absl::StatusOr<std::unique_ptr<SafetensorsFile>> file =
        SafetensorsFile::ReadFile(*weights_path, options_.max_weights_bytes);
    if (!file.ok()) return WithPrefix(file.status(), absl::StrCat(prefix, "mlp.weights: "));
    absl::StatusOr<MlpNetwork> network = BuildMlpNetwork(spec, **file);
    if (!network.ok()) return WithPrefix(network.status(), prefix);
    file->reset();  // the network holds its own copy of the weights
    absl::StatusOr<ModelSignature> sig = declared("inferd_mlp");
    if (!sig.ok()) return sig.status();
    std::shared_ptr<const MlpCudaLibrary> cuda;
    if (has_cuda_device_) {
      absl::StatusOr<std::shared_ptr<const MlpCudaLibrary>> lib = MlpCuda();
      if (!lib.ok()) return WithPrefix(lib.status(), prefix);
      cuda = *std::move(lib);
    }
    ASSIGN_OR_RETURN(std::unique_ptr<MlpModel> model,
                     MlpModel::Create(*std::move(sig), *std::move(network), devices, cuda,
                                      MlpOptions{spec.mlp.cuda_graphs}));
    return std::shared_ptr<const Model>(std::move(model));
  }

  if (spec.backend == ModelBackend::kTorch) {
    absl::StatusOr<std::string> file = ResolveInside(dir, spec.torch.file, "torch.file");
    if (!file.ok()) return WithPrefix(file.status(), prefix);
    absl::StatusOr<ModelSignature> sig = declared(TorchPlatform(spec.torch.format));
    if (!sig.ok()) return sig.status();
    absl::StatusOr<std::shared_ptr<const TorchLibrary>> lib = Torch();
    if (!lib.ok()) return WithPrefix(lib.status(), prefix);
    TorchModelOptions torch;
    torch.file = *std::move(file);
    torch.format = spec.torch.format;
    torch.instances_per_device = spec.torch.instances_per_device;
    torch.warmup = spec.torch.warmup;
    torch.cuda_graphs = spec.torch.cuda_graphs;
    ASSIGN_OR_RETURN(std::unique_ptr<TorchModel> model,
                     TorchModel::Create(*std::move(sig), torch, devices, *std::move(lib)));
    return std::shared_ptr<const Model>(std::move(model));
  }

  absl::StatusOr<std::string> library = ResolveInside(dir, spec.plugin.library, "plugin.library");
  if (!library.ok()) return WithPrefix(library.status(), prefix);
  absl::StatusOr<ModelSignature> sig = declared("inferd_plugin");
  if (!sig.ok()) return sig.status();
  PluginModelOptions plugin;
  plugin.library_path = *library;
  plugin.model_dir = dir;
  plugin.parameters = spec.plugin.parameters;
  ASSIGN_OR_RETURN(std::unique_ptr<PluginModel> model,
                   PluginModel::Create(*std::move(sig), plugin, devices));
  return std::shared_ptr<const Model>(std::move(model));
}

}  // namespace inferd
