#include "server/flags.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace inferd {

const char kUsage[] =
    "usage: inferd [flags]\n"
    "       inferd healthcheck [--grpc-target=HOST:PORT] [--service=NAME] [--timeout=SECONDS]\n"
    "                          [--tls | --tls-ca=FILE [--tls-server-name=NAME]]\n"
    "                          [--tls-cert=FILE --tls-key=FILE]\n"
    "         (--tls: TLS without checking the server; --tls-ca: checked against that CA;\n"
    "          --tls-cert/--tls-key: a client certificate for mutual TLS)\n"
    "\n"
    "  --config=FILE            YAML config (default: compiled-in defaults = configs/inferd.yaml)\n"
    "  --grpc-listen=HOST:PORT  gRPC address (default 127.0.0.1:50051; port 0 picks one)\n"
    "  --metrics-listen=HOST:PORT  Prometheus /metrics address (default 127.0.0.1:9464; \"\" off)\n"
    "  --host-devices=N         N > 0: use N host devices instead of GPUs; 0: GPUs, or one\n"
    "                           host device if none (device.host_devices, [0, 64])\n"
    "  --model-repository=DIR   folder of <model>/config.yaml\n"
    "  --model-control-mode=MODE  none | explicit | poll (models.control_mode)\n"
    "  --log-level=LEVEL        debug | info | warning | error\n"
    "  --print-config           print the effective config as YAML and exit\n"
    "  --version                print the version and exit\n";

absl::StatusOr<Flags> ParseFlags(int argc, const char* const* argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg.substr(0, 2) != "--") {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", arg, "'"));
    }
    arg.remove_prefix(2);
    absl::string_view name = arg, value;
    bool has_value = false;
    if (size_t eq = arg.find('='); eq != absl::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    auto take = [&]() -> absl::StatusOr<std::string> {
      if (has_value) return std::string(value);
      if (i + 1 >= argc) return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
      return std::string(argv[++i]);
    };
    if (name == "help") {
      f.help = true;
    } else if (name == "version") {
      f.version = true;
    } else if (name == "print-config") {
      f.print_config = true;
    } else if (name == "config") {
      auto v = take();
      if (!v.ok()) return v.status();
      f.config_path = *v;
    } else if (name == "grpc-listen") {
      auto v = take();
      if (!v.ok()) return v.status();
      f.grpc_listen = *v;
    } else if (name == "metrics-listen") {
      auto v = take();
      if (!v.ok()) return v.status();
      f.metrics_listen = *v;
    } else if (name == "model-repository") {
      auto v = take();
      if (!v.ok()) return v.status();
      f.model_repository = *v;
    } else if (name == "model-control-mode") {
      auto v = take();
      if (!v.ok()) return v.status();
      f.model_control_mode = *v;
    } else if (name == "log-level") {
      auto v = take();
      if (!v.ok()) return v.status();
      f.log_level = *v;
    } else if (name == "host-devices") {
      auto v = take();
      if (!v.ok()) return v.status();
      int n = 0;
      // The range of device.host_devices, which this flag sets.
      if (!absl::SimpleAtoi(*v, &n) || n < 0 || n > 64) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--host-devices: '", *v, "' is not an integer in [0, 64] (device.host_devices)"));
      }
      f.host_devices = n;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
  }
  return f;
}

void ApplyFlags(const Flags& flags, Config* config) {
  if (flags.grpc_listen) config->server.grpc_listen = *flags.grpc_listen;
  if (flags.metrics_listen) config->server.metrics_listen = *flags.metrics_listen;
  if (flags.host_devices) config->device.host_devices = *flags.host_devices;
  if (flags.model_repository) config->models.repository = *flags.model_repository;
  if (flags.model_control_mode) config->models.control_mode = *flags.model_control_mode;
  if (flags.log_level) config->server.log_level = *flags.log_level;
}

}  // namespace inferd
