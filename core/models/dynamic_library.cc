#include "core/models/dynamic_library.h"

#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

namespace inferd {
namespace {

std::string ExeDir() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  buf[n] = '\0';
  return std::filesystem::path(buf).parent_path().string();
}

}  // namespace

absl::StatusOr<std::unique_ptr<DynamicLibrary>> DynamicLibrary::Open(const std::string& path,
                                                                     absl::string_view what) {
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = ::dlerror();
    std::string text = why != nullptr ? why : "dlopen failed";
    const std::string dir = std::filesystem::path(path).parent_path().string();
    if (!dir.empty()) text = absl::StrReplaceAll(text, {{absl::StrCat(dir, "/"), ""}});
    return absl::FailedPreconditionError(absl::StrCat(what, " cannot be loaded: ", text));
  }
  return std::unique_ptr<DynamicLibrary>(new DynamicLibrary(path, handle));
}

DynamicLibrary::~DynamicLibrary() { ::dlclose(handle_); }

void* DynamicLibrary::Find(const char* name) const { return ::dlsym(handle_, name); }

std::vector<std::string> BackendLibrarySearchPath(absl::string_view file_name,
                                                  const char* env_var,
                                                  absl::string_view configured) {
  if (const char* env = std::getenv(env_var); env != nullptr && *env != '\0') return {env};
  if (!configured.empty()) return {std::string(configured)};
  std::vector<std::string> paths;
  const std::string exe_dir = ExeDir();
  if (!exe_dir.empty()) {
    paths.push_back(absl::StrCat(exe_dir, "/../lib/", file_name));
    paths.push_back(absl::StrCat(exe_dir, "/", file_name));
  }
#ifdef INFERD_BUILD_LIB_DIR
  paths.push_back(absl::StrCat(INFERD_BUILD_LIB_DIR, "/", file_name));
#endif
  return paths;
}

absl::StatusOr<std::string> FindBackendLibrary(absl::string_view file_name, const char* env_var,
                                               absl::string_view configured,
                                               absl::string_view what, absl::string_view hint) {
  const std::vector<std::string> paths = BackendLibrarySearchPath(file_name, env_var, configured);
  for (const std::string& path : paths) {
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) return path;
  }
  return absl::FailedPreconditionError(absl::StrCat(what, " needs ", file_name, " (", hint,
                                                    "); it is not installed where inferd looks"));
}

}  // namespace inferd
