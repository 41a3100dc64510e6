// DynamicLibrary: a shared library opened with dlopen(RTLD_NOW |
// RTLD_LOCAL) and closed when destroyed, and where the backend libraries
// that ship with inferd (the cuBLASLt mlp module, the torch backend) are
// looked for. Backends live in their own libraries so that what they link
// (cuBLAS, libtorch: static TLS, their own C++ runtime needs) never enters
// the daemon's link line.
//
// Thread-safety: immutable after Open; Find may be called concurrently.
#ifndef INFERD_CORE_MODELS_DYNAMIC_LIBRARY_H_
#define INFERD_CORE_MODELS_DYNAMIC_LIBRARY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace inferd {

class DynamicLibrary {
 public:
  // Opens `path`. FAILED_PRECONDITION "<what> cannot be loaded: <why>",
  // where <why> is the loader's message with `path`'s folder removed (it
  // may reach clients).
  static absl::StatusOr<std::unique_ptr<DynamicLibrary>> Open(const std::string& path,
                                                              absl::string_view what);
  ~DynamicLibrary();
  DynamicLibrary(const DynamicLibrary&) = delete;
  DynamicLibrary& operator=(const DynamicLibrary&) = delete;

  // Returns the address of symbol `name`, or nullptr when it is missing.
  void* Find(const char* name) const;
  template <typename F>
  F Find(const char* name) const {
    return reinterpret_cast<F>(Find(name));
  }

  const std::string& path() const { return path_; }

 private:
  DynamicLibrary(std::string path, void* handle) : path_(std::move(path)), handle_(handle) {}

  const std::string path_;
  void* const handle_;
};

// Returns where backend library `file_name` is looked for, in order:
// $`env_var` when set (then only it), else `configured` when not empty
// (then only it), else <exe_dir>/../lib/, <exe_dir>/ and the build tree's
// lib/ folder.
std::vector<std::string> BackendLibrarySearchPath(absl::string_view file_name,
                                                  const char* env_var,
                                                  absl::string_view configured = "");

// Returns the first existing entry of BackendLibrarySearchPath.
// FAILED_PRECONDITION saying `what` needs the library, how to point at it
// (`hint`), and the file names tried.
absl::StatusOr<std::string> FindBackendLibrary(absl::string_view file_name, const char* env_var,
                                               absl::string_view configured,
                                               absl::string_view what, absl::string_view hint);

}  // namespace inferd

#endif  // INFERD_CORE_MODELS_DYNAMIC_LIBRARY_H_
