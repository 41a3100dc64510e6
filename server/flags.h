// Command-line flags of `inferd` and how they override the config file.
#ifndef INFERD_SERVER_FLAGS_H_
#define INFERD_SERVER_FLAGS_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "core/config/config.h"

namespace inferd {

struct Flags {
  std::string config_path;  // --config
  std::optional<std::string> grpc_listen;       // --grpc-listen
  std::optional<std::string> metrics_listen;    // --metrics-listen
  std::optional<int> host_devices;              // --host-devices
  std::optional<std::string> model_repository;
  std::optional<std::string> model_control_mode;  // --model-repository
  std::optional<std::string> log_level;         // --log-level
  bool print_config = false;                    // --print-config
  bool help = false;                            // --help
  bool version = false;                         // --version
};

// Parses `--name=value` or `--name value`. INVALID_ARGUMENT naming the flag.
absl::StatusOr<Flags> ParseFlags(int argc, const char* const* argv);

// Writes the flags that were given over `config`.
void ApplyFlags(const Flags& flags, Config* config);

extern const char kUsage[];

}  // namespace inferd

#endif  // INFERD_SERVER_FLAGS_H_
